"""Key import: each format, all or nothing, errors with their lines, duplicates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flexnet.models import Token, TokenKind, TokenStatus
from flexnet.otp import importer
from flexnet.otp.importer import Format, ImportFailed
from flexnet.otp.secrets import YubicoSecret, token_context
from tests.conftest import BOX, NOW, STAFF
from tests.support.yubikeys import SimulatedKey

DATA = Path(__file__).parents[2] / "data"


def run_import(session: Session, data: bytes, fmt: Format = Format.AUTO) -> importer.ImportSummary:
    keys = importer.parse(data, fmt)
    return importer.import_keys(session, keys, box=BOX, actor=STAFF, now=NOW)


def stock(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Token)) or 0


@pytest.mark.parametrize(
    ("name", "fmt", "yubico", "hotp"),
    [
        ("ykman.csv", Format.YKMAN, 2, 1),
        ("ykpers.log", Format.YKPERS, 1, 1),
        ("yubikeys.pskcxml", Format.PSKC, 1, 1),
    ],
)
def test_each_format_imports_and_is_detected(
    session: Session, name: str, fmt: Format, yubico: int, hotp: int
) -> None:
    data = (DATA / name).read_bytes()

    summary = run_import(session, data)

    assert importer.detect_format(data) is fmt
    assert (summary.yubico_otp, summary.oath_hotp) == (yubico, hotp)
    tokens = list(session.scalars(select(Token)))
    assert all(t.status is TokenStatus.STOCK for t in tokens)
    assert all(t.secret and b"\x00\x11\x22\x33" not in t.secret for t in tokens)


def test_yubico_secret_is_stored_encrypted_and_usable(session: Session) -> None:
    run_import(session, (DATA / "ykman.csv").read_bytes())

    token = session.scalars(select(Token).where(Token.serial == "1234567")).one()
    assert token.secret is not None
    secret = YubicoSecret.from_bytes(BOX.open(token.secret, context=token_context("1234567")))
    assert secret.private_id.hex() == "0a1b2c3d4e5f"
    assert secret.aes_key.hex() == "00112233445566778899aabbccddeeff"
    assert token.public_id == "vvccccbdthji"


def test_hotp_details(session: Session) -> None:
    run_import(session, (DATA / "ykpers.log").read_bytes())
    pskc = (DATA / "yubikeys.pskcxml").read_bytes()
    run_import(
        session, pskc.replace(b"ubnucbdefghi", b"ubnucbdefghj").replace(b"deflhb", b"deflhc")
    )

    log_hotp, pskc_hotp = session.scalars(
        select(Token).where(Token.kind == TokenKind.OATH_HOTP).order_by(Token.id)
    )
    assert (log_hotp.serial, log_hotp.digits, log_hotp.hotp_counter) == ("ubnucbdefghi", 8, 16)
    assert (pskc_hotp.serial, pskc_hotp.digits, pskc_hotp.hotp_counter) == ("7654321", 6, 32)
    assert pskc_hotp.secret is not None
    assert BOX.open(pskc_hotp.secret, context=token_context("7654321")) == b"12345678901234567890"


def test_a_broken_line_imports_nothing_and_names_the_line(session: Session) -> None:
    lines = (DATA / "ykman.csv").read_text().splitlines()
    lines[1] = lines[1].replace("10112233445566778899aabbccddeeff", "1011223344556677")

    with pytest.raises(ImportFailed) as failed:
        run_import(session, "\n".join(lines).encode())

    assert failed.value.errors == ["Zeile 2: AES-Schlüssel muss 32 Hex-Zeichen haben"]
    assert stock(session) == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "12x,vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,",
            "Seriennummer '12x' ist keine Zahl",
        ),
        (
            "1,vvccccbdthjz,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,",
            "öffentliche ID muss 12 Modhex-Zeichen haben",
        ),
        (
            "1,vvccccbdthji,0a1b2c3d4e,00112233445566778899aabbccddeeff,,t,",
            "private ID muss 12 Hex-Zeichen haben",
        ),
        ("1,vvccccbdthji,0a1b2c3d4e5f", "erwartet 6 Felder"),
    ],
)
def test_malformed_ykman_lines(line: str, message: str) -> None:
    with pytest.raises(ImportFailed) as failed:
        importer.parse(line.encode(), Format.YKMAN)

    assert failed.value.errors[0].startswith("Zeile 1: ")
    assert message in failed.value.errors[0]


def test_every_error_is_reported_at_once() -> None:
    data = b"x,y\n1234567,vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,\nz\n"

    with pytest.raises(ImportFailed) as failed:
        importer.parse(data, Format.YKMAN)

    assert [e.split(":")[0] for e in failed.value.errors] == ["Zeile 1", "Zeile 3"]


def test_many_errors_keep_the_first_and_count_all_and_quote_values_short() -> None:
    long_serial = "9" * 5000 + "x"
    lines = [f"{long_serial},vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,"]
    lines += [f"{n},kaputt" for n in range(2, 1001)]

    with pytest.raises(ImportFailed) as failed:
        importer.parse("\n".join(lines).encode(), Format.YKMAN)

    errors = failed.value.errors
    assert len(errors) == importer.SHOWN_ERRORS == 50
    assert errors[-1].startswith("Zeile 50: ")
    assert failed.value.count == 1000 and failed.value.summary == "1.000 Fehler, die ersten 50"
    assert errors[0] == f"Zeile 1: Seriennummer '{'9' * 40}…' ist keine Zahl"
    assert len(str(failed.value)) < 1000


def test_duplicates_within_the_file(session: Session) -> None:
    line = "1234567,vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,\n"
    other = "1234568,vvccccbdthji,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,\n"

    with pytest.raises(ImportFailed) as failed:
        importer.parse((line + line + other).encode())

    assert "Zeile 2: Seriennummer 1234567 steht schon in Zeile 1" in failed.value.errors
    assert "Zeile 3: öffentliche ID vvccccbdthji steht schon in Zeile 1" in failed.value.errors


def test_duplicates_against_stock_import_nothing(
    session: Session, make_yubikey: Callable[..., tuple[Token, SimulatedKey]]
) -> None:
    run_import(session, (DATA / "ykman.csv").read_bytes())
    before = stock(session)
    data = (
        b"1234567,vvccccccccbc,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,\n"
        b"2222222,vvccccccccbd,0a1b2c3d4e5f,00112233445566778899aabbccddeeff,,t,\n"
    )

    with pytest.raises(ImportFailed, match="Seriennummer 1234567 ist bereits im Bestand"):
        run_import(session, data)

    assert stock(session) == before


def test_unsupported_log_event_is_an_error() -> None:
    data = b"Static Password,1/21/2014,1,,,00112233445566778899aabbccddeeff,,,0,0,0,0,0,0,0,0,0,0\n"

    with pytest.raises(ImportFailed, match="Zeile 1: Ereignis 'Static Password'"):
        importer.parse(data, Format.YKPERS)


def test_pskc_with_an_xml_entity_bomb_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
        b'<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">&a;'
        b"</KeyContainer>"
    )

    with pytest.raises(ImportFailed, match="PSKC-Datei nicht lesbar"):
        importer.parse(bomb, Format.PSKC)


def test_empty_file_is_an_error() -> None:
    with pytest.raises(ImportFailed, match="keinen Schlüssel"):
        importer.parse(b"\n\n")


def test_import_is_audited_without_secrets(session: Session) -> None:
    from flexnet.models import AuditEntry

    run_import(session, (DATA / "ykman.csv").read_bytes())

    entry = session.scalars(select(AuditEntry).where(AuditEntry.tag == "token:stock:import")).one()
    assert '"yubico_otp":2' in entry.data
    assert "00112233" not in entry.data and "0a1b2c3d4e5f" not in entry.data


def test_oversized_csv_field_is_a_line_error() -> None:
    data = b"1234567," + b"c" * 200_000 + b"\n"

    with pytest.raises(ImportFailed, match="Zeile 1"):
        importer.parse(data, Format.YKMAN)


def test_pskc_with_a_bad_number_is_an_error_not_a_crash() -> None:
    data = (DATA / "yubikeys.pskcxml").read_bytes().replace(b'Length="44"', b'Length="abc"')

    with pytest.raises(ImportFailed):
        importer.parse(data, Format.PSKC)
