"""Versions of the terms of use: publish one, list who has not accepted it."""

from __future__ import annotations

from datetime import date

import click

from flexnet.cli import DATE, CliContext, echo_text, pass_context
from flexnet.cli.record_cmds import terms
from flexnet.lifecycle import terms as terms_service


@terms.command("publish")
@click.argument("version")
@click.option("--effective", "effective_on", type=DATE, required=True, help="Gilt ab")
@click.option("--accept-by", type=DATE, required=True, help="Letzter Tag der Annahme")
@pass_context
def terms_publish(ctx: CliContext, version: str, effective_on: date, accept_by: date) -> None:
    """Neue Version veröffentlichen: jede Praxis mit älterer Version bekommt einen Brief;
    wer bis zum Ende der Frist nicht annimmt, wird bei der Anmeldung abgewiesen
    (FLEXNET_TERMS_OVERDUE=lock: zusätzlich gesperrt, § 14.2)."""
    with ctx.unit_of_work() as session:
        published = terms_service.publish(
            session,
            version=version,
            effective_on=effective_on,
            accept_by=accept_by,
            actor=ctx.actor,
            now=ctx.now(),
        )
        asked = len(terms_service.pending(session))
        shown = published.version
    echo_text(
        f"Nutzungsbedingungen {shown} veröffentlicht: gelten ab {effective_on:%d.%m.%Y}, "
        f"anzunehmen bis {accept_by:%d.%m.%Y}"
    )
    echo_text(f"{asked} Betriebsstätten haben sie noch nicht angenommen (Briefe vorgemerkt)")


@terms.command("pending")
@pass_context
def terms_pending(ctx: CliContext) -> None:
    """Betriebsstätten, die die neueste Version noch nicht angenommen haben, mit der
    zuletzt angenommenen Version und der Frist."""
    with ctx.reading() as session:
        published = terms_service.versions(session)
        rows = terms_service.pending(session)
        counts = terms_service.accepted_counts(session)
    if not published:
        echo_text("Keine Version veröffentlicht (flexnet terms publish)")
    for one in published:
        echo_text(
            f"Version {one.version}: gilt ab {one.effective_on:%d.%m.%Y}, anzunehmen bis "
            f"{one.accept_by:%d.%m.%Y}; zuletzt angenommen von {counts.get(one.version, 0)}"
        )
    today = ctx.today()
    for row in rows:
        accepted = (
            f"Version {row.accepted_version} am {row.accepted_on:%d.%m.%Y}"
            if row.accepted_version and row.accepted_on
            else "keine Version"
        )
        late = "  ABGEWIESEN" if row.due_by < today else ""
        echo_text(
            f"{row.bsnr}  {row.name}: {accepted}; Version {row.due_version} "
            f"anzunehmen bis {row.due_by:%d.%m.%Y}{late}"
        )
    echo_text(f"{len(rows)} Betriebsstätten ohne die neueste Version")
