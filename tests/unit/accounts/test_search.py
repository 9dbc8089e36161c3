"""Staff's search: case and umlauts folded (ä/ae, ö/oe, ü/ue, ß/ss) in practice names,
cities and person names, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from flexnet.accounts.search import search
from flexnet.models import Practice, Token, User, UserKind
from tests.support.yubikeys import SimulatedKey

MakeKey = Callable[..., tuple[Token, SimulatedKey]]


@pytest.fixture
def records(
    session: Session,
    make_practice: Callable[..., Practice],
    make_user: Callable[..., User],
    make_yubikey: MakeKey,
) -> dict[str, str]:
    """Names in both spellings; returns BSNR per practice name."""
    practices = {
        "Praxis Dr. Müller": make_practice(name="Praxis Dr. Müller", city="Köthen (Anhalt)"),
        "Gemeinschaftspraxis Mueller": make_practice(
            name="Gemeinschaftspraxis Mueller", city="Halle (Saale)"
        ),
        "Praxis Weiß": make_practice(name="Praxis Weiß", city="Weißenfels"),
        "Zahnarztpraxis Sonnenschein": make_practice(
            name="Zahnarztpraxis Sonnenschein", city="Quedlinburg"
        ),
    }
    make_user(practice=practices["Praxis Dr. Müller"], username="jgross", name="Jürgen Groß")
    make_user(
        practice=practices["Gemeinschaftspraxis Mueller"],
        username="juergen.gross",
        name="Juergen Gross",
        kind=UserKind.MEMBER,
        lanr="123456601",
    )
    make_user(practice=practices["Praxis Weiß"], username="emuster", name="Erika Muster")
    make_yubikey(practice=practices["Zahnarztpraxis Sonnenschein"])
    return {name: practice.bsnr for name, practice in practices.items()}


def found(session: Session, query: str) -> set[tuple[str, str]]:
    """(kind of hit, practice name or username) of every hit."""
    return {(hit.kind, hit.username or hit.practice_name) for hit in search(session, query)}


@pytest.mark.parametrize("query", ["MÜLLER", "müller", "Mueller", "MUELLER", "üLLer"])
def test_practice_names_in_both_spellings_and_any_case(
    session: Session, records: dict[str, str], query: str
) -> None:
    assert found(session, query) == {
        ("Praxis", "Praxis Dr. Müller"),
        ("Praxis", "Gemeinschaftspraxis Mueller"),
    }


@pytest.mark.parametrize("query", ["KÖTHEN", "koethen", "Köthen (Anhalt)"])
def test_cities(session: Session, records: dict[str, str], query: str) -> None:
    assert found(session, query) == {("Ort", "Praxis Dr. Müller")}


@pytest.mark.parametrize("query", ["WEISS", "weiß", "Weiss"])
def test_sharp_s_in_names_and_cities(session: Session, records: dict[str, str], query: str) -> None:
    assert found(session, query) == {("Praxis", "Praxis Weiß")}


@pytest.mark.parametrize("query", ["Groß", "GROSS", "jürgen gross", "Juergen Groß"])
def test_person_names_in_both_spellings(
    session: Session, records: dict[str, str], query: str
) -> None:
    hits = found(session, query)

    assert hits >= {("Name", "jgross"), ("Name", "juergen.gross")}
    assert {kind for kind, _ in hits} <= {"Name", "Benutzer"}


def test_numbers_and_usernames_still_found(
    session: Session, records: dict[str, str], make_yubikey: MakeKey
) -> None:
    serial = session.query(Token.serial).scalar()

    assert ("BSNR", "Praxis Weiß") in found(session, records["Praxis Weiß"][:7])
    assert found(session, "JUERGEN.") == {("Benutzer", "juergen.gross")}
    assert ("LANR", "juergen.gross") in found(session, "123456601")
    assert found(session, str(serial)) == {("Yubikey", "Zahnarztpraxis Sonnenschein")}


def test_wildcards_are_text(session: Session, records: dict[str, str]) -> None:
    assert found(session, "%") == found(session, "_") == set()


def test_the_key_follows_a_changed_name_and_city(session: Session, records: dict[str, str]) -> None:
    practice = session.scalars(select(Practice).where(Practice.bsnr == records["Praxis Weiß"]))
    renamed = practice.one()
    renamed.name, renamed.city = "Praxis Dr. Schäfer", "Zörbig"
    user = session.scalars(select(User).where(User.username == "emuster")).one()
    user.name = "Erika Höfer"
    session.flush()

    assert found(session, "SCHAEFER") == {("Praxis", "Praxis Dr. Schäfer")}
    assert found(session, "zoerbig") == {("Ort", "Praxis Dr. Schäfer")}
    assert found(session, "höfer") == {("Name", "emuster")}
    assert found(session, "Weiß") == found(session, "Muster") == set()


@pytest.mark.parametrize("query", ["*", "?", "[", "8*", "8?", "u*", "[1-9]", '"', 'Müller"'])
def test_glob_and_match_characters_are_text(
    session: Session, records: dict[str, str], query: str
) -> None:
    """SQLite looks prefixes up with GLOB and parts with an FTS5 phrase: their special
    characters are taken as typed, as LIKE's are."""
    assert found(session, query) == set()


def test_digits_also_find_a_name_that_holds_them(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    """A number typed is looked for in names too, not only as BSNR, LANR or serial."""
    practice = make_practice(name="MVZ 4711 Halle", city="Halle (Saale)")
    make_user(practice=practice, username="mvz", name="Empfang 4711")

    assert found(session, "4711") == {("Praxis", "MVZ 4711 Halle"), ("Name", "mvz")}


def test_a_part_shorter_than_a_trigram(session: Session, records: dict[str, str]) -> None:
    """Two letters have no trigram to look up: found all the same."""
    assert {("Praxis", "Praxis Weiß"), ("Name", "jgross")} <= found(session, "ß")


def test_at_most_limit_hits_the_first_by_bsnr_then_username(
    session: Session, make_practice: Callable[..., Practice], make_user: Callable[..., User]
) -> None:
    """Each kind of look-up is limited on its own; the hits are the first by BSNR, then
    by username, and practices come before users."""
    made = [make_practice(name=f"Praxis Sonnenhof {n}", city="Zörbig") for n in range(6)]
    for n, practice in enumerate(made):
        make_user(practice=practice, username=f"sonnenhof{n}", name="Sonnenhof")

    hits = search(session, "sonnenhof", limit=4)
    more = search(session, "sonnenhof", limit=8)

    assert [hit.bsnr for hit in hits] == sorted(practice.bsnr for practice in made)[:4]
    assert {hit.kind for hit in hits} == {"Praxis"}
    assert [hit.username for hit in more[6:]] == ["sonnenhof0", "sonnenhof1"]
