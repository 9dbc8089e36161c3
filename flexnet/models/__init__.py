"""Typed SQLAlchemy models of the domain.

Invariants live in the schema where the schema can hold them (a lock has a cause and a
reason, a member has a LANR, an issued token belongs to a practice). Enumerations are
stored as strings with CHECK constraints so that SQLite and PostgreSQL behave alike.

One module per area; every model and enumeration is importable from here."""

from __future__ import annotations

from flexnet.models.accounts import (
    Lock,
    LockCause,
    LockException,
    PasswordHistory,
    Practice,
    PracticeKind,
    PracticeStatus,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    TakenOverPassword,
    Takeover,
    TerminationBy,
    TermsAcceptance,
    TermsChannel,
    TermsVersion,
    User,
    UserKind,
    UserStatus,
    VpnSession,
)
from flexnet.models.audit import AuditEntry
from flexnet.models.authn import AuthEvent, ChallengeKind, RadiusChallenge, RateLimitCounter
from flexnet.models.clients import AccessProfile, ApiClient, NasClient, WsapiClient
from flexnet.models.fees import LossFee
from flexnet.models.letters import Letter, LetterKind, LetterStatus, MailRun, MailRunStatus
from flexnet.models.staff import StaffAccount, StaffRole, StaffSession
from flexnet.models.tokens import ReturnCondition, Token, TokenKind, TokenStatus

__all__ = [
    "AccessProfile",
    "ApiClient",
    "AuditEntry",
    "AuthEvent",
    "ChallengeKind",
    "Letter",
    "LetterKind",
    "LetterStatus",
    "Lock",
    "LockCause",
    "LockException",
    "LossFee",
    "MailRun",
    "MailRunStatus",
    "NasClient",
    "PasswordHistory",
    "Practice",
    "PracticeKind",
    "PracticeStatus",
    "RadiusChallenge",
    "RateLimitCounter",
    "RequestKind",
    "RequestStatus",
    "ReturnCondition",
    "ServiceRequest",
    "StaffAccount",
    "StaffRole",
    "StaffSession",
    "TakenOverPassword",
    "Takeover",
    "TerminationBy",
    "TermsAcceptance",
    "TermsChannel",
    "TermsVersion",
    "Token",
    "TokenKind",
    "TokenStatus",
    "User",
    "UserKind",
    "UserStatus",
    "VpnSession",
    "WsapiClient",
]
