"""German wording of states and records, for people: the CLI's views and the admin UI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from flexnet.lifecycle.rules import BERLIN, termination_lock_instant
from flexnet.lifecycle.status import EffectiveStatus, State
from flexnet.models import (
    Letter,
    LetterStatus,
    LockException,
    MailRunStatus,
    Practice,
    PracticeKind,
    PracticeStatus,
    RequestStatus,
    ReturnCondition,
    TakenOverPassword,
    TerminationBy,
    TermsChannel,
    Token,
    TokenKind,
    UserStatus,
    VpnSession,
)
from flexnet.provisioning import mailruns

PRACTICE_STATUS_LABEL = {
    PracticeStatus.ACTIVE: "aktiv",
    PracticeStatus.PENDING: "wartet auf Nutzungsbedingungen",
    PracticeStatus.LOCKED: "gesperrt",
}
USER_STATUS_LABEL = {
    UserStatus.ACTIVE: "aktiv",
    UserStatus.PENDING: "wartet auf Zugangsdaten",
    UserStatus.LOCKED: "gesperrt",
    UserStatus.REVOKED: "beendet",
}
STATE_LABEL = {
    State.ACTIVE: "aktiv",
    State.PENDING: "wartet",
    State.LOCKED: "gesperrt",
    State.REVOKED: "beendet",
}
LETTER_STATUS_LABEL = {
    LetterStatus.DUE: "vorgemerkt",
    LetterStatus.PRINTED: "gedruckt",
    LetterStatus.DISPATCHED: "versandt",
    LetterStatus.CANCELLED: "entfallen",
    LetterStatus.RETURNED: "unzustellbar zurück",
}
TAKEN_OVER_LABEL = {
    TakenOverPassword.UNCHECKED: (
        ", übernommen, wird bei der ersten Anmeldung gegen die Kennwortrichtlinie geprüft"
    ),
    TakenOverPassword.WEAK: (
        ", übernommen, verletzt die Kennwortrichtlinie, muss bei der nächsten Anmeldung "
        "geändert werden"
    ),
}
TOKEN_STATUS_LABEL = {
    "stock": "im Lager",
    "assigned": "zugewiesen",
    "shipped": "versandt",
    "active": "in Gebrauch",
    "locked": "gesperrt",
    "lost": "verloren",
    "returned": "zurückgegeben",
    "retired": "ausgemustert",
}


# How a state looks as a badge (CSS class): what is fine, what waits, what is refused.
TONE = {
    "active": "ok",
    "pending": "warn",
    "locked": "danger",
    "revoked": "muted",
    "stock": "info",
    "assigned": "warn",
    "shipped": "warn",
    "lost": "danger",
    "returned": "muted",
    "retired": "muted",
    "open": "warn",
    "verified": "info",
    "fulfilled": "ok",
    "rejected": "muted",
    "produced": "warn",
    "dispatched": "ok",
    "cancelled": "muted",
    "due": "warn",
    "printed": "info",
}
PRACTICE_KIND_LABEL = {
    PracticeKind.MEMBER: "Mitgliedspraxis",
    PracticeKind.THIRD_PARTY: "Dritter (§ 1 Abs. 1)",
}
TOKEN_KIND_LABEL = {
    TokenKind.YUBICO_OTP: "Yubikey",
    TokenKind.OATH_HOTP: "OATH-HOTP",
    TokenKind.TOTP: "TOTP",
}
TERMS_CHANNEL_LABEL = {
    TermsChannel.PAPER: "Teilnahmeerklärung (Papier)",
    TermsChannel.PORTAL: "Portal (KVSAonline)",
}
TERMINATION_BY_LABEL = {
    TerminationBy.MEMBER: "durch die Praxis oder den Dritten",
    TerminationBy.ASSOCIATION: "durch die KVSA",
    TerminationBy.EXTRAORDINARY: "außerordentlich",
}
REQUEST_STATUS_LABEL = {
    RequestStatus.OPEN: "offen",
    RequestStatus.VERIFIED: "bestätigt",
    RequestStatus.FULFILLED: "erledigt",
    RequestStatus.REJECTED: "abgelehnt",
}
MAIL_RUN_STATUS_LABEL = {
    MailRunStatus.PRODUCED: "gedruckt, Versand nicht bestätigt",
    MailRunStatus.DISPATCHED: "versandt",
    MailRunStatus.CANCELLED: "storniert",
}
# The access profiles flexnet ships (``clients.profiles``); others carry staff's own name.
PROFILE_LABEL = {
    "full": "voller Zugang",
    "restricted": "eingeschränkter Zugang (Dritte)",
    "password-change": "nur Kennwortänderung",
}
DISCONNECT_RESULT_LABEL = {
    "sending": "wird gesendet",
    "ack": "getrennt",
    "nak": "vom Konzentrator abgelehnt",
    "timeout": "keine Antwort des Konzentrators",
    "no_coa_port": "nicht möglich: für den Konzentrator ist kein CoA-Port eingetragen",
}


def profile_label(name: str) -> str:
    return PROFILE_LABEL.get(name, f"Profil „{name}“")


def disconnect_label(result: str | None) -> str:
    if result is None:
        return "angefordert"
    return DISCONNECT_RESULT_LABEL.get(result, "unbekanntes Ergebnis")


def token_status_label(status: str) -> str:
    """A key's status in German (``status``: a ``TokenStatus`` or its value)."""
    return TOKEN_STATUS_LABEL.get(str(status), "unbekannt")


def euro(cents: int) -> str:
    """An amount as Germans write it: 1.234,50 €."""
    return f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d} €"


def duration(span: timedelta) -> str:
    """A span in German words ("1 Tag", "24 Stunden", "90 Minuten")."""
    seconds = int(span.total_seconds())
    for size, one, many in ((86400, "Tag", "Tage"), (3600, "Stunde", "Stunden")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {one if count == 1 else many}"
    minutes = seconds // 60
    return f"{minutes} {'Minute' if minutes == 1 else 'Minuten'}"


FIELD_LABEL = {
    "name": "Name",
    "street": "Straße",
    "zip_code": "PLZ",
    "city": "Ort",
    "address_extra": "Adresszusatz",
    "phone": "Telefon",
    "contact_person": "Ansprechpartner",
    "lanr": "LANR",
    "undeliverable_since": "Unzustellbar seit",
}


def change_lines(changes: Mapping[str, Mapping[str, object]]) -> list[str]:
    """What an edit changed, one line per field: "Ort: Magdeburg → Halle (Saale)"."""
    return [
        f"{FIELD_LABEL.get(field, field)}: {change['old'] or '–'} → {change['new'] or '–'}"
        for field, change in changes.items()
    ]


def status_text(status: EffectiveStatus) -> str:
    label = STATE_LABEL[status.state]
    return f"{label} – {status.reason}" if status.reason else label


def lock_date_text(status: EffectiveStatus, quarters: int, practice: Practice) -> str:
    """When the dates lock, and by which rule (§ 10.2 termination or § 10.3)."""
    if status.lock_at is None:
        return "keine (kein Ende der Tätigkeit erfasst)"
    when = status.lock_at.astimezone(BERLIN)
    ends = practice.access_ends_on
    if ends is not None and status.lock_at == termination_lock_instant(ends):
        return f"{when:%d.%m.%Y %H:%M} (§ 10.2: Kündigung, letzter Tag {ends:%d.%m.%Y})"
    return f"{when:%d.%m.%Y %H:%M} (§ 10.3: {quarters} Quartale nach Ende der Tätigkeit)"


def takeover_lines(practice: Practice) -> list[str]:
    """The practice's changes of hands (§ 2.3): from whom it was continued, to whom it went."""
    lines = []
    for record in practice.taken_over:
        where = (
            f", bisher BSNR {record.predecessor.bsnr}"
            if record.predecessor_id != practice.id
            else ""
        )
        lines.append(f"am {record.taken_over_on:%d.%m.%Y} von {record.previous_name}{where}")
    for record in practice.handed_over:
        if record.practice_id != practice.id:
            lines.append(
                f"am {record.taken_over_on:%d.%m.%Y} übergeben an BSNR {record.practice.bsnr} "
                f"({record.practice.name})"
            )
    return lines


def exception_text(exception: LockException | None) -> str | None:
    if exception is None:
        return None
    return (
        f"bis {exception.until:%d.%m.%Y}: {exception.reason} "
        f"(Az. {exception.decision_ref}, entschieden von {exception.decided_by})"
    )


def token_text(token: Token) -> str:
    public = f", {token.public_id}" if token.public_id else ""
    return f"{token.serial} ({TOKEN_STATUS_LABEL[token.status.value]}{public})"


def letter_text(letter: Letter, outlook: Mapping[int, str | None] | None = None) -> str:
    """The letter and where it stands; ``outlook`` (from ``mailruns.outlook``) tells a
    letter the next run carries from one held back, and why."""
    who = f" {letter.user.username}" if letter.user else ""
    text = f"{mailruns.reference(letter)} {mailruns.kind_label(letter.kind)}{who}: "
    if letter.status is LetterStatus.DUE and outlook is not None and letter.id in outlook:
        reason = outlook[letter.id]
        return text + (
            "fällig für den nächsten Versandlauf" if reason is None else f"wartet: {reason}"
        )
    run = letter.run
    if letter.status is LetterStatus.DISPATCHED and run and run.dispatched_on:
        return text + f"versandt am {run.dispatched_on:%d.%m.%Y} (Lauf {run.id})"
    if letter.status is LetterStatus.PRINTED and run:
        return text + f"gedruckt in Lauf {run.id}, Versand nicht bestätigt"
    if letter.status is LetterStatus.RETURNED and letter.returned_on:
        return text + f"unzustellbar zurück am {letter.returned_on:%d.%m.%Y}"
    return text + LETTER_STATUS_LABEL[letter.status]


# Why a session's account may not be on the VPN (vpn_sessions.flagged), for staff.
SESSION_FLAG_LABEL = {
    "locked": "Zugang gesperrt",
    "pending": "Zugang noch nicht aktiv",
    "revoked": "Zugang beendet",
    "key": "Yubikey gesperrt oder nicht aktiv",
    "unknown": "Benutzer in flexnet unbekannt",
}


def session_text(vpn_session: VpnSession) -> str:
    """One line of a user's or practice's sessions (admin pages, ``flexnet show``)."""
    started = vpn_session.started_at.astimezone(BERLIN)
    state = "aktiv" if vpn_session.stopped_at is None else "beendet"
    text = f"{started:%d.%m.%Y %H:%M} {vpn_session.nas.name} {vpn_session.framed_ip or '-'} {state}"
    if vpn_session.flagged is not None:
        text += f", ohne Berechtigung: {SESSION_FLAG_LABEL[vpn_session.flagged]}"
    if vpn_session.disconnect_requested_at is not None:
        text += f", Trennung: {disconnect_label(vpn_session.disconnect_result)}"
    return text


RETURN_CONDITION_LABEL = {
    ReturnCondition.GOOD: "in gutem Zustand",
    ReturnCondition.DAMAGED: "beschädigt",
}


def return_text(token: Token) -> str | None:
    if token.returned_on is None:
        return None
    condition = RETURN_CONDITION_LABEL[token.return_condition] if token.return_condition else ""
    return f"eingegangen am {token.returned_on:%d.%m.%Y}, {condition}".rstrip(", ")
