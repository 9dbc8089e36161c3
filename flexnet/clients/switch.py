"""What the three kinds of clients (NAS, API, validation protocol) share: switching off.

A client is disabled rather than deleted: its row keeps the name and address the audit
trail and the VPN sessions refer to, and it can be enabled again once the reason is gone
(a suspected secret replaced, a concentrator back in service). The places that let
clients in (``nas.load_active``, ``apiclients.authenticate_client``,
``wsapi.check_request``) look at ``active`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ConflictError
from flexnet.models import ApiClient, NasClient, WsapiClient

Client = NasClient | ApiClient | WsapiClient


class Switch(Protocol):
    """``set_active`` of ``nas``, ``apiclients`` or ``otp.wsapi``: what the CLI and the
    admin UI call to switch a client by the name staff typed."""

    def __call__(
        self, session: Session, *, name: str, active: bool, actor: Actor, now: datetime
    ) -> Client: ...


@dataclass(frozen=True)
class Kind:
    """How one kind of client is named to staff and in the audit trail."""

    label: str  # German, as staff read it: "NAS", "API-Client", ...
    enable: AuditTag
    disable: AuditTag


def set_active(
    session: Session,
    client: Client,
    *,
    active: bool,
    kind: Kind,
    subject: Subject,
    actor: Actor,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Switch ``client`` off or on; switching to the state it is in is refused, so that
    the audit trail has one entry per real change and a typo in a script shows."""
    if client.active == active:
        state = "aktiv" if active else "deaktiviert"
        raise ConflictError(f"{kind.label} {client.name!r} ist bereits {state}")
    client.active = active
    audit.record(
        session,
        kind.enable if active else kind.disable,
        actor=actor,
        subject=subject,
        data=data,
        now=now,
    )
