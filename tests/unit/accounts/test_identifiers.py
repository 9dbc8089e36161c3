from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flexnet.accounts.identifiers import (
    lanr_check_digit,
    normalize_username,
    validate_bsnr,
    validate_lanr,
    validate_zip,
)
from flexnet.errors import ValidationError


def test_lanr_check_digit_example() -> None:
    # 4*1 + 9*2 + 4*3 + 9*4 + 4*5 + 9*6 = 144 → (10 - 4) mod 10 = 6
    assert lanr_check_digit("123456") == 6
    assert validate_lanr("123456601") == "123456601"


def test_lanr_check_digit_zero_case() -> None:
    # 4*1 + 9*0 + 4*0 + 9*0 + 4*0 + 9*4 = 40 → (10 - 0) mod 10 = 0
    assert lanr_check_digit("100004") == 0
    assert validate_lanr("100004012") == "100004012"


@given(st.from_regex(r"[0-9]{6}", fullmatch=True), st.from_regex(r"[0-9]{2}", fullmatch=True))
def test_every_lanr_with_its_check_digit_is_valid_and_every_other_digit_is_not(
    first_six: str, group: str
) -> None:
    check = lanr_check_digit(first_six)

    assert validate_lanr(f"{first_six}{check}{group}")
    for wrong in set(range(10)) - {check}:
        with pytest.raises(ValidationError, match="Prüfziffer"):
            validate_lanr(f"{first_six}{wrong}{group}")


@pytest.mark.parametrize(
    "bad",
    [
        "12345660",
        "1234566011",
        "12345660a",
        "",
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff16\uff10\uff11",
    ],
)
def test_lanr_must_be_nine_ascii_digits(bad: str) -> None:
    with pytest.raises(ValidationError, match="9 Ziffern"):
        validate_lanr(bad)


@pytest.mark.parametrize("bad", ["12345678", "1234567890", "88123450x", " ", "88 123 450"])
def test_bsnr_must_be_nine_digits(bad: str) -> None:
    with pytest.raises(ValidationError, match="BSNR"):
        validate_bsnr(bad)


def test_bsnr_surrounding_whitespace_is_ignored() -> None:
    assert validate_bsnr(" 881234500 ") == "881234500"


@pytest.mark.parametrize(
    ("raw", "normalized"), [("MMueller", "mmueller"), (" dr.max_m-1 ", "dr.max_m-1")]
)
def test_usernames_are_case_insensitive(raw: str, normalized: str) -> None:
    assert normalize_username(raw) == normalized


@pytest.mark.parametrize("bad", ["ab", "-abc", "abc.", "mü ller", "a" * 65, "x;drop", "ä" * 5])
def test_usernames_outside_the_safe_alphabet_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="Benutzername"):
        normalize_username(bad)


def test_zip_is_five_digits() -> None:
    assert validate_zip("06108") == "06108"
    with pytest.raises(ValidationError, match="Postleitzahl"):
        validate_zip("6108")
