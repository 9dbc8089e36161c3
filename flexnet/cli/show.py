"""Plain-text views of a practice or a user for ``flexnet … show``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flexnet import vpn
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import (
    EffectiveStatus,
    State,
    practice_status,
    termination_reason,
    user_status,
)
from flexnet.models import (
    Letter,
    LetterStatus,
    LockException,
    Practice,
    PracticeKind,
    Token,
    User,
    VpnSession,
)
from flexnet.provisioning import mailruns
from flexnet.users import kind_label

_STATE_LABEL = {
    State.ACTIVE: "aktiv",
    State.PENDING: "wartet",
    State.LOCKED: "gesperrt",
    State.REVOKED: "beendet",
}
_LETTER_STATUS_LABEL = {
    LetterStatus.DUE: "wartet auf den nächsten Versandlauf",
    LetterStatus.PRINTED: "gedruckt",
    LetterStatus.DISPATCHED: "versandt",
    LetterStatus.CANCELLED: "entfallen",
}
_TOKEN_STATUS_LABEL = {
    "stock": "im Lager",
    "assigned": "zugewiesen",
    "shipped": "versandt",
    "active": "in Gebrauch",
    "locked": "gesperrt",
    "lost": "verloren",
    "returned": "zurückgegeben",
    "retired": "ausgemustert",
}


def _row(label: str, value: str) -> str:
    return f"  {label + ':':<22}{value}"


def _status_text(status: EffectiveStatus) -> str:
    label = _STATE_LABEL[status.state]
    return f"{label} – {status.reason}" if status.reason else label


def _lock_date_text(status: EffectiveStatus, quarters: int) -> str:
    if status.lock_at is None:
        return "keine (kein Ende der Tätigkeit erfasst)"
    when = status.lock_at.astimezone(BERLIN)
    return f"{when:%d.%m.%Y %H:%M} (§ 10.3: {quarters} Quartale nach Ende der Tätigkeit)"


def _exception_text(exception: LockException | None) -> str | None:
    if exception is None:
        return None
    return (
        f"bis {exception.until:%d.%m.%Y}: {exception.reason} "
        f"(Az. {exception.decision_ref}, entschieden von {exception.decided_by})"
    )


def _token_text(token: Token) -> str:
    public = f", {token.public_id}" if token.public_id else ""
    return f"{token.serial} ({_TOKEN_STATUS_LABEL[token.status.value]}{public})"


def show_practice(practice: Practice, now: datetime, quarters: int) -> Iterator[str]:
    status = practice_status(practice, now, quarters)
    kind = "Dritter (§ 1.1)" if practice.kind is PracticeKind.THIRD_PARTY else "Mitgliedspraxis"
    yield f"Betriebsstätte {practice.bsnr} – {practice.name}"
    yield _row("Art", f"{kind}, Zugangsprofil {practice.access_profile}")
    extra = f"{practice.address_extra}, " if practice.address_extra else ""
    yield _row("Anschrift", f"{extra}{practice.street}, {practice.zip_code} {practice.city}")
    yield _row("Status", _status_text(status))
    ended = practice.activity_ended_on
    yield _row("Ende der Tätigkeit", f"{ended:%d.%m.%Y}" if ended else "–")
    yield _row("Sperre ab", _lock_date_text(status, quarters))
    if practice.terminated_by is not None and practice.termination_notice_on is not None:
        received = f"{practice.termination_notice_on:%d.%m.%Y}"
        yield _row("Kündigung", f"{termination_reason(practice)}, eingegangen am {received}")
    exception = _exception_text(practice.lock_exception)
    if exception:
        yield _row("Ausnahme", exception)
    acceptance = practice.terms_acceptance
    yield _row(
        "Nutzungsbedingungen",
        f"Version {acceptance.version} am {acceptance.accepted_on:%d.%m.%Y} "
        f"({'Papier' if acceptance.channel.value == 'paper' else 'Portal'})"
        if acceptance
        else "nicht angenommen",
    )
    tokens = ", ".join(_token_text(t) for t in practice.tokens) or "keiner"
    yield _row("Yubikey", tokens)
    yield _row("Benutzer", str(len(practice.users)))
    for member in practice.users:
        user_state = _STATE_LABEL[user_status(member, now, quarters).state]
        yield f"    {member.username:<24}{kind_label(member.kind):<16}{user_state}"
    yield from _letter_lines(practice.letters)


def _letter_lines(letters: list[Letter]) -> Iterator[str]:
    yield _row("Briefe", str(len(letters)) if letters else "keine")
    for letter in letters:
        yield f"    {_letter_text(letter)}"


def _letter_text(letter: Letter) -> str:
    who = f" {letter.user.username}" if letter.user else ""
    text = f"{mailruns.reference(letter)} {mailruns.kind_label(letter.kind)}{who}: "
    run = letter.run
    if letter.status is LetterStatus.DISPATCHED and run and run.dispatched_on:
        return text + f"versandt am {run.dispatched_on:%d.%m.%Y} (Lauf {run.id})"
    if letter.status is LetterStatus.PRINTED and run:
        return text + f"gedruckt in Lauf {run.id}, Versand nicht bestätigt"
    return text + _LETTER_STATUS_LABEL[letter.status]


def show_user(user: User, now: datetime, quarters: int) -> Iterator[str]:
    status = user_status(user, now, quarters)
    yield f"Benutzer {user.username}" + (f" – {user.name}" if user.name else "")
    yield _row("Art", kind_label(user.kind) + (f", LANR {user.lanr}" if user.lanr else ""))
    yield _row("Betriebsstätte", f"{user.practice.bsnr} – {user.practice.name}")
    yield _row("Status", _status_text(status))
    if user.activity_ended_on:
        yield _row("Eigenes Tätigkeitsende", f"{user.activity_ended_on:%d.%m.%Y}")
    yield _row("Sperre ab", _lock_date_text(status, quarters))
    exception = _exception_text(user.lock_exception)
    if exception:
        yield _row("Ausnahme", exception)
    set_at = user.password_set_at
    yield _row(
        "Kennwort",
        f"gesetzt am {set_at.astimezone(BERLIN):%d.%m.%Y}" if set_at else "noch keines (Brief)",
    )
    if user.next_password_hash:
        yield _row("Neues Kennwort", "gedruckt; ersetzt das bisherige bei erster Nutzung")
    yield _row("Fehlversuche", str(user.failed_logins))
    tokens = ", ".join(_token_text(t) for t in user.practice.tokens) or "keiner"
    yield _row("Yubikey der Praxis", tokens)
    sessions = vpn.recent_sessions(user)
    yield _row("VPN-Sitzungen", str(len(sessions)) if sessions else "keine")
    for vpn_session in sessions:
        yield f"    {_session_text(vpn_session)}"
    yield from _letter_lines(user.letters)


def _session_text(vpn_session: VpnSession) -> str:
    started = vpn_session.started_at.astimezone(BERLIN)
    state = "aktiv" if vpn_session.stopped_at is None else "beendet"
    text = f"{started:%d.%m.%Y %H:%M} {vpn_session.nas.name} {vpn_session.framed_ip or '-'} {state}"
    if vpn_session.disconnect_requested_at is not None:
        text += f", Trennung: {vpn_session.disconnect_result or 'angefordert'}"
    return text


def token_lines(token: Token) -> Iterator[str]:
    yield f"Yubikey {token.serial} ({token.kind.value})"
    yield _row(
        "Status",
        _TOKEN_STATUS_LABEL[token.status.value]
        + (f" – {token.lock_reason}" if token.lock_reason else ""),
    )
    yield _row("Öffentliche ID", token.public_id or "–")
    practice = token.practice
    yield _row("Betriebsstätte", f"{practice.bsnr} – {practice.name}" if practice else "–")
    if token.remote_validation:
        yield _row("Prüfung", "externer Yubico-Prüfdienst")
    elif token.kind.value == "yubico_otp":
        yield _row("Zähler", f"{token.otp_usage_counter} / Sitzung {token.otp_session_counter}")
    else:
        yield _row("Zähler", str(token.hotp_counter))
    used = token.last_used_at
    yield _row("Zuletzt benutzt", f"{used.astimezone(BERLIN):%d.%m.%Y %H:%M}" if used else "nie")
    if token.counter_warned_at:
        yield _row("Warnung", "Zähler fast erschöpft: Yubikey bald ersetzen")
