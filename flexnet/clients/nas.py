"""NAS clients: the VPN concentrators allowed to ask over RADIUS, with their own secrets."""

from __future__ import annotations

import enum
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.clients import switch
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import NasClient
from flexnet.otp.secrets import SecretBox, SecretError
from flexnet.textrules import clean_line

log = logging.getLogger(__name__)

# RFC 6614/BlastRADIUS guidance: long random secrets; short ones fall to offline guessing.
MIN_SECRET_LENGTH = 16
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_KIND = switch.Kind("NAS", AuditTag.NAS_CLIENT_ENABLE, AuditTag.NAS_CLIENT_DISABLE)


_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def parse_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as stored: 64 lower-case hex digits. Accepts
    what ``openssl x509 -noout -fingerprint -sha256`` prints (``sha256 Fingerprint=AB:CD:…``)
    as well as the bare digits."""
    digits = text.strip().rpartition("=")[2].replace(":", "").replace(" ", "").lower()
    if not _FINGERPRINT.fullmatch(digits):
        raise ValidationError(
            "Der TLS-Fingerabdruck muss der SHA-256-Fingerabdruck des Client-Zertifikats sein "
            "(64 Hexadezimalziffern, z. B. aus `openssl x509 -noout -fingerprint -sha256`)"
        )
    return digits


def _check_fingerprint_free(session: Session, fingerprint: str, nas_id: int | None) -> None:
    taken = session.scalar(
        select(NasClient.name).where(
            NasClient.tls_fingerprint == fingerprint, NasClient.id != (nas_id or -1)
        )
    )
    if taken is not None:
        raise ConflictError(f"Das Zertifikat ist schon für den NAS {taken!r} hinterlegt")


def nas_context(nas_id: int) -> str:
    return f"nas:{nas_id}"


def parse_network(address: str) -> IpNetwork:
    try:
        network = ipaddress.ip_network(address.strip(), strict=False)
    except ValueError:
        raise ValidationError(f"{address!r} ist keine IP-Adresse und kein Netz (CIDR)") from None
    if network.prefixlen == 0:
        raise ValidationError("Ein Netz für alle Adressen (0.0.0.0/0, ::/0) ist nicht erlaubt")
    return network


def add_nas(
    session: Session,
    *,
    name: str,
    address: str,
    secret: str,
    box: SecretBox,
    actor: Actor,
    now: datetime,
    allow_missing_message_authenticator: bool = False,
    coa_port: int | None = None,
    proxy: bool = False,
    tls_fingerprint: str | None = None,
) -> NasClient:
    name = clean_line(name, field="Name", max_length=100)
    network = parse_network(address)
    _check_secret(secret)
    if tls_fingerprint is not None:
        tls_fingerprint = parse_fingerprint(tls_fingerprint)
        _check_fingerprint_free(session, tls_fingerprint, None)
    if coa_port is not None and not 1 <= coa_port <= 65535:
        raise ValidationError("Der CoA-Port muss zwischen 1 und 65535 liegen")
    existing = session.scalar(
        select(NasClient.name).where((NasClient.name == name) | (NasClient.address == str(network)))
    )
    if existing is not None:
        raise ConflictError(f"Name oder Adresse ist schon für den NAS {existing!r} vergeben")
    nas = NasClient(
        name=name,
        address=str(network),
        secret=b"",
        allow_missing_message_authenticator=allow_missing_message_authenticator,
        coa_port=coa_port,
        proxy=proxy,
        tls_fingerprint=tls_fingerprint,
        active=True,
        created_at=now,
    )
    session.add(nas)
    # The ciphertext is bound to the row id, which exists only after the flush.
    session.flush()
    nas.secret = box.seal(secret.encode(), context=nas_context(nas.id))
    audit.record(
        session,
        AuditTag.NAS_CLIENT_CREATE,
        actor=actor,
        subject=Subject("nas", name),
        data={
            "address": str(network),
            "allow_missing_message_authenticator": allow_missing_message_authenticator,
            "coa_port": coa_port,
            "proxy": proxy,
            "tls_fingerprint": tls_fingerprint,
        },
        now=now,
    )
    return nas


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            f"Das gemeinsame Geheimnis muss mindestens {MIN_SECRET_LENGTH} Zeichen lang sein"
        )


def get_nas(session: Session, name: str) -> NasClient:
    """The NAS client of this name (as ``add_nas`` stored it), enabled or not."""
    nas = session.scalar(select(NasClient).where(NasClient.name == " ".join(name.split())))
    if nas is None:
        raise NotFoundError(f"Kein NAS-Client {name!r}")
    return nas


def set_secret(
    session: Session, *, name: str, secret: str, box: SecretBox, actor: Actor, now: datetime
) -> NasClient:
    """A new shared secret, e.g. when the old one may have leaked: whoever holds it can
    decrypt recorded User-Password attributes (password and OTP) and forge packets. The
    RADIUS servers use it from their next reload on; the concentrator needs it too."""
    nas = get_nas(session, name)
    _check_secret(secret)
    try:
        unchanged = box.open(nas.secret, context=nas_context(nas.id)) == secret.encode()
    except SecretError:
        unchanged = False  # unreadable (e.g. a wrong master key): replacing it is the cure
    if unchanged:
        raise ValidationError("Das neue Geheimnis ist das bisherige; bitte ein neues wählen")
    nas.secret = box.seal(secret.encode(), context=nas_context(nas.id))
    audit.record(
        session, AuditTag.NAS_CLIENT_SECRET, actor=actor, subject=Subject("nas", nas.name), now=now
    )
    return nas


class Keep(enum.Enum):
    """A property of ``change_nas`` that is not to change."""

    KEEP = "keep"


KEEP = Keep.KEEP


def change_nas(
    session: Session,
    *,
    name: str,
    actor: Actor,
    now: datetime,
    address: str | Keep = KEEP,
    allow_missing_message_authenticator: bool | Keep = KEEP,
    coa_port: int | Keep | None = KEEP,
    proxy: bool | Keep = KEEP,
    tls_fingerprint: str | Keep | None = KEEP,
) -> NasClient:
    """Change a NAS's properties in place (its secret: ``set_secret``; on or off:
    ``set_active``), e.g. admit an old concentrator that cannot send
    Message-Authenticator, or a new address; audited with the old and new values. The
    RADIUS servers use them from their next reload on. ``coa_port=None``: no
    Disconnect-Requests to this NAS. ``proxy``: a RADIUS proxy in front of several
    concentrators, whose sessions are told apart by the identity each concentrator sends
    (NAS-IP-Address, NAS-IPv6-Address, NAS-Identifier), not by the proxy's address; the
    sessions already stored keep their key. ``tls_fingerprint``: the SHA-256 fingerprint of
    the client certificate this NAS presents over RADIUS over TLS (None: no TLS)."""
    nas = get_nas(session, name)
    wanted: dict[str, object] = {}
    if not isinstance(address, Keep):
        network = str(parse_network(address))
        taken = session.scalar(
            select(NasClient.name).where(NasClient.address == network, NasClient.id != nas.id)
        )
        if taken is not None:
            raise ConflictError(f"Die Adresse ist schon für den NAS {taken!r} vergeben")
        wanted["address"] = network
    if not isinstance(allow_missing_message_authenticator, Keep):
        wanted["allow_missing_message_authenticator"] = allow_missing_message_authenticator
    if not isinstance(coa_port, Keep):
        if coa_port is not None and not 1 <= coa_port <= 65535:
            raise ValidationError("Der CoA-Port muss zwischen 1 und 65535 liegen")
        wanted["coa_port"] = coa_port
    if not isinstance(proxy, Keep):
        wanted["proxy"] = proxy
    if not isinstance(tls_fingerprint, Keep):
        if tls_fingerprint is not None:
            tls_fingerprint = parse_fingerprint(tls_fingerprint)
            _check_fingerprint_free(session, tls_fingerprint, nas.id)
        wanted["tls_fingerprint"] = tls_fingerprint
    if not wanted:
        raise ValidationError("Bitte mindestens eine Einstellung angeben, die sich ändern soll")
    changed = {
        key: [getattr(nas, key), value]
        for key, value in wanted.items()
        if getattr(nas, key) != value
    }
    if not changed:
        raise ValidationError(f"NAS {nas.name} hat diese Einstellungen schon; nichts geändert")
    for key, (_, value) in changed.items():
        setattr(nas, key, value)
    audit.record(
        session,
        AuditTag.NAS_CLIENT_CHANGE,
        actor=actor,
        subject=Subject("nas", nas.name),
        data=changed,
        now=now,
    )
    return nas


def set_active(
    session: Session, *, name: str, active: bool, actor: Actor, now: datetime
) -> NasClient:
    """Disable a NAS (its packets are dropped from the RADIUS servers' next reload on,
    e.g. a concentrator taken out of service or whose secret is suspected) or enable it
    again."""
    nas = get_nas(session, name)
    switch.set_active(
        session,
        nas,
        active=active,
        kind=_KIND,
        subject=Subject("nas", nas.name),
        actor=actor,
        now=now,
    )
    return nas


@dataclass(frozen=True)
class NasEntry:
    """What the RADIUS server needs of a NAS, with the secret opened once at load."""

    id: int
    name: str
    network: IpNetwork
    secret: bytes = field(repr=False)
    allow_missing_message_authenticator: bool
    coa_port: int | None
    proxy: bool = False
    tls_fingerprint: str | None = None  # pinned client certificate (RADIUS over TLS)


def load_active(session: Session, box: SecretBox) -> list[NasEntry]:
    """All active NAS clients whose secret opens, most specific network first.

    A secret that does not open (sealed under another master key) leaves out that NAS
    alone: its packets drop, the others are served with an up-to-date list.
    """
    entries = []
    for nas in session.scalars(select(NasClient).where(NasClient.active.is_(True))):
        try:
            secret = box.open(nas.secret, context=nas_context(nas.id))
        except SecretError:
            log.error("secret of NAS %s does not open (master key?): its packets drop", nas.name)
            continue
        entries.append(
            NasEntry(
                id=nas.id,
                name=nas.name,
                network=ipaddress.ip_network(nas.address),
                secret=secret,
                allow_missing_message_authenticator=nas.allow_missing_message_authenticator,
                coa_port=nas.coa_port,
                proxy=nas.proxy,
                tls_fingerprint=nas.tls_fingerprint,
            )
        )
    return sorted(entries, key=lambda e: e.network.prefixlen, reverse=True)


def load_disabled(session: Session) -> list[tuple[str, IpNetwork]]:
    """The disabled NAS clients (name and network), to say so when their packets drop."""
    rows = session.execute(
        select(NasClient.name, NasClient.address).where(NasClient.active.is_(False))
    )
    disabled = [(name, ipaddress.ip_network(address)) for name, address in rows]
    return sorted(disabled, key=lambda e: e[1].prefixlen, reverse=True)


def match_disabled(disabled: list[tuple[str, IpNetwork]], address: str) -> str | None:
    """The name of the disabled NAS a packet from ``address`` came from, if any."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return next((name for name, network in disabled if ip in network), None)


def match_certificate(entries: list[NasEntry], fingerprint: str) -> NasEntry | None:
    """The NAS whose pinned client certificate has this SHA-256 fingerprint, or None."""
    return next((e for e in entries if e.tls_fingerprint == fingerprint), None)


def match(entries: list[NasEntry], address: str) -> NasEntry | None:
    """The NAS a packet from ``address`` belongs to, or None (the packet is dropped)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return next((e for e in entries if ip in e.network), None)
