"""Clients of flexnet (NAS, API, validation protocol): a NAS's new secret, new keys, and
switching a client off and on, each audited without the secret."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.audit import AuditTag
from flexnet.clients import apiclients, nas
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.models import AuditEntry, WsapiClient
from flexnet.otp import wsapi
from flexnet.otp.secrets import wsapi_client_context
from tests.conftest import BOX, NOW, STAFF

OLD_SECRET = "ein-langes-gemeinsames-geheimnis"
NEW_SECRET = "ein-anderes-langes-geheimnis-2"


def audited(session: Session) -> list[tuple[str, str | None, str]]:
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    return [(e.tag, e.subject_id, e.data) for e in entries]


@pytest.fixture
def vpn_1(session: Session) -> None:
    nas.add_nas(
        session,
        name="vpn-1",
        address="192.0.2.10",
        secret=OLD_SECRET,
        box=BOX,
        actor=STAFF,
        now=NOW,
    )


@pytest.mark.usefixtures("vpn_1")
def test_a_new_nas_secret_replaces_the_old_one_and_is_not_audited(session: Session) -> None:
    nas.set_secret(session, name=" vpn-1 ", secret=NEW_SECRET, box=BOX, actor=STAFF, now=NOW)

    (entry,) = nas.load_active(session, BOX)
    assert entry.secret == NEW_SECRET.encode()
    tag, subject, data = audited(session)[-1]
    assert (tag, subject, data) == (AuditTag.NAS_CLIENT_SECRET.value, "vpn-1", "{}")


@pytest.mark.usefixtures("vpn_1")
@pytest.mark.parametrize(
    ("name", "secret", "error", "message"),
    [
        ("vpn-1", "kurz", ValidationError, "mindestens 16 Zeichen"),
        ("vpn-1", OLD_SECRET, ValidationError, "ist das bisherige"),
        ("vpn-9", NEW_SECRET, NotFoundError, "Kein NAS-Client 'vpn-9'"),
    ],
)
def test_a_nas_secret_is_refused_when_short_unchanged_or_for_no_nas(
    session: Session, name: str, secret: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        nas.set_secret(session, name=name, secret=secret, box=BOX, actor=STAFF, now=NOW)

    assert [e.secret for e in nas.load_active(session, BOX)] == [OLD_SECRET.encode()]
    assert audited(session)[-1][0] == AuditTag.NAS_CLIENT_CREATE.value


@pytest.mark.usefixtures("vpn_1")
def test_a_disabled_nas_is_not_loaded_until_enabled_again(session: Session) -> None:
    nas.set_active(session, name="vpn-1", active=False, actor=STAFF, now=NOW)
    disabled = nas.load_active(session, BOX)
    with pytest.raises(ConflictError, match="NAS 'vpn-1' ist bereits deaktiviert"):
        nas.set_active(session, name="vpn-1", active=False, actor=STAFF, now=NOW)
    nas.set_active(session, name="vpn-1", active=True, actor=STAFF, now=NOW)

    assert disabled == []
    assert [e.name for e in nas.load_active(session, BOX)] == ["vpn-1"]
    assert [tag for tag, _, _ in audited(session)[-2:]] == [
        AuditTag.NAS_CLIENT_DISABLE.value,
        AuditTag.NAS_CLIENT_ENABLE.value,
    ]
    with pytest.raises(ConflictError, match="ist bereits aktiv"):
        nas.set_active(session, name="vpn-1", active=True, actor=STAFF, now=NOW)


def test_a_disabled_api_client_is_refused_and_keeps_its_key(session: Session) -> None:
    _, key = apiclients.add_client(session, name="portal", require_otp=False, actor=STAFF, now=NOW)

    apiclients.set_active(session, name="portal", active=False, actor=STAFF, now=NOW)
    refused = apiclients.authenticate_client(session, key)
    new_key = apiclients.regenerate_key(session, name="portal", actor=STAFF, now=NOW)
    still_refused = apiclients.authenticate_client(session, new_key)
    apiclients.set_active(session, name="portal", active=True, actor=STAFF, now=NOW)

    assert refused is None and still_refused is None  # a new key does not switch it on
    assert apiclients.authenticate_client(session, new_key) is not None
    assert [(tag, subject) for tag, subject, _ in audited(session)[-3:]] == [
        (AuditTag.API_CLIENT_DISABLE.value, "portal"),
        (AuditTag.API_CLIENT_REGENERATE.value, "portal"),
        (AuditTag.API_CLIENT_ENABLE.value, "portal"),
    ]
    with pytest.raises(NotFoundError, match="Kein API-Client 'other'"):
        apiclients.set_active(session, name="other", active=False, actor=STAFF, now=NOW)


def opened_key(session: Session, client_id: int) -> str:
    client = session.get_one(WsapiClient, client_id)
    raw = BOX.open(client.api_key, context=wsapi_client_context(client_id))
    return base64.b64encode(raw).decode()


def test_a_regenerated_wsapi_key_replaces_the_old_one_and_is_not_audited(
    session: Session,
) -> None:
    client, old_key = wsapi.add_client(session, name="BD-Online", box=BOX, actor=STAFF, now=NOW)

    same, new_key = wsapi.regenerate_key(
        session, name=str(client.id), box=BOX, actor=STAFF, now=NOW
    )

    assert same is client and new_key != old_key
    assert opened_key(session, client.id) == new_key
    assert len(base64.b64decode(new_key)) == wsapi.API_KEY_BYTES
    tag, subject, data = audited(session)[-1]
    assert (tag, subject) == (AuditTag.WSAPI_CLIENT_REGENERATE.value, str(client.id))
    assert data == '{"name":"BD-Online"}'


def test_a_disabled_wsapi_client_gets_no_such_client(session: Session) -> None:
    client, key = wsapi.add_client(session, name="BD-Online", box=BOX, actor=STAFF, now=NOW)
    params = {"id": str(client.id), "otp": "c" * 44, "nonce": "n" * 16}
    params["h"] = wsapi.signature(params, base64.b64decode(key))

    wsapi.set_active(session, name="BD-Online", active=False, actor=STAFF, now=NOW)
    refused = wsapi.check_request(session, params, box=BOX, now=NOW)
    wsapi.set_active(session, name=str(client.id), active=True, actor=STAFF, now=NOW)

    assert isinstance(refused, wsapi.Answer) and refused.status is wsapi.Status.NO_SUCH_CLIENT
    assert "h" not in refused.fields  # nothing signed for a client that is off
    assert isinstance(wsapi.check_request(session, params, box=BOX, now=NOW), wsapi.Caller)
    assert [(tag, data) for tag, _, data in audited(session)[-2:]] == [
        (AuditTag.WSAPI_CLIENT_DISABLE.value, '{"name":"BD-Online"}'),
        (AuditTag.WSAPI_CLIENT_ENABLE.value, '{"name":"BD-Online"}'),
    ]


def test_wsapi_clients_are_found_by_name_or_id_never_ambiguously(session: Session) -> None:
    first, _ = wsapi.add_client(session, name="KVSAonline", box=BOX, actor=STAFF, now=NOW)
    second, _ = wsapi.add_client(session, name=str(first.id), box=BOX, actor=STAFF, now=NOW)

    assert wsapi.get_client(session, "KVSAonline") is first
    assert wsapi.get_client(session, str(second.id)) is second
    with pytest.raises(ConflictError, match="mehrdeutig"):
        wsapi.get_client(session, str(first.id))
    with pytest.raises(NotFoundError, match="Kein Prüfdienst-Client '99'"):
        wsapi.get_client(session, "99")
