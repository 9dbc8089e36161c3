"""The audit trail: every state change, in the same transaction, as a sealed hash chain.

Each entry stores the hash of its predecessor and a SHA-256 over its own content, so
that altering, inserting or deleting an entry in the middle breaks the chain and
``verify_chain`` finds it; a seal under ``FLEXNET_AUDIT_KEY`` (which the session carries,
never the database) makes recomputing the chain after a change useless without the key
(formats: :mod:`flexnet.auditformat`). Appends are serialised (an advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) so that concurrent transactions cannot fork
the chain; call :func:`record` late in a transaction, after slow work such as password
hashing.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from flexnet import auditformat
from flexnet.auditformat import CURRENT, GENESIS_HASH, AuditKey
from flexnet.db import AUDIT_KEY_INFO, insert_rows, utcnow
from flexnet.models import AuditEntry

__all__ = ["GENESIS_HASH", "AuditKey"]  # re-exported: callers name them from here
# Arbitrary constant naming flexnet's audit-chain lock among PostgreSQL advisory locks.
_PG_AUDIT_LOCK_KEY = 0x464C58_415544  # "FLX" "AUD"

# Data keys that would carry a secret. Passing one is a programming error.
_SECRET_KEYS = frozenset(
    {"password", "new_password", "otp", "secret", "aes_key", "private_id", "seed", "api_key"}
)


class AuditTag(enum.StrEnum):
    """``area:object:action``. New tags need no migration: the column is a string."""

    STAFF_ACCOUNT_CREATE = "staff:account:create"
    STAFF_ACCOUNT_DEACTIVATE = "staff:account:deactivate"
    STAFF_ROLE_CHANGE = "staff:account:role"
    STAFF_LOGIN = "staff:session:login"  # password and second factor passed
    STAFF_LOGOUT = "staff:session:logout"
    # A step of the sign-in refused (step, reason; the first refusal of a throttle only).
    STAFF_SIGN_IN_FAIL = "staff:session:fail"
    STAFF_TOTP_ENROL = "staff:totp:enrol"
    STAFF_TOTP_RESET = "staff:totp:reset"
    # A one-time code for enrolling a second factor, handed out by an admin (never the code).
    STAFF_ENROLMENT_CODE = "staff:enrolment-code:issue"
    STAFF_PASSWORD_CHANGE = "staff:password:change"
    # An admin gave a colleague a new first password (never the password itself).
    STAFF_PASSWORD_RESET = "staff:password:reset"
    PRACTICE_CREATE = "practice:record:create"
    PRACTICE_EDIT = "practice:record:edit"  # name, address, phone, contact: old and new
    PRACTICE_ACTIVITY_END = "practice:activity:end"
    PRACTICE_ACTIVITY_CLEAR = "practice:activity:clear"  # a recorded end taken back, with why
    PRACTICE_TERMS_ACCEPT = "practice:terms:accept"
    TERMS_PUBLISH = "terms:version:publish"  # a new version, its effective day and deadline
    REGISTRY_IMPORT = "registry:import:apply"  # the registry's export applied: counts
    PRACTICE_ACTIVATE = "practice:record:activate"
    PRACTICE_LOCK = "practice:lock:set"
    PRACTICE_LOCK_AUTO = "practice:lock:auto"  # made durable by the lifecycle job
    PRACTICE_UNLOCK = "practice:lock:lift"
    PRACTICE_TERMINATE = "practice:termination:record"
    PRACTICE_TERMINATION_CORRECT = "practice:termination:correct"  # old and new dates, why
    PRACTICE_TERMINATION_WITHDRAW = "practice:termination:withdraw"  # with why
    PRACTICE_REACTIVATE = "practice:record:reactivate"  # a new participation after an end
    PRACTICE_TAKEOVER = "practice:record:takeover"  # a new owner continues it (§ 2.3)
    EXCEPTION_GRANT = "lifecycle:exception:grant"  # § 10.3 sentence 2
    EXCEPTION_END = "lifecycle:exception:end"
    USER_CREATE = "account:user:create"
    USER_EDIT = "account:user:edit"  # name, LANR: old and new
    USER_ACTIVITY_END = "account:activity:end"  # a member's own end of activity (§ 10.3)
    USER_ACTIVITY_CLEAR = "account:activity:clear"
    USER_PASSWORD_MIGRATE = "account:password:migrate"
    # A taken-over hash's plaintext, first typed, checked against the policy (§ 5.4).
    USER_PASSWORD_POLICY_CHECK = "account:password:policy-check"
    USER_ACTIVATE = "account:user:activate"
    USER_LOCK = "account:user:lock"
    USER_UNLOCK = "account:user:unlock"
    USER_THROTTLE = "account:throttle:temporary"
    USER_PASSWORD_CHANGE = "account:password:change"
    USER_PASSWORD_REHASH = "account:password:rehash"
    USER_PASSWORD_ISSUE = "account:password:issue"  # printed on a letter; never the value
    USER_PASSWORD_REVOKE = "account:password:revoke"  # its letter's run was cancelled
    USER_PASSWORD_REPLACE = "account:password:replace"  # a re-issued one used the first time
    NAS_CLIENT_CREATE = "radius:nas:create"
    NAS_CLIENT_SECRET = "radius:nas:secret"  # a new shared secret; never its value
    NAS_CLIENT_DISABLE = "radius:nas:disable"
    NAS_CLIENT_ENABLE = "radius:nas:enable"
    NAS_CLIENT_CHANGE = "radius:nas:change"  # address, Message-Authenticator rule, CoA port, proxy
    PROFILE_SET = "radius:profile:set"
    API_CLIENT_CREATE = "api:client:create"
    API_CLIENT_REGENERATE = "api:client:regenerate"
    API_CLIENT_DISABLE = "api:client:disable"
    API_CLIENT_ENABLE = "api:client:enable"
    VPN_DISCONNECT = "vpn:session:disconnect"
    VPN_DISCONNECT_REQUEST = "vpn:session:disconnect-request"  # by staff, one session
    REQUEST_FILE = "request:service:file"
    REQUEST_VERIFY = "request:service:verify"  # e.g. a call back to the known number
    REQUEST_FULFIL = "request:service:fulfil"
    REQUEST_REJECT = "request:service:reject"
    TOKEN_LOCK = "token:yubikey:lock"
    TOKEN_IMPORT = "token:stock:import"
    TOKEN_ASSIGN = "token:yubikey:assign"
    TOKEN_ASSIGN_STAFF = "token:yubikey:assign-staff"  # an IT staff member's second factor
    TOKEN_ACTIVATE = "token:yubikey:activate"
    TOKEN_RESYNC = "token:counter:resync"
    TOKEN_COUNTER_WARNING = "token:counter:warn"
    TOKEN_LOSS = "token:yubikey:loss"
    TOKEN_UNLOCK = "token:yubikey:unlock"  # a self-lock or misuse lock lifted: a false alarm
    FEE_OWE = "fee:loss:owe"  # § 6.3: the fee for a lost key, once per key
    FEE_INVOICE = "fee:loss:invoice"
    FEE_PAY = "fee:loss:pay"
    FEE_WAIVE = "fee:loss:waive"  # with why
    TOKEN_RETIRE = "token:yubikey:retire"
    TOKEN_REPLACE = "token:yubikey:replace"
    TOKEN_SHIP = "token:yubikey:ship"
    TOKEN_RETURN = "token:yubikey:return"
    TOKEN_REPROGRAM = "token:stock:reprogram"  # a returned key back in stock, new secrets
    LETTER_QUEUE = "letter:letter:queue"
    LETTER_REPRINT = "letter:letter:reprint"
    LETTER_RETURN = "letter:letter:return"  # came back undeliverable; the re-send it queued
    MAIL_RUN_PRODUCE = "letter:run:produce"
    MAIL_RUN_DISPATCH = "letter:run:dispatch"
    MAIL_RUN_CANCEL = "letter:run:cancel"
    LIFECYCLE_RUN = "lifecycle:job:run"
    RETENTION_PURGE = "lifecycle:retention:purge"
    AUDIT_PURGE = "lifecycle:audit:purge"  # names the hash the kept chain starts from
    MASTER_KEY_ROTATE = "keys:master:rotate"
    # Every seal renewed under a new FLEXNET_AUDIT_KEY; names both checkpoint keys.
    AUDIT_KEY_ROTATE = "keys:audit:rotate"
    AUDIT_EXPORT = "audit:trail:export"  # for the data protection officer: filters, count
    PRIVACY_EXPORT = "privacy:access:export"  # Art. 15 DSGVO: whose data, never the data
    DATABASE_BACKUP = "system:database:backup"  # names the file, never its content
    DATABASE_RESTORE = "system:database:restore"  # with what was carried over
    WSAPI_CLIENT_CREATE = "wsapi:client:create"
    WSAPI_CLIENT_REGENERATE = "wsapi:client:regenerate"
    WSAPI_CLIENT_DISABLE = "wsapi:client:disable"
    WSAPI_CLIENT_ENABLE = "wsapi:client:enable"


class ActorKind(enum.StrEnum):
    STAFF = "staff"
    SYSTEM = "system"
    USER = "user"
    API_CLIENT = "api_client"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    name: str

    @classmethod
    def staff(cls, username: str) -> Actor:
        return cls(ActorKind.STAFF, username)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(ActorKind.SYSTEM, job)

    @classmethod
    def user(cls, username: str) -> Actor:
        return cls(ActorKind.USER, username)

    @classmethod
    def api_client(cls, name: str) -> Actor:
        return cls(ActorKind.API_CLIENT, name)


@dataclass(frozen=True)
class Subject:
    kind: str  # "practice", "user", "token", "staff", ...
    id: str  # BSNR, username, serial: what staff search for


def session_key(session: Session) -> AuditKey | None:
    """The audit key the session's process holds (``Database(audit_key=…)``)."""
    key = session.info.get(AUDIT_KEY_INFO)
    return key if isinstance(key, AuditKey) else None


def record(
    session: Session,
    tag: AuditTag,
    *,
    actor: Actor,
    subject: Subject | None = None,
    data: Mapping[str, Any] | None = None,
    source_ip: str | None = None,
    now: datetime | None = None,
    key: AuditKey | None = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's transaction, sealed with ``key``
    (by default the session's audit key)."""
    payload = _canonical_json(data or {})
    _lock_chain(session)
    prev_hash = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    salt, digest = auditformat.commit_address(source_ip)
    entry = AuditEntry(
        # UTC, as it comes back from the database: the hash must see the same value.
        at=(now or utcnow()).astimezone(UTC),
        actor_kind=actor.kind.value,
        actor=actor.name,
        tag=tag.value,
        subject_kind=subject.kind if subject else None,
        subject_id=subject.id if subject else None,
        data=payload,
        source_ip=source_ip,
        source_ip_salt=salt,
        source_ip_digest=digest,
        prev_hash=prev_hash or GENESIS_HASH,
        format=CURRENT,
    )
    entry.hash = entry_hash(entry)
    entry.seal = _seal(key or session_key(session), _fields(entry), entry.hash)
    session.add(entry)
    # Flushed now so that the next record() in this transaction chains onto it.
    session.flush()
    return entry


@dataclass(frozen=True)
class Pending:
    """One entry for :func:`record_many`."""

    tag: AuditTag
    subject: Subject | None = None
    data: Mapping[str, Any] | None = None


def record_many(
    session: Session, entries: Sequence[Pending], *, actor: Actor, now: datetime
) -> int:
    """Append many entries in one statement (set-based jobs); the chain is the same as
    if each had been recorded on its own. Returns how many were appended."""
    if not entries:
        return 0
    session.flush()
    _lock_chain(session)
    prev_hash = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev_hash = prev_hash or GENESIS_HASH
    key = session_key(session)
    at = now.astimezone(UTC)
    rows = []
    for pending in entries:
        row: dict[str, Any] = {
            "prev_hash": prev_hash,
            "at": at,
            "actor_kind": actor.kind.value,
            "actor": actor.name,
            "tag": pending.tag.value,
            "subject_kind": pending.subject.kind if pending.subject else None,
            "subject_id": pending.subject.id if pending.subject else None,
            "data": _canonical_json(pending.data or {}),
            "source_ip": None,
            "source_ip_salt": None,
            "source_ip_digest": None,
            "format": CURRENT,
        }
        prev_hash = row["hash"] = auditformat.current_hash(row)
        row["seal"] = _seal(key, row, row["hash"])
        rows.append(row)
    # Rows in order: the ids follow the chain (appends are serialised).
    insert_rows(session, AuditEntry.metadata.tables[AuditEntry.__tablename__], rows)
    return len(rows)


def entry_hash(entry: AuditEntry) -> str:
    """The hash an entry's content gives in its own format."""
    return auditformat.content_hash(_fields(entry))


# What a seal is computed from (a key rotation reads these to seal every entry anew).
STORED = (
    "prev_hash",
    *auditformat.CONTENT,
    "source_ip",
    "source_ip_salt",
    "source_ip_digest",
    "hash",
    "seal",
    "format",
)


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in STORED}


def _seal(key: AuditKey | None, row: Mapping[str, Any], content_hash: str) -> str | None:
    return auditformat.seal(key, row, content_hash) if key is not None else None


@dataclass(frozen=True)
class ChainReport:
    entries: int
    first_broken_id: int | None = None
    problem: str | None = None
    # The newest hash and its entry: a checkpoint of them kept outside the database
    # (flexnet.ops.checkpoints) shows a cut-off or rewritten history up to it.
    head: str = GENESIS_HASH
    head_id: int | None = None
    # Entries recorded before this instant were deleted by the retention purge.
    purged_before: datetime | None = None
    # Every seal was checked with the audit key (without it: links and hashes only).
    sealed: bool = False

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


# The chain kept after a purge must start this close to the purge's cut: the nightly job
# audits every run, so a longer gap means entries after the cut are missing.
MAX_GAP_AFTER_CUT = timedelta(days=31)


@dataclass(frozen=True)
class _Cut:
    anchor: str  # the hash the kept chain starts from
    before: datetime  # entries recorded before it were deleted
    at: datetime  # when the purge ran


def verify_chain(
    session: Session, *, retention_years: int = 10, key: AuditKey | None = None
) -> ChainReport:
    """Walk the chain in order; report the first entry whose link, content or seal is
    wrong. ``key`` defaults to the session's audit key; with one, every entry must carry
    a seal made with it.

    After a retention purge the kept chain starts at the anchor the newest purge entry
    names. That entry is data anyone with write access could add, so it counts only
    within the rules: its cut lies at least ``retention_years`` (the configured period)
    before it ran, and the kept chain starts within ``MAX_GAP_AFTER_CUT`` of the cut.
    Deleting newer entries, or more than the purge did, shows as a broken chain.
    """
    cut = _newest_cut(session)
    key = key or session_key(session)
    query = select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
    # Closed explicitly: on PostgreSQL this is a server-side cursor left open on early return.
    with closing(session.scalars(query)) as entries:
        return _walk(entries, cut, retention_years, key)


def _walk(
    entries: Iterable[AuditEntry], cut: _Cut | None, retention_years: int, key: AuditKey | None
) -> ChainReport:
    expected_prev, head_id = GENESIS_HASH, None
    count = 0
    for entry in entries:
        count += 1
        if count == 1 and cut is not None and entry.prev_hash == cut.anchor:
            problem = _cut_problem(entry, cut, retention_years)
            if problem:
                return ChainReport(count, entry.id, problem)
            expected_prev = cut.anchor
        if entry.prev_hash != expected_prev:
            return ChainReport(count, entry.id, "Verkettung unterbrochen (Eintrag fehlt davor)")
        problem = auditformat.problem(_fields(entry), key)
        if problem:
            return ChainReport(count, entry.id, problem)
        expected_prev, head_id = entry.hash, entry.id
    return ChainReport(
        count,
        head=expected_prev,
        head_id=head_id,
        purged_before=cut.before if cut else None,
        sealed=key is not None,
    )


def _cut_problem(first: AuditEntry, cut: _Cut, retention_years: int) -> str | None:
    if cut.before > cut.at - relativedelta(years=retention_years):
        return "Löschung vor Ablauf der Aufbewahrungsfrist (Einträge fehlen)"
    if first.at > cut.before + MAX_GAP_AFTER_CUT:
        return "Lücke nach der Löschgrenze (Einträge fehlen)"
    return None


def _newest_cut(session: Session) -> _Cut | None:
    row = session.execute(
        select(AuditEntry.data, AuditEntry.at)
        .where(AuditEntry.tag == AuditTag.AUDIT_PURGE.value)
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    data = json.loads(row.data)
    try:
        return _Cut(str(data["anchor"]), datetime.fromisoformat(data["recorded_before"]), row.at)
    except (KeyError, TypeError, ValueError):
        return None


def purge(
    session: Session, *, older_than: datetime, actor: Actor, now: datetime, dry_run: bool = False
) -> int:
    """Delete entries recorded before ``older_than`` (retention, e.g. ten years) so that
    the rest stays verifiable: first an entry naming the hash the kept chain will start
    from (the anchor), then the deletion. Returns how many entries went."""
    # Cut before the first entry to keep; a clock step back cannot delete a newer one.
    first_kept = session.scalar(
        select(func.min(AuditEntry.id)).where(AuditEntry.at >= older_than.astimezone(UTC))
    )
    older = select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    if first_kept is not None:
        older = older.where(AuditEntry.id < first_kept)
    last = session.execute(older).first()
    if last is None:
        return 0
    count = session.scalar(select(func.count()).where(AuditEntry.id <= last.id)) or 0
    if dry_run:
        return count
    record(
        session,
        AuditTag.AUDIT_PURGE,
        actor=actor,
        data={
            "entries": count,
            "recorded_before": older_than.astimezone(UTC).isoformat(),
            "anchor": last.hash,
        },
        now=now,
    )
    session.execute(delete(AuditEntry).where(AuditEntry.id <= last.id))
    return count


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK_KEY})


def _canonical_json(data: Mapping[str, Any]) -> str:
    leaked = _SECRET_KEYS.intersection(k.lower() for k in data)
    if leaked:
        raise ValueError(f"audit data must not contain secrets: {sorted(leaked)}")
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
