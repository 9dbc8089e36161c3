"""`flexnet nas add --proxy`: a RADIUS proxy in front of several concentrators."""

from __future__ import annotations

import json

from sqlalchemy import select

from flexnet.db import Database
from flexnet.models import AuditEntry, NasClient
from tests.support.cli import Invoke, ok


def test_nas_add_marks_a_proxy_and_audits_it(invoke: Invoke, database: Database) -> None:
    for name, address, extra in (
        ("freeradius-1", "192.0.2.10", ("--proxy",)),
        ("asa-1", "192.0.2.20", ()),
    ):
        ok(
            invoke(
                "nas",
                "add",
                name,
                "--address",
                address,
                "--secret-stdin",
                *extra,
                input="ein-langes-gemeinsames-geheimnis\n",
            )
        )

    with database.reader() as session:
        marked = {n.name: n.proxy for n in session.scalars(select(NasClient))}
        created = [
            json.loads(e.data)["proxy"]
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.tag == "radius:nas:create")
            )
        ]
    assert marked == {"freeradius-1": True, "asa-1": False}
    assert sorted(created) == [False, True]


def test_nas_set_marks_an_existing_nas_as_a_proxy_and_back(
    invoke: Invoke, database: Database
) -> None:
    """A concentrator that gets a FreeRADIUS in front of it keeps its NAS entry."""
    ok(
        invoke(
            "nas", "add", "vpn-1", "--address", "192.0.2.10", "--secret-stdin",
            input="ein-langes-gemeinsames-geheimnis\n",
        )
    )  # fmt: skip

    marked = ok(invoke("nas", "set", "vpn-1", "--proxy", "yes")).output
    unmarked = ok(invoke("nas", "set", "vpn-1", "--proxy", "no")).output

    assert "Proxy" in marked and "Proxy" not in unmarked
    with database.reader() as session:
        changes = [
            json.loads(e.data)
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.tag == "radius:nas:change")
                .order_by(AuditEntry.id)
            )
        ]
    assert changes == [{"proxy": [False, True]}, {"proxy": [True, False]}]
