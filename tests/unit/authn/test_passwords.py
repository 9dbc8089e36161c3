from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from passlib.hash import bcrypt, sha512_crypt

from flexnet.authn import passwords
from flexnet.errors import ValidationError


def test_hash_is_argon2id_with_owasp_parameters() -> None:
    stored = passwords.hash_password("Sommer-Regen-2026!")

    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify("Sommer-Regen-2026!", stored) == passwords.Verification(ok=True)
    assert not passwords.verify("Sommer-Regen-2026?", stored).ok


def test_unicode_forms_of_the_same_password_match() -> None:
    composed = "Grüße-aus-Halle-1"  # ü as one code point
    decomposed = "Gru\u0308ße-aus-Halle-1"  # u + combining diaeresis

    assert passwords.verify(decomposed, passwords.hash_password(composed)).ok


def test_missing_hash_fails() -> None:
    assert passwords.verify("anything", None) == passwords.Verification(ok=False)


@pytest.mark.parametrize("legacy", [bcrypt, sha512_crypt])
def test_legacy_hashes_verify_and_are_upgraded(legacy: type) -> None:
    old = legacy.hash("Altes-System-Kennwort-1")

    result = passwords.verify("Altes-System-Kennwort-1", old)

    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith("$argon2id$")
    assert passwords.verify("Altes-System-Kennwort-1", result.new_hash).new_hash is None


def test_wrong_password_against_legacy_hash_gives_no_upgrade() -> None:
    result = passwords.verify("falsch", bcrypt.hash("Altes-System-Kennwort-1"))

    assert result == passwords.Verification(ok=False)


def test_transport_limit_is_84_utf8_bytes() -> None:
    assert passwords.check_transportable("a" * 84) == "a" * 84
    with pytest.raises(ValidationError, match="84 Bytes"):
        passwords.check_transportable("ä" * 43)  # 86 bytes
    with pytest.raises(ValidationError, match="leer"):
        passwords.check_transportable("")


PERSONAL = ["emuster", "Erika Muster", "881234500", "Praxis Dr. Müller"]


@pytest.mark.parametrize(
    "weak", ["Passwort12345!", "!!Kennwort2026", "Sommer2026!!", "Qwertz123456!", "Password123!"]
)
def test_common_passwords_and_german_words_are_refused(weak: str) -> None:
    assert "Das Kennwort steht auf einer Liste häufig verwendeter Kennwörter." in (
        passwords.policy_violations(weak, personal=PERSONAL)
    )


@pytest.mark.parametrize("guessable", ["Sommer-Sommer-1", "Abc-Abc-Abc-1", "123456789aB!"])
def test_easily_guessed_passwords_are_refused(guessable: str) -> None:
    problems = passwords.policy_violations(guessable, personal=PERSONAL)

    assert any("zu leicht zu erraten" in p or "Liste" in p for p in problems)


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Kurz-1a", "mindestens 12 Zeichen"),
        ("nur-kleinbuchstaben-und-so", "drei der vier"),
        ("Muster-Erika-2026!", "nicht enthalten"),
        ("Xy-881234500-Zq", "nicht enthalten"),
        ("ä" * 43, "höchstens 64 Zeichen und 84 Bytes"),
    ],
)
def test_each_rule_has_a_clear_german_message(password: str, rule: str) -> None:
    assert any(rule in p for p in passwords.policy_violations(password, personal=PERSONAL))


def test_all_violations_are_reported_at_once() -> None:
    problems = passwords.policy_violations("emuster", personal=PERSONAL)

    assert len(problems) >= 3


def test_good_passwords_pass() -> None:
    for good in ("Mauer-Tinte-Kolibri-9", "Neues-Herbst-Laub-7", "q7#Xm2pL9vRt4wZk"):
        assert passwords.policy_violations(good, personal=PERSONAL) == []


def test_generated_passwords_meet_the_policy_and_read_unambiguously() -> None:
    for _ in range(50):
        generated = passwords.generate()
        assert passwords.policy_violations(generated, personal=PERSONAL) == []
        assert not set(generated) & set("lI1O0'\"!")


def test_minimum_age_for_voluntary_changes() -> None:
    set_at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    assert (
        passwords.min_age_problem(
            set_at=set_at, must_change=False, now=set_at + timedelta(hours=23)
        )
        is not None
    )
    assert (
        passwords.min_age_problem(set_at=set_at, must_change=False, now=set_at + timedelta(days=1))
        is None
    )
    assert (
        passwords.min_age_problem(
            set_at=set_at, must_change=True, now=set_at + timedelta(minutes=5)
        )
        is None
    )


def test_a_stricter_policy_is_applied() -> None:
    strict = passwords.PasswordPolicy(min_length=24)

    assert passwords.policy_violations("Mauer-Tinte-Kolibri-9", policy=strict) == [
        "Das Kennwort muss mindestens 24 Zeichen lang sein."
    ]


@pytest.mark.parametrize("typed", ["x" * 5000, "Ä" * 4100, "ab\ud800cd"])
def test_an_impossible_password_is_wrong_not_an_error(typed: str) -> None:
    """The hash library raises on passwords over 4096 characters (issue 15, item 17)."""
    stored = passwords.hash_password("Richtiges-Kennwort-1")

    assert passwords.verify(typed, stored).ok is False
    assert passwords.verify(typed, None).ok is False
    assert passwords.reuses(typed, [stored], policy=passwords.DEFAULT_POLICY) is False
    if typed.isprintable():  # refused by the rules, not by an exception
        assert "höchstens 64 Zeichen" in " ".join(passwords.policy_violations(typed))


@pytest.mark.parametrize("password", ["\udc80Sommer-Regen-26!", "Sommer-\ud800Regen-26!"])
def test_a_lone_surrogate_is_refused_with_a_message_not_an_exception(password: str) -> None:
    assert passwords.policy_violations(password) == [passwords.NOT_A_CHARACTER]
    with pytest.raises(ValidationError, match="ungültiges Zeichen"):
        passwords.check_transportable(password)
