"""``/metrics`` for Prometheus: the web process's counters and the work waiting for staff.

Answered only for scrapers in ``FLEXNET_METRICS_NETWORKS``; with none configured the
page does not exist (404), for any other address it is refused (403). The address is
the one the rest of the web app sees: behind ``FLEXNET_PROXIES`` reverse proxies, the
client's address from their X-Forwarded-For, not the proxy's.

The gauges are counted at scrape time with a few indexed COUNT queries; if the database
does not answer, ``flexnet_database_reachable`` is 0 and they are left out, while the
counters are still served.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from flexnet import metrics
from flexnet.config import IpNetwork
from flexnet.db import Database
from flexnet.models import Letter, LetterStatus, RequestStatus, ServiceRequest, VpnSession
from flexnet.web import state

blueprint = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)


class WaitingWork(Collector):
    """Gauges of what waits for staff or for the RADIUS server, read per scrape."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reachable = GaugeMetricFamily(
            "flexnet_database_reachable",
            "1 if the database answered the counts of this scrape, else 0",
        )
        try:
            with self.database.reader() as session:
                letters = session.scalar(
                    select(func.count()).where(Letter.status == LetterStatus.DUE)
                )
                requests = session.scalar(
                    select(func.count()).where(ServiceRequest.status == RequestStatus.OPEN)
                )
                disconnects = session.scalar(
                    select(func.count()).where(
                        VpnSession.disconnect_requested_at.is_not(None),
                        VpnSession.disconnect_result.is_(None),
                    )
                )
        except SQLAlchemyError:
            log.exception("metrics: database unreachable, waiting work not counted")
            reachable.add_metric([], 0)
            yield reachable
            return
        reachable.add_metric([], 1)
        yield reachable
        yield GaugeMetricFamily(
            "flexnet_letters_due",
            "Letters waiting for a mail run (state due, printable now or held back)",
            value=letters or 0,
        )
        yield GaugeMetricFamily(
            "flexnet_requests_open",
            "Service requests of practices not yet verified, fulfilled or rejected",
            value=requests or 0,
        )
        yield GaugeMetricFamily(
            "flexnet_disconnects_queued",
            "Disconnect-Requests queued for locked users and not yet sent",
            value=disconnects or 0,
        )


def allowed(address: str | None, networks: tuple[IpNetwork, ...]) -> bool:
    """Whether ``address`` (an IPv4-mapped IPv6 one as its IPv4) is in ``networks``."""
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(client in network for network in networks)


@blueprint.get("/metrics")
def scrape() -> Response:
    networks = state().settings.metrics_networks
    if not networks:
        abort(404)
    if not allowed(request.remote_addr, networks):
        log.warning(
            "metrics: scrape from %s refused (not in FLEXNET_METRICS_NETWORKS)", request.remote_addr
        )
        abort(403)
    waiting = CollectorRegistry()
    waiting.register(WaitingWork(state().database))
    body = generate_latest(metrics.REGISTRY) + generate_latest(waiting)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
