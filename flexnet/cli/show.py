"""Plain-text views of a practice or a user for ``flexnet … show``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from flexnet import labels
from flexnet.accounts import vpn
from flexnet.accounts.users import kind_label
from flexnet.lifecycle.rules import BERLIN
from flexnet.lifecycle.status import (
    practice_status,
    termination_reason,
    user_status,
)
from flexnet.models import (
    Letter,
    Practice,
    PracticeKind,
    Token,
    User,
    UserKind,
)


def _row(label: str, value: str) -> str:
    return f"  {label + ':':<22}{value}"


def show_practice(
    practice: Practice,
    now: datetime,
    quarters: int,
    outlook: Mapping[int, str | None] | None = None,
) -> Iterator[str]:
    status = practice_status(practice, now, quarters)
    kind = "Dritter (§ 1.1)" if practice.kind is PracticeKind.THIRD_PARTY else "Mitgliedspraxis"
    yield f"Betriebsstätte {practice.bsnr} – {practice.name}"
    yield _row("Art", f"{kind}, Zugangsprofil {practice.access_profile}")
    extra = f"{practice.address_extra}, " if practice.address_extra else ""
    yield _row("Anschrift", f"{extra}{practice.street}, {practice.zip_code} {practice.city}")
    yield _row("Telefon", practice.phone or "–")
    if practice.contact_person:
        yield _row("Ansprechpartner", practice.contact_person)
    yield _row("Status", labels.status_text(status))
    ended = practice.activity_ended_on
    yield _row("Ende der Tätigkeit", f"{ended:%d.%m.%Y}" if ended else "–")
    yield _row("Sperre ab", labels.lock_date_text(status, quarters, practice))
    if practice.terminated_by is not None and practice.termination_notice_on is not None:
        received = f"{practice.termination_notice_on:%d.%m.%Y}"
        yield _row("Kündigung", f"{termination_reason(practice)}, eingegangen am {received}")
    exception = labels.exception_text(practice.lock_exception)
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
    if practice.terms_due_version and practice.terms_due_by and acceptance:
        yield _row(
            "Anzunehmen",
            f"Version {practice.terms_due_version} bis {practice.terms_due_by:%d.%m.%Y}",
        )
    if practice.undeliverable_since:
        yield _row(
            "Unzustellbar",
            f"Brief zurück am {practice.undeliverable_since:%d.%m.%Y}: Anschrift berichtigen",
        )
    for line in labels.takeover_lines(practice):
        yield _row("Übernahme", line)
    tokens = ", ".join(labels.token_text(t) for t in practice.tokens) or "keiner"
    yield _row("Yubikey", tokens)
    yield _row("Benutzer", str(len(practice.users)))
    for member in practice.users:
        user_state = labels.STATE_LABEL[user_status(member, now, quarters).state]
        ended = member.activity_ended_on if member.kind is UserKind.MEMBER else None
        own_end = f"  Ende der Tätigkeit {ended:%d.%m.%Y}" if ended else ""
        yield f"    {member.username:<24}{kind_label(member.kind):<16}{user_state}{own_end}"
    yield from _letter_lines(practice.letters, outlook)


def _letter_lines(letters: list[Letter], outlook: Mapping[int, str | None] | None) -> Iterator[str]:
    yield _row("Briefe", str(len(letters)) if letters else "keine")
    for letter in letters:
        yield f"    {labels.letter_text(letter, outlook)}"


def show_user(
    user: User,
    now: datetime,
    quarters: int,
    outlook: Mapping[int, str | None] | None = None,
) -> Iterator[str]:
    status = user_status(user, now, quarters)
    yield f"Benutzer {user.username}" + (f" – {user.name}" if user.name else "")
    yield _row("Art", kind_label(user.kind) + (f", LANR {user.lanr}" if user.lanr else ""))
    yield _row("Betriebsstätte", f"{user.practice.bsnr} – {user.practice.name}")
    yield _row("Status", labels.status_text(status))
    if user.activity_ended_on:
        yield _row("Eigenes Tätigkeitsende", f"{user.activity_ended_on:%d.%m.%Y}")
    yield _row("Sperre ab", labels.lock_date_text(status, quarters, user.practice))
    exception = labels.exception_text(user.lock_exception)
    if exception:
        yield _row("Ausnahme", exception)
    set_at = user.password_set_at
    state = user.taken_over_password
    taken_over = labels.TAKEN_OVER_LABEL[state] if state else ""
    yield _row(
        "Kennwort",
        f"gesetzt am {set_at.astimezone(BERLIN):%d.%m.%Y}{taken_over}"
        if set_at
        else "noch keines (Brief)",
    )
    if user.next_password_hash:
        yield _row("Neues Kennwort", "gedruckt; ersetzt das bisherige bei erster Nutzung")
    yield _row("Fehlversuche", str(user.failed_logins))
    tokens = ", ".join(labels.token_text(t) for t in user.practice.tokens) or "keiner"
    yield _row("Yubikey der Praxis", tokens)
    sessions = vpn.recent_sessions(user)
    yield _row("VPN-Sitzungen", str(len(sessions)) if sessions else "keine")
    for vpn_session in sessions:
        yield f"    {labels.session_text(vpn_session)}"
    yield from _letter_lines(user.letters, outlook)


def token_lines(token: Token) -> Iterator[str]:
    yield f"Yubikey {token.serial} ({token.kind.value})"
    yield _row(
        "Status",
        labels.TOKEN_STATUS_LABEL[token.status.value]
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
    returned = labels.return_text(token)
    if returned:
        yield _row("Rückgabe", returned)
    if token.counter_warned_at:
        yield _row("Warnung", "Zähler fast erschöpft: Yubikey bald ersetzen")
