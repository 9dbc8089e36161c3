"""Prometheus metrics for the operators: what was decided, dropped and how long it took.

Every metric lives in :data:`REGISTRY`. The RADIUS process serves it on its own
address (``flexnet radius --metrics``), the web app on ``/metrics`` together with the
gauges of waiting work (``flexnet.web.metrics``). Counting is an in-memory increment:
no packet pays a database query for a metric.

Labels carry fixed codes only (channel, outcome, reason, cause, phase, result, port):
never a username, BSNR, key serial or a practice's address. So a scrape holds no
personal data and the number of series stays bounded whatever arrives on the wire.

With several RADIUS worker processes, prometheus_client's multiprocess mode keeps the
values in files of a directory the supervisor creates (``PROMETHEUS_MULTIPROC_DIR``,
read when prometheus_client is imported, so set before a worker starts), and the
supervisor's endpoint adds them up.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal, get_args
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from sqlalchemy import event
from sqlalchemy.orm import Session

from flexnet.errors import ConfigError

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# From a millisecond (a database round trip) to seconds (argon2id on a busy machine;
# a NAS gives up after 3 to 5).
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

DECISIONS = Counter(
    "flexnet_login_decisions",
    "Login decisions by channel (radius, api, self_service), outcome and reason, "
    "the fixed codes of the auth log; counted once the decision is committed",
    ["channel", "outcome", "reason"],
    registry=REGISTRY,
)
PHASE_SECONDS = Histogram(
    "flexnet_login_phase_seconds",
    "Time a login spent per phase: otp (checking and using up the OTP), hash (argon2id, "
    "no transaction open), database (the two short writes without the OTP check)",
    ["phase"],
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
RADIUS_SECONDS = Histogram(
    "flexnet_radius_request_seconds",
    "Time from a RADIUS datagram's arrival at the handler to its answer or silence, by port",
    ["port"],
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
# The fixed codes of the labels below: mypy holds every call site to them.
DropCause = Literal[
    "malformed",  # not RADIUS, a code not served on that port, bad lengths
    "unknown_client",  # no NAS client has the source address
    "disabled_client",  # the NAS client is disabled
    "nas_list_unavailable",  # the NAS list could not be loaded (database away at start)
    "duplicate_in_flight",  # a retransmission of a request still being decided
    "undecodable",  # attributes pyrad cannot decode
    "message_authenticator_missing",  # BlastRADIUS: required, not sent
    "message_authenticator_invalid",
    "proxy_state_without_message_authenticator",
    "accounting_authenticator_invalid",
    "answer_too_large",  # the answer would exceed 4096 octets
    "status_refused",  # a Status-Server that may not be answered
    "database_unavailable",  # not decided: the database did not answer (NAS fails over)
    "internal_error",  # not decided: an unexpected error, never an accept
    "accounting_not_stored",  # no Accounting-Response: the NAS retries
    "overloaded",  # too many requests (or RADIUS/TLS connections) in this process
    "tls_connection_refused",  # RADIUS/TLS: handshake failed, certificate pinned to no NAS
]
During = Literal["access", "accounting", "status", "reload", "disconnect"]
DisconnectResult = Literal["ack", "nak", "timeout", "no_coa_port", "error"]
Phase = Literal["otp", "hash", "database"]

DROPPED = Counter(
    "flexnet_radius_dropped",
    "RADIUS packets left unanswered (the NAS retries or fails over), by cause",
    ["cause"],
    registry=REGISTRY,
)
DATABASE_UNAVAILABLE = Counter(
    "flexnet_database_unavailable",
    "Times the database could not be reached, by what was being done: access, "
    "accounting, status (Status-Server), reload (NAS list, keys), disconnect",
    ["during"],
    registry=REGISTRY,
)
DISCONNECTS = Counter(
    "flexnet_disconnects",
    "Disconnect-Requests (RFC 5176) sent for locked users, by result: ack, nak, timeout, "
    "no_coa_port, error",
    ["result"],
    registry=REGISTRY,
)

# Known series exist from the start at 0: a rate over the first drop sees it.
for _cause in get_args(DropCause):
    DROPPED.labels(_cause)
for _during in get_args(During):
    DATABASE_UNAVAILABLE.labels(_during)
for _result in get_args(DisconnectResult):
    DISCONNECTS.labels(_result)


def dropped(cause: DropCause) -> None:
    DROPPED.labels(cause).inc()


def database_unavailable(during: During) -> None:
    DATABASE_UNAVAILABLE.labels(during).inc()


def disconnected(result: DisconnectResult) -> None:
    DISCONNECTS.labels(result).inc()


def phase_took(phase: Phase, seconds: float) -> None:
    PHASE_SECONDS.labels(phase).observe(seconds)


# --- decisions: counted when their transaction commits ---------------------------------

_PENDING = "flexnet_metrics_decisions"


def decided(session: Session, channel: str, outcome: str, reason: str) -> None:
    """Count a decision written in ``session`` once it commits (a rolled-back one never
    reached the client as such)."""
    session.info.setdefault(_PENDING, []).append((channel, outcome, reason))


def decided_now(channel: str, outcome: str, reason: str) -> None:
    """Count a decision already answered (the batched rejects of the fast path)."""
    DECISIONS.labels(channel, outcome, reason).inc()


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for labels in session.info.pop(_PENDING, ()):
        DECISIONS.labels(*labels).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


# --- the RADIUS process's endpoint -----------------------------------------------------


class Endpoint:
    """``http://ADDRESS:PORT/metrics`` in a thread of this process, until :meth:`close`."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry = REGISTRY) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        shown = f"[{address[0]}]" if ":" in address[0] else address[0]
        try:
            self._server, self._thread = start_http_server(
                address[1], address[0], registry=registry
            )
        except OSError as error:
            raise ConfigError(
                "FLEXNET_RADIUS_METRICS",
                f"({shown}:{address[1]}) nicht verwendbar: {error.strerror or error}",
            ) from None
        self.port = int(self._server.server_address[1])
        log.info("metrics on http://%s:%d/metrics", shown, self.port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
