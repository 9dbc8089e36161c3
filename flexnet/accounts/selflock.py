"""'Zugang sofort sperren' (MD § 5(5), terms § 7): a user locks their access at once.

Only username and password are needed: the key may be exactly what was lost. The user
locks their own account, or the practice's Yubikey; live VPN sessions are disconnected,
and a report is filed for staff, who decide on replacement (§ 7.2, § 7.3).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts import servicerequests, users, vpn
from flexnet.audit import Actor
from flexnet.authn.pipeline import Authenticator, Client
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import (
    Lock,
    LockCause,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    Token,
    User,
)
from flexnet.otp import stock
from flexnet.otp.verify import USABLE_STATUSES


class Target(enum.StrEnum):
    ACCOUNT = "account"  # my own login
    KEY = "key"  # the practice's Yubikey (lost or in wrong hands)


@dataclass(frozen=True)
class SelfLockResult:
    locked: bool
    what: str = ""  # German, for the confirmation page
    disconnected: int = 0


def lock_own_access(
    session: Session,
    *,
    username: str,
    password: str,
    target: Target,
    client: Client,
    now: datetime,
    authenticator: Authenticator,
    phone: str = "",
) -> SelfLockResult:
    """Check the password through the pipeline (no OTP) and lock; nothing if it is wrong.
    ``phone``: a number for staff's call-back, optional; a malformed one is a
    ValidationError before anything else happens."""
    phone = servicerequests.check_phone(phone) if phone.strip() else ""
    decision = authenticator.authenticate(
        session, username=username, password=password, otp=None, client=client, now=now
    )
    # A password that must be changed still proves who it is; a lock must never wait.
    if not decision.proves_identity or decision.user_id is None:
        return SelfLockResult(locked=False)
    user = session.get_one(User, decision.user_id)
    reason = "vom Benutzer selbst gesperrt (Verlust oder Missbrauchsverdacht)"
    if target is Target.ACCOUNT:
        queued = users.lock_one(
            session,
            user=user,
            cause=LockCause.SELF_SERVICE,
            reason=reason,
            actor=Actor.user(user.username),
            now=now,
        )
        disconnected = queued or 0
        what = f"Ihr Zugang {user.username} ist gesperrt."
        done = f"den eigenen Zugang {user.username} gesperrt"
    else:
        serials = _lock_keys(session, user, reason, now)
        practice_users = list(
            session.scalars(select(User.id).where(User.practice_id == user.practice_id))
        )
        disconnected = vpn.request_disconnect(session, user_ids=practice_users, now=now)
        if serials:
            what = "Der Yubikey Ihrer Praxis ist gesperrt; er gilt für alle Benutzer der Praxis."
            done = (
                f"den Yubikey der Praxis (Seriennummer {', '.join(serials)}) gesperrt; "
                "er gilt für alle Benutzer der Praxis"
            )
        else:
            what = "Der Yubikey Ihrer Praxis war bereits gesperrt."
            done = "den Yubikey der Praxis sperren wollen; er war bereits gesperrt"
    _file_report(session, user, done, phone, client, now)
    return SelfLockResult(locked=True, what=what, disconnected=disconnected)


def _lock_keys(session: Session, user: User, reason: str, now: datetime) -> list[str]:
    """The serials of the practice's keys locked now (none if they were locked already)."""
    keys = session.scalars(
        select(Token.id).where(
            Token.practice_id == user.practice_id, Token.status.in_(USABLE_STATUSES)
        )
    )
    why = Lock(LockCause.SELF_SERVICE, reason)
    return stock.lock_keys(
        session, dict.fromkeys(keys, why), actor=Actor.user(user.username), now=now
    )


def _file_report(
    session: Session, user: User, done: str, phone: str, client: Client, now: datetime
) -> None:
    """A report in staff's queue saying who locked what, when; the lock has happened,
    staff follow up (call back, replacement, unlock: § 7.2, § 7.3)."""
    at = now.astimezone(BERLIN)
    session.add(
        ServiceRequest(
            created_at=now,
            bsnr=user.practice.bsnr,
            practice_id=user.practice_id,
            usernames=user.username,
            kind=RequestKind.SELF_LOCK,
            contact_person=user.name or user.username,
            phone=phone,
            message=(
                f"{user.username} hat am {at:%d.%m.%Y um %H:%M} Uhr über „Zugang sofort "
                f"sperren“ im Selbstbedienungsportal {done}."
            ),
            source_ip=client.source_ip,
            status=RequestStatus.OPEN,
        )
    )
