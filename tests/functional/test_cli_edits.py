"""Practices move and rename, people change names: ``practice edit`` and ``user edit``
as staff type them; the old values go to the audit trail, a refused edit changes
nothing."""

from __future__ import annotations

import json

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry
from tests.support.cli import Invoke, ok, refused, snapshot

BSNR = "881234500"  # the ``practice_with_terms`` fixture


def edits(database: Database, tag: str) -> list[tuple[str, dict[str, object]]]:
    with database.session() as session:
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.data).where(AuditEntry.tag == tag)
        )
        return [(actor, json.loads(data)["changes"]) for actor, data in rows]


def test_a_practice_moves_renames_and_gets_a_phone_number(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    out = ok(
        invoke(
            "practice", "edit", BSNR, "--name", "MVZ Hasselbachplatz", "--street",
            "Hasselbachplatz 3", "--zip", "39104", "--city", "Magdeburg", "--address-extra",
            "Eingang Sternstraße", "--phone", "0391 555 12 34", "--contact", "Frau Schulze",
        )
    ).output  # fmt: skip
    shown = ok(invoke("practice", "show", BSNR)).output

    assert "Name: Praxis Dr. Müller → MVZ Hasselbachplatz" in out
    assert "Straße: Hauptstraße 1 → Hasselbachplatz 3" in out
    assert "Telefon: – → 0391 555 12 34" in out
    assert "Ort:" not in out  # unchanged
    assert "Betriebsstätte 881234500 – MVZ Hasselbachplatz" in shown
    assert "Eingang Sternstraße, Hasselbachplatz 3, 39104 Magdeburg" in shown
    assert "0391 555 12 34" in shown and "Frau Schulze" in shown
    ((actor, changes),) = edits(database, "practice:record:edit")
    assert actor == "helpdesk-test"
    assert changes["street"] == {"old": "Hauptstraße 1", "new": "Hasselbachplatz 3"}


def test_a_refused_edit_changes_nothing(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    before = snapshot(database)

    refused(invoke("practice", "edit", BSNR, "--name", "Neu", "--zip", "1234"), "Postleitzahl")
    refused(invoke("practice", "edit", BSNR), "Keine Änderung angegeben")
    refused(invoke("practice", "edit", "999999999", "--city", "Halle"), "Keine Betriebsstätte")

    assert snapshot(database) == before
    assert "Praxis Dr. Müller" in ok(invoke("practice", "show", BSNR)).output


def test_a_member_changes_name_and_lanr_and_another_persons_lanr_is_refused(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    for username, lanr, name in (
        ("aschmidt", "123456601", "Dr. Anna Schmidt"),
        ("blange", "234567701", "Dr. Bert Lange"),
    ):
        ok(
            invoke(
                "user", "add", username, "--practice", BSNR, "--kind", "member",
                "--lanr", lanr, "--name", name,
            )
        )  # fmt: skip

    out = ok(invoke("user", "edit", "aschmidt", "--name", "Dr. Anna Schmidt-Berger")).output
    before = snapshot(database)
    refused(invoke("user", "edit", "blange", "--lanr", "123456601"), "LANR 123456601")
    refused(invoke("user", "edit", "blange", "--lanr", "234567801"), "Prüfziffer")

    assert "Name: Dr. Anna Schmidt → Dr. Anna Schmidt-Berger" in out
    assert snapshot(database) == before
    assert "Dr. Anna Schmidt-Berger" in ok(invoke("user", "show", "aschmidt")).output
    assert edits(database, "account:user:edit") == [
        (
            "helpdesk-test",
            {"name": {"old": "Dr. Anna Schmidt", "new": "Dr. Anna Schmidt-Berger"}},
        )
    ]


def test_a_member_leaves_the_group_practice_and_the_date_is_cleared_with_a_reason(
    invoke: Invoke, database: Database, practice_with_terms: str
) -> None:
    for username, lanr, name in (
        ("aschmidt", "123456601", "Dr. Anna Schmidt"),
        ("blange", "234567701", "Dr. Bert Lange"),
    ):
        ok(
            invoke(
                "user", "add", username, "--practice", BSNR, "--kind", "member",
                "--lanr", lanr, "--name", name,
            )
        )  # fmt: skip
    ok(invoke("user", "add", "mfa", "--practice", BSNR, "--kind", "staff"))

    ended = ok(invoke("user", "end", "aschmidt", "--date", "2026-05-15")).output
    shown = ok(invoke("practice", "show", BSNR)).output
    before = snapshot(database)
    refused(invoke("user", "end", "aschmidt", "--clear"), "Grund")
    refused(invoke("user", "end", "mfa", "--date", "2026-05-15"), "kein Mitglied")
    refused(invoke("user", "end", "aschmidt"), "--date oder --clear")
    assert snapshot(database) == before
    cleared = ok(
        invoke("user", "end", "aschmidt", "--clear", "--reason", "Meldung irrtümlich")
    ).output

    assert "automatische Sperre ab 01.07.2027 00:00" in ended
    assert "Ende der Tätigkeit 15.05.2026" in shown
    assert "gestrichen" in cleared
    assert "Eigenes Tätigkeitsende" not in ok(invoke("user", "show", "aschmidt")).output
    with database.session() as session:
        tags = session.scalars(
            select(AuditEntry.tag).where(AuditEntry.subject_id == "aschmidt")
        ).all()
    assert "account:activity:end" in tags and "account:activity:clear" in tags
