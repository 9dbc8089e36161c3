from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from flexnet.accounts import identifiers, users
from flexnet.authn import passwords
from flexnet.errors import ConflictError, PreconditionError, ValidationError
from flexnet.models import (
    AuditEntry,
    Lock,
    LockCause,
    Practice,
    PracticeKind,
    User,
    UserKind,
    UserStatus,
)
from tests.conftest import NOW, STAFF


def test_user_without_password_waits_for_the_letter(make_user: Callable[..., User]) -> None:
    user = make_user(username="EMuster")

    assert user.username == "emuster"
    assert user.status is UserStatus.PENDING
    assert user.password_hash is None


def test_migrated_password_activates_and_is_stored_as_argon2id(
    session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user(migrated_password="Alt-System-2019!")

    assert user.status is UserStatus.ACTIVE
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert passwords.verify("Alt-System-2019!", user.password_hash).ok
    assert [h.password_hash for h in user.password_history] == [user.password_hash]
    data = " ".join(session.scalars(select(AuditEntry.data)))
    assert "Alt-System-2019!" not in data


def test_migrated_password_needs_accepted_terms(
    make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    with pytest.raises(PreconditionError, match=r"§ 1\.3"):
        make_user(practice=make_practice(terms=False), migrated_password="Alt-System-2019!")


def test_member_needs_a_valid_lanr(make_user: Callable[..., User]) -> None:
    assert make_user(kind=UserKind.MEMBER, lanr="123456601").lanr == "123456601"
    with pytest.raises(ValidationError, match="Prüfziffer"):
        make_user(kind=UserKind.MEMBER, lanr="123456701")
    with pytest.raises(ValidationError, match="LANR anzugeben"):
        make_user(kind=UserKind.MEMBER, lanr=None)
    with pytest.raises(ValidationError, match="nur für Mitglieder"):
        make_user(kind=UserKind.STAFF, lanr="123456601")


def test_usernames_are_unique_case_insensitively(make_user: Callable[..., User]) -> None:
    make_user(username="emuster")

    with pytest.raises(ConflictError, match="bereits vergeben"):
        make_user(username="EMuster")


def test_one_practice_access_per_practice(
    make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    practice = make_practice()
    make_user(practice=practice, kind=UserKind.PRACTICE_ACCESS)

    with pytest.raises(ConflictError, match="Praxiszugang"):
        make_user(practice=practice, kind=UserKind.PRACTICE_ACCESS)


@pytest.mark.parametrize(
    ("practice_kind", "user_kind"),
    [
        (PracticeKind.MEMBER, UserKind.THIRD_PARTY),
        (PracticeKind.THIRD_PARTY, UserKind.MEMBER),
        (PracticeKind.THIRD_PARTY, UserKind.STAFF),
    ],
)
def test_user_kind_must_fit_the_practice(
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    practice_kind: PracticeKind,
    user_kind: UserKind,
) -> None:
    with pytest.raises(ValidationError, match="nicht vorgesehen"):
        make_user(practice=make_practice(kind=practice_kind), kind=user_kind)


def test_get_user_is_case_insensitive(session: Session, make_user: Callable[..., User]) -> None:
    user = make_user(username="emuster")

    assert users.get_user(session, " EMUSTER ") is user


def test_lock_ends_self_service_sessions_set_based(
    session: Session, make_user: Callable[..., User]
) -> None:
    """Self-service sessions carry the epoch: raising it signs the locked user out. Each
    user's own epoch rises (not one value for all), in one UPDATE for all of them."""
    fresh, changed, earlier = (make_user(migrated_password="Alt-System-2019!") for _ in range(3))
    users.set_password(session, changed, "Neues-Kennwort-2026!", now=NOW)  # epoch 1 → 2
    users.lock_one(
        session, user=earlier, cause=LockCause.MANUAL, reason="vorher", actor=STAFF, now=NOW
    )
    session.flush()
    before = {u.id: u.session_epoch for u in (fresh, changed, earlier)}
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", seen)
    try:
        locked = users.lock_users(
            session,
            {u.id: Lock(LockCause.MANUAL, "Missbrauch") for u in (fresh, changed, earlier)},
            actor=STAFF,
            now=NOW,
        )
    finally:
        event.remove(connection, "before_cursor_execute", seen)

    assert sorted(locked.usernames) == sorted([fresh.username, changed.username])
    assert fresh.session_epoch == before[fresh.id] + 1
    assert changed.session_epoch == before[changed.id] + 1
    assert earlier.session_epoch == before[earlier.id]  # locked already: left as it was
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE USERS")]) == 1


# --- edits: people change names ---------------------------------------------------------


def lanr(n: int) -> str:
    """A LANR with a correct check digit (specialty group 01)."""
    first_six = f"{n:06d}"
    return f"{first_six}{identifiers.lanr_check_digit(first_six)}01"


def edits(session: Session) -> list[dict[str, object]]:
    rows = session.execute(
        select(AuditEntry.actor, AuditEntry.data)
        .where(AuditEntry.tag == "account:user:edit")
        .order_by(AuditEntry.id)
    )
    return [{"actor": actor, **json.loads(data)} for actor, data in rows]


def test_a_member_changes_name_and_lanr_with_the_old_values_in_the_audit(
    session: Session, make_user: Callable[..., User]
) -> None:
    member = make_user(kind=UserKind.MEMBER, name="Dr. Anna Schmidt", lanr=lanr(111111))

    users.edit_user(
        session,
        username=member.username,
        name="Dr. Anna Schmidt-Berger",
        lanr=lanr(222222),
        actor=STAFF,
        now=NOW,
    )

    assert (member.name, member.lanr) == ("Dr. Anna Schmidt-Berger", lanr(222222))
    assert edits(session) == [
        {
            "actor": STAFF.name,
            "changes": {
                "name": {"old": "Dr. Anna Schmidt", "new": "Dr. Anna Schmidt-Berger"},
                "lanr": {"old": lanr(111111), "new": lanr(222222)},
            },
        }
    ]


def test_a_lanr_with_a_wrong_check_digit_or_for_a_non_member_is_refused(
    session: Session, make_user: Callable[..., User]
) -> None:
    member = make_user(kind=UserKind.MEMBER, lanr=lanr(111111))
    assistant = make_user(kind=UserKind.STAFF)

    with pytest.raises(ValidationError, match="Prüfziffer"):
        users.edit_user(session, username=member.username, lanr="111111201", actor=STAFF, now=NOW)
    with pytest.raises(ValidationError, match="nur für Mitglieder"):
        users.edit_user(session, username=assistant.username, lanr=lanr(3), actor=STAFF, now=NOW)

    assert member.lanr == lanr(111111) and assistant.lanr is None
    assert edits(session) == []


def test_a_lanr_held_by_another_person_is_refused_on_edit_and_on_add(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    group, branch = make_practice(), make_practice()
    anna = make_user(practice=group, kind=UserKind.MEMBER, name="Dr. Anna Schmidt", lanr=lanr(1))
    bert = make_user(practice=group, kind=UserKind.MEMBER, name="Dr. Bert Lange", lanr=lanr(2))

    with pytest.raises(ConflictError, match=f"LANR {lanr(1)}.*Dr. Anna Schmidt"):
        users.edit_user(session, username=bert.username, lanr=lanr(1), actor=STAFF, now=NOW)
    with pytest.raises(ConflictError, match=f"LANR {lanr(1)}"):
        make_user(practice=branch, kind=UserKind.MEMBER, name="Dr. Carl Roth", lanr=lanr(1))
    with pytest.raises(ConflictError, match=f"LANR {lanr(2)}"):
        make_user(practice=group, kind=UserKind.MEMBER, name="Dr. Bert Lange", lanr=lanr(2))
    # The same person in a second practice (the name folded: case, umlauts) is no other.
    same = make_user(practice=branch, kind=UserKind.MEMBER, name="dr. anna SCHMIDT", lanr=lanr(1))

    assert same.lanr == anna.lanr and bert.lanr == lanr(2)


def test_a_name_is_one_line_and_an_empty_one_clears_it(
    session: Session, make_user: Callable[..., User]
) -> None:
    assistant = make_user(kind=UserKind.STAFF, name="Erika Muster")

    with pytest.raises(ValidationError, match="Name"):
        users.edit_user(session, username=assistant.username, name="a\x1bb", actor=STAFF, now=NOW)
    users.edit_user(session, username=assistant.username, name="", actor=STAFF, now=NOW)

    assert assistant.name is None
    assert edits(session)[0]["changes"] == {"name": {"old": "Erika Muster", "new": None}}
