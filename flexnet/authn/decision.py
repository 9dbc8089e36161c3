"""What a login attempt comes to: one :class:`Decision`, the same for every caller.

RADIUS, the HTTP API, self-service and the self-lock read what they need from the
decision's properties (``accepted``, ``must_change_password``, ``proves_identity``)
instead of expressions of their own over its reason. The reason is a :class:`Reason`
whose values are the strings the auth log (``auth_events.reason``) has always stored,
so older rows read alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from flexnet.lifecycle.status import EffectiveStatus
from flexnet.otp.verify import OtpReason

GENERIC_REJECT = "Anmeldung fehlgeschlagen."


class Outcome(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    CHALLENGE = "challenge"  # the password must be changed in-band first


class Channel(enum.StrEnum):
    RADIUS = "radius"
    API = "api"
    SELF_SERVICE = "self_service"


class BackendError(Exception):
    """Something inside failed (database, secret, external service): never an accept."""


@dataclass(frozen=True)
class Client:
    channel: Channel
    name: str | None = None  # NAS or API client
    source_ip: str | None = None  # the user's address as far as it is known
    concentrator: str | None = None  # behind a proxy NAS: the concentrator it asks for


class Reason(enum.StrEnum):
    """Why a login came out as it did; internal (auth log, audit), never sent to a client."""

    OK = "ok"
    PASSWORD_CHANGED = "password_changed"  # the new password asked for in-band was set
    # The request itself
    SYNTAX = "syntax"
    RADIUS_ATTRIBUTES = "radius_attributes"
    CHALLENGE_STATE_UNKNOWN = "challenge_state_unknown"
    METHOD_CHAP = "method_chap"  # RADIUS methods other than PAP, refused by name
    METHOD_MSCHAP = "method_mschap"
    METHOD_MSCHAPV2 = "method_mschapv2"
    METHOD_EAP = "method_eap"
    # Rate limits that never depend on the user
    SOURCE_THROTTLED = "source_throttled"
    KEY_THROTTLED = "key_throttled"
    PASSWORD_ONLY_THROTTLED = "password_only_throttled"
    # The possession factor (the values of ``OtpReason``)
    OTP_MALFORMED = OtpReason.MALFORMED.value
    KEY_UNKNOWN = OtpReason.UNKNOWN_KEY.value
    KEY_NOT_ASSIGNED = OtpReason.KEY_NOT_ASSIGNED.value
    KEY_RETURNED = OtpReason.KEY_RETURNED.value
    KEY_RETIRED = OtpReason.KEY_RETIRED.value
    KEY_LOCKED = OtpReason.KEY_LOCKED.value
    KEY_LOST = OtpReason.KEY_LOST.value
    OTP_INVALID = OtpReason.BAD_OTP.value
    OTP_REPLAYED = OtpReason.REPLAYED.value
    OTP_REPLAYED_REQUEST = OtpReason.REPLAYED_REQUEST.value
    OTP_DELAYED = OtpReason.DELAYED.value
    KEY_OF_OTHER_PRACTICE = "key_of_other_practice"
    # The account (its effective status: state, and the cause of a lock)
    USER_UNKNOWN = "user_unknown"
    USER_THROTTLED = "user_throttled"
    USER_PENDING = "user_pending"
    USER_REVOKED = "user_revoked"
    USER_LOCKED = "user_locked"
    USER_LOCKED_MANUAL = "user_locked_manual"
    USER_LOCKED_LOSS = "user_locked_loss"
    USER_LOCKED_MISUSE = "user_locked_misuse"
    USER_LOCKED_SELF_SERVICE = "user_locked_self_service"
    USER_LOCKED_LIFECYCLE = "user_locked_lifecycle"
    USER_LOCKED_TERMINATION = "user_locked_termination"
    USER_LOCKED_OBJECTION = "user_locked_objection"
    USER_LOCKED_REPLACED = "user_locked_replaced"
    USER_LOCKED_TAKEOVER = "user_locked_takeover"
    USER_LOCKED_THROTTLE = "user_locked_throttle"
    # The knowledge factor
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_EXPIRED = "password_expired"
    PASSWORD_MUST_CHANGE = "password_must_change"
    PASSWORD_WEAK = "password_weak"
    INITIAL_PASSWORD_EXPIRED = "initial_password_expired"
    NEW_PASSWORD_REFUSED = "new_password_refused"

    @classmethod
    def of_otp(cls, reason: OtpReason) -> Reason:
        """The possession factor's verdict as a login's reason (same value)."""
        return cls(reason.value)

    @classmethod
    def of_status(cls, status: EffectiveStatus, *, with_cause: bool = True) -> Reason:
        """Why an account that may not log in is refused: its state and a lock's cause."""
        cause = f"_{status.cause.value}" if with_cause and status.cause else ""
        return cls(f"user_{status.state.value}{cause}")


# Correct credentials, but the password must be changed first (whatever the mode).
PASSWORD_CHANGE_REASONS = frozenset(
    {Reason.PASSWORD_EXPIRED, Reason.PASSWORD_MUST_CHANGE, Reason.PASSWORD_WEAK}
)
# Refusals by a rate limit that never depends on the user (unknown names are counted too):
# decided without the password hash, which then tells nothing about who exists.
THROTTLE_REASONS = frozenset(
    {Reason.SOURCE_THROTTLED, Reason.KEY_THROTTLED, Reason.PASSWORD_ONLY_THROTTLED}
)


@dataclass(frozen=True, kw_only=True)
class Decision:
    outcome: Outcome
    reason: Reason  # internal: auth log and audit only
    profile: str | None = None
    reply_message: str | None = None  # German, safe to show the user
    user_id: int | None = None
    token_serial: str | None = None
    # False when the transaction only logs and counts: nothing a crash could replay.
    durable: bool = True

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT

    @property
    def must_change_password(self) -> bool:
        """Username, password and key were right, but the password must be changed
        before anything else (expired, initial, or taken over and weak): never an
        accept for a portal, the change form for self-service."""
        return self.reason in PASSWORD_CHANGE_REASONS

    @property
    def proves_identity(self) -> bool:
        """The credentials were right, whatever keeps them from opening the VPN now
        (a password to change, an unused letter's password that expired): enough to
        lock one's own access, which must never wait."""
        return (
            self.outcome is not Outcome.REJECT
            or self.must_change_password
            or self.reason is Reason.INITIAL_PASSWORD_EXPIRED
        )


def reject(
    reason: Reason,
    *,
    token_serial: str | None = None,
    message: str = GENERIC_REJECT,
    durable: bool = True,
) -> Decision:
    return Decision(
        outcome=Outcome.REJECT,
        reason=reason,
        reply_message=message,
        token_serial=token_serial,
        durable=durable,
    )
