"""``flexnet terms publish`` and ``terms pending`` as staff run them (at today's date: the
refusal at login after the period is tested at fixed instants in tests/unit/lifecycle/
test_terms.py and through RADIUS in test_radius.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from flexnet.db import Database
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuditEntry, Letter, LetterKind
from tests.support.cli import Invoke, ok, refused, snapshot


def day(offset: int) -> str:
    return (datetime.now(BERLIN).date() + timedelta(days=offset)).isoformat()


def add_practice(invoke: Invoke, bsnr: str, name: str) -> None:
    ok(
        invoke(
            "practice", "add", "--bsnr", bsnr, "--name", name, "--street", "Breiter Weg 7",
            "--zip", "39104", "--city", "Magdeburg",
        )
    )  # fmt: skip
    ok(invoke("terms", "accept", bsnr, "--version", "1.0", "--channel", "paper"))


def test_publish_asks_every_practice_and_pending_lists_who_has_not_accepted(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    add_practice(invoke, "881234600", "Praxis Zwei")
    add_practice(invoke, "881234700", "Praxis Drei")

    published = ok(
        invoke("terms", "publish", "2.0", "--effective", day(30), "--accept-by", day(90))
    ).output
    before = ok(invoke("terms", "pending")).output
    refused(
        invoke("terms", "accept", "881234600", "--version", "2.o", "--channel", "portal"), "2.0"
    )
    ok(invoke("terms", "accept", "881234600", "--version", "2.0", "--channel", "portal"))
    after = ok(invoke("terms", "pending")).output

    deadline = date.fromisoformat(day(90))
    assert "3 Betriebsstätten haben sie noch nicht angenommen" in published
    assert f"anzunehmen bis {deadline:%d.%m.%Y}" in published
    assert "3 Betriebsstätten ohne die neueste Version" in before
    assert "881234600  Praxis Zwei: Version 1.0" in before
    assert "881234600" not in after and "2 Betriebsstätten ohne die neueste Version" in after
    assert "zuletzt angenommen von 1" in after  # version 2.0: one practice
    with database.session() as session:
        asked = session.scalars(select(Letter).where(Letter.kind == LetterKind.TERMS)).all()
        actors = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.tag == "terms:version:publish")
        ).all()
    assert len(asked) == 3 and {letter.note for letter in asked} == {"2.0"}
    assert actors == ["helpdesk-test"]


def test_a_refused_publication_changes_nothing(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    ok(invoke("terms", "publish", "2.0", "--effective", day(30), "--accept-by", day(90)))
    before = snapshot(database)

    refused(
        invoke("terms", "publish", "2.0", "--effective", day(30), "--accept-by", day(90)),
        "bereits veröffentlicht",
    )
    refused(
        invoke("terms", "publish", "3.0", "--effective", day(30), "--accept-by", day(20)),
        "vor dem Inkrafttreten",
    )

    assert snapshot(database) == before
