"""Import of programmed keys into stock: all or nothing, every error with its line.

Formats (the research notes behind them are in docs/IMPORT_FORMATS.md):

- ``ykman``: ``serial,public_id,private_id,aes_key,access_code,timestamp,`` as ykman's
  ``--config-output`` and the Personalization Tool's "Yubico" log write it. The tool's
  OATH-HOTP lines carry the moving factor in the third column and a 20-byte seed.
- ``ykpers``: the Personalization Tool's default ("traditional") log, 18 columns,
  ``Yubico OTP,<date>,<slot>,<public id>,<private id>,<aes key>,…`` and ``OATH-HOTP,…``.
  It carries no serial number: such keys are filed under their public id / token id.
- ``pskc``: RFC 6030 files (python-pskc, parsed with defusedxml). Yubico OTP keys carry
  ``CN=<public id>, UID=<private id>`` in their UserId.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pskc
import pskc.exceptions
import pskc.key
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.errors import ValidationError
from flexnet.labels import TOKEN_STATUS_LABEL
from flexnet.models import Letter, LetterStatus, Token, TokenKind, TokenStatus
from flexnet.otp import modhex
from flexnet.otp.secrets import SecretBox, YubicoSecret, token_context

_HEX = re.compile(r"[0-9a-f]+")
# A Yubikey serial as printed on the key: ASCII digits, as many as fit the column.
SERIAL = re.compile(r"[0-9]{1,12}")
_PSKC_YUBICO = "http://www.yubico.com/#yubikey-aes"
_PSKC_HOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
_USERID = re.compile(r"CN=(?P<public>[a-z]+),\s*UID=(?P<private>[0-9a-fA-F]+)")


class Format(enum.StrEnum):
    AUTO = "auto"
    YKMAN = "ykman"
    YKPERS = "ykpers"
    PSKC = "pskc"


@dataclass(frozen=True)
class ImportedKey:
    line: int
    serial: str
    kind: TokenKind
    public_id: str | None
    secret: bytes = field(repr=False)  # YubicoSecret bytes, or the OATH seed
    digits: int | None = None
    counter: int = 0


# A file may hold millions of bad lines: the first are enough to see what is wrong, the
# rest are counted, so the answer stays small whatever the file.
SHOWN_ERRORS = 50


class ImportFailed(ValidationError):
    """Nothing was imported; ``errors`` holds the first problems found (at most
    ``SHOWN_ERRORS``, each with its line), ``count`` how many there were in all."""

    def __init__(self, errors: Sequence[str], count: int | None = None) -> None:
        self.errors = list(errors[:SHOWN_ERRORS])
        self.count = len(errors) if count is None else count
        shown = "; ".join(self.errors[:5])
        if self.count > 5:
            shown += f"; … ({self.count_text})"
        super().__init__(f"Import abgebrochen, nichts übernommen: {shown}")

    @property
    def count_text(self) -> str:
        """'1.200 Fehler' (German digit grouping)."""
        return f"{self.count:,}".replace(",", ".") + " Fehler"

    @property
    def lines(self) -> list[str]:
        """What a page shows: how many problems, then the first ones, one per line."""
        return [f"Import abgebrochen, nichts übernommen ({self.summary}):", *self.errors]

    @property
    def summary(self) -> str:
        """How many problems there were and which are shown, in German."""
        if self.count > len(self.errors):
            return f"{self.count_text}, die ersten {len(self.errors)}"
        return self.count_text


class _Errors:
    """The problems of one file: the first ``SHOWN_ERRORS`` kept, all of them counted."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.shown) < SHOWN_ERRORS:
            self.shown.append(message)

    def extend(self, other: _Errors) -> None:
        for message in other.shown:
            self.add(message)
        self.count += other.count - len(other.shown)

    def failed(self) -> ImportFailed:
        return ImportFailed(self.shown, self.count)


@dataclass(frozen=True)
class ImportSummary:
    yubico_otp: int
    oath_hotp: int
    reprogrammed: int = 0  # returned keys back in stock with new secrets (§ 10.2)

    @property
    def total(self) -> int:
        return self.yubico_otp + self.oath_hotp


class _LineError(Exception):
    pass


def _excerpt(value: str, length: int = 40) -> str:
    """A value from the file as an error quotes it: at most ``length`` characters."""
    return value if len(value) <= length else value[:length] + "…"


def _hex(value: str, what: str, length: int) -> bytes:
    text = value.strip().lower()
    if len(text) != length or not _HEX.fullmatch(text):
        raise _LineError(f"{what} muss {length} Hex-Zeichen haben")
    return bytes.fromhex(text)


def _public_id(value: str, *, required: bool) -> str | None:
    text = value.strip().lower()
    if not text and not required:
        return None
    if len(text) != 12 or not modhex.is_modhex(text):
        raise _LineError("öffentliche ID muss 12 Modhex-Zeichen haben")
    return text


def _serial(value: str) -> str:
    text = value.strip()
    if not SERIAL.fullmatch(text):
        raise _LineError(f"Seriennummer {_excerpt(text)!r} ist keine Zahl")
    return text


def _yubico(line: int, serial: str, public: str, private: str, aes: str) -> ImportedKey:
    public_id = _public_id(public, required=True)
    secret = YubicoSecret(_hex(private, "private ID", 12), _hex(aes, "AES-Schlüssel", 32))
    return ImportedKey(line, serial, TokenKind.YUBICO_OTP, public_id, secret.to_bytes())


def _hotp(line: int, serial: str, public: str, seed: str, digits: int, counter: str) -> ImportedKey:
    if digits not in (6, 8):
        raise _LineError("OATH-HOTP braucht 6 oder 8 Stellen")
    if not counter.strip().isdigit():
        raise _LineError("Zählerstand (moving factor) ist keine Zahl")
    public_id = _public_id(public, required=False)
    return ImportedKey(
        line,
        serial,
        TokenKind.OATH_HOTP,
        public_id,
        _hex(seed, "OATH-Schlüssel", 40),
        digits,
        int(counter),
    )


def _ykman_row(line: int, row: list[str]) -> ImportedKey:
    if len(row) not in (6, 7) or (len(row) == 7 and row[6].strip()):
        raise _LineError(f"erwartet 6 Felder und ein Komma am Ende, gefunden {len(row)}")
    serial, public, third, key = (_serial(row[0]), row[1], row[2].strip(), row[3].strip())
    if len(key) == 40 and third.isdigit():  # Personalization Tool, OATH-HOTP
        return _hotp(line, serial, public, key, 6, third)
    return _yubico(line, serial, public, third, key)


def _ykpers_row(line: int, row: list[str]) -> ImportedKey | None:
    event = row[0].strip()
    if event == "LOGGING START":
        return None
    if len(row) != 18:
        raise _LineError(f"erwartet 18 Felder, gefunden {len(row)}")
    if event == "Yubico OTP":
        public = _public_id(row[3], required=True)
        return _yubico(line, public or "", row[3], row[4], row[5])
    if event == "OATH-HOTP":
        token_id = _public_id(row[3], required=True)
        digits = int(row[11]) if row[11].strip().isdigit() else 0
        return _hotp(line, token_id or "", row[3], row[5], digits, row[12])
    raise _LineError(f"Ereignis {_excerpt(event)!r} enthält keinen importierbaren Schlüssel")


def _parse_csv(
    text: str, parse_row: Callable[[int, list[str]], ImportedKey | None]
) -> tuple[list[ImportedKey], _Errors]:
    keys: list[ImportedKey] = []
    errors = _Errors()
    rows = csv.reader(io.StringIO(text))
    number = 0
    while True:
        number += 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as error:
            errors.add(f"Zeile {number}: kein gültiges CSV ({_excerpt(str(error))})")
            break
        if not row or not "".join(row).strip():
            continue
        try:
            key = parse_row(number, row)
        except _LineError as error:
            errors.add(f"Zeile {number}: {error}")
            continue
        if key is not None:
            keys.append(key)
    return keys, errors


def _pskc_key(number: int, key: pskc.key.Key) -> ImportedKey:
    serial = _serial(key.serial or "")
    secret = key.secret
    if secret is None:
        raise _LineError("ohne Schlüssel")
    if key.algorithm == _PSKC_YUBICO:
        match = _USERID.fullmatch((key.key_userid or "").strip())
        if match is None:
            raise _LineError("UserId muss 'CN=<öffentliche ID>, UID=<private ID>' sein")
        return _yubico(number, serial, match["public"], match["private"], secret.hex())
    if key.algorithm == _PSKC_HOTP:
        token_id = key.id if key.id and ":" not in key.id else ""
        length = key.response_length or 6
        # The Personalization Tool counts the token id into the response length.
        digits = length - len(token_id) if length > 8 else length
        public = token_id if len(token_id) == 12 and modhex.is_modhex(token_id) else ""
        return _hotp(number, serial, public, secret.hex(), digits, str(key.counter or 0))
    raise _LineError(f"Algorithmus {_excerpt(str(key.algorithm))!r} wird nicht unterstützt")


def _parse_pskc(data: bytes, passphrase: str | None) -> tuple[list[ImportedKey], _Errors]:
    keys: list[ImportedKey] = []
    errors = _Errors()
    # PSKC needs no DTD; refusing one keeps entity tricks away whatever XML parser
    # python-pskc picks (it prefers lxml when installed, which expands entities).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        errors.add("PSKC-Datei nicht lesbar: DTD/Entitäten sind nicht erlaubt")
        return keys, errors
    try:
        container = pskc.PSKC(io.BytesIO(data))
        if passphrase is not None:
            container.encryption.derive_key(passphrase)
        listed = list(container.keys)
    except (pskc.exceptions.PSKCError, ValueError) as error:
        errors.add(f"PSKC-Datei nicht lesbar: {_excerpt(str(error))}")
        return keys, errors
    for number, key in enumerate(listed, start=1):
        try:
            keys.append(_pskc_key(number, key))
        except _LineError as error:
            errors.add(f"Schlüssel {number}: {error}")
        except pskc.exceptions.DecryptionError:
            errors.add(f"Schlüssel {number}: verschlüsselt, Passphrase fehlt oder ist falsch")
        except (pskc.exceptions.PSKCError, ValueError) as error:
            errors.add(f"Schlüssel {number}: nicht lesbar ({_excerpt(str(error))})")
    return keys, errors


def detect_format(data: bytes) -> Format:
    head = data.lstrip()[:200]
    if head.startswith(b"<"):
        return Format.PSKC
    first = head.split(b"\n", 1)[0]
    if first.startswith((b"LOGGING START", b"Yubico OTP,", b"OATH-HOTP,")):
        return Format.YKPERS
    return Format.YKMAN


def parse(
    data: bytes, fmt: Format = Format.AUTO, *, passphrase: str | None = None
) -> list[ImportedKey]:
    """Every key in the file, or ImportFailed listing every problem (with line numbers)."""
    if fmt is Format.AUTO:
        fmt = detect_format(data)
    if fmt is Format.PSKC:
        keys, errors = _parse_pskc(data, passphrase)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportFailed(["Datei ist kein UTF-8-Text"]) from None
        row_parser = _ykman_row if fmt is Format.YKMAN else _ykpers_row
        keys, errors = _parse_csv(text, row_parser)
    errors.extend(_duplicates_within(keys))
    if not keys and not errors.count:
        errors.add("die Datei enthält keinen Schlüssel")
    if errors.count:
        raise errors.failed()
    return keys


def _duplicates_within(keys: Iterable[ImportedKey]) -> _Errors:
    errors = _Errors()
    seen: dict[tuple[str, str], int] = {}
    for key in keys:
        for label, value in (("Seriennummer", key.serial), ("öffentliche ID", key.public_id)):
            if value is None:
                continue
            first = seen.setdefault((label, value), key.line)
            if first != key.line:
                errors.add(f"Zeile {key.line}: {label} {value} steht schon in Zeile {first}")
    return errors


def _duplicates_in_stock(
    session: Session, keys: Sequence[ImportedKey], box: SecretBox
) -> tuple[_Errors, dict[str, Token]]:
    """Refusals for serials or public ids already in use, and the returned keys among
    the serials: those are reprogrammed (new secrets) and go back to stock (§ 10.2)."""
    serials = {k.serial for k in keys}
    public_ids = {k.public_id for k in keys if k.public_id}
    known = {
        token.serial: token
        for token in session.scalars(select(Token).where(Token.serial.in_(serials)))
    }
    known_public = dict(
        session.execute(
            select(Token.public_id, Token.serial).where(Token.public_id.in_(public_ids))
        ).all()
    )
    errors = _Errors()
    for key in keys:
        token = known.get(key.serial)
        if token is not None and token.status is not TokenStatus.RETURNED:
            errors.add(
                f"Zeile {key.line}: Seriennummer {key.serial} ist bereits im Bestand "
                f"({TOKEN_STATUS_LABEL[token.status.value]}; neu programmieren lässt sich "
                "nur ein zurückgegebener Yubikey)"
            )
        if (
            token is not None
            and token.status is TokenStatus.RETURNED
            and _same_secret(token, key, box)
        ):
            errors.add(
                f"Zeile {key.line}: Yubikey {key.serial} trägt noch seine alten Schlüssel; "
                "bitte neu programmieren (neuer AES-Schlüssel und neue private ID bzw. "
                "neues OATH-Geheimnis), sonst gälten mitgeschnittene Einmalkennwörter wieder"
            )
        holder = known_public.get(key.public_id or "")
        if holder is not None and holder != key.serial:
            errors.add(f"Zeile {key.line}: öffentliche ID {key.public_id} ist bereits im Bestand")
    returned = {serial: t for serial, t in known.items() if t.status is TokenStatus.RETURNED}
    return errors, returned


def _same_secret(token: Token, key: ImportedKey, box: SecretBox) -> bool:
    """Whether the file holds the secret the key had (or a part of it: the AES key or
    the private id alone would let old OTPs decrypt or match)."""
    if token.secret is None:
        return False
    old = box.open(token.secret, context=token_context(token.serial))
    if token.kind is not TokenKind.YUBICO_OTP or key.kind is not TokenKind.YUBICO_OTP:
        return old == key.secret
    before, after = YubicoSecret.from_bytes(old), YubicoSecret.from_bytes(key.secret)
    return before.aes_key == after.aes_key or before.private_id == after.private_id


def _reprogram(token: Token, key: ImportedKey, secret: bytes) -> None:
    """A returned key with new secrets: back to stock with a fresh replay state."""
    token.kind = key.kind
    token.public_id = key.public_id
    token.secret = secret
    token.remote_validation = False
    token.digits = key.digits
    token.hotp_counter = key.counter
    token.otp_usage_counter, token.otp_session_counter = 0, -1
    token.otp_timestamp = token.totp_last_step = token.wsapi_last_nonce = None
    token.counter_warned_at = token.last_used_at = None
    token.practice = None
    token.replaced_by_id = None
    token.returned_on = token.return_condition = token.return_reminded_on = None
    token.status = TokenStatus.STOCK


def import_keys(
    session: Session,
    keys: Sequence[ImportedKey],
    *,
    box: SecretBox,
    actor: Actor,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Add the keys to stock with encrypted secrets; the caller's commit makes it final."""
    errors, returned = _duplicates_in_stock(session, keys, box)
    if errors.count:
        raise errors.failed()
    for key in keys:
        secret = box.seal(key.secret, context=token_context(key.serial))
        if key.serial in returned:
            _reprogram(returned[key.serial], key, secret)
        else:
            session.add(
                Token(
                    serial=key.serial,
                    kind=key.kind,
                    public_id=key.public_id,
                    secret=secret,
                    digits=key.digits,
                    hotp_counter=key.counter,
                    status=TokenStatus.STOCK,
                    created_at=now,
                )
            )
        if progress:
            progress(1)
    if returned:
        # Letters about the key's former life (an unsent key letter, a reminder) lapse.
        session.execute(
            update(Letter)
            .where(
                Letter.token_id.in_([token.id for token in returned.values()]),
                Letter.status == LetterStatus.DUE,
            )
            .values(status=LetterStatus.CANCELLED),
            execution_options={"synchronize_session": False},
        )
        audit.record_many(
            session,
            [
                audit.Pending(AuditTag.TOKEN_REPROGRAM, Subject("token", serial))
                for serial in sorted(returned)
            ],
            actor=actor,
            now=now,
        )
    summary = ImportSummary(
        yubico_otp=sum(k.kind is TokenKind.YUBICO_OTP for k in keys),
        oath_hotp=sum(k.kind is TokenKind.OATH_HOTP for k in keys),
        reprogrammed=len(returned),
    )
    audit.record(
        session,
        AuditTag.TOKEN_IMPORT,
        actor=actor,
        data={
            "yubico_otp": summary.yubico_otp,
            "oath_hotp": summary.oath_hotp,
            "serials": [k.serial for k in keys][:50],
        },
        now=now,
    )
    return summary
