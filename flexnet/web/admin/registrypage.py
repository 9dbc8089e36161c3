"""The association's registry in the browser: the same import as ``flexnet registry
import FILE.csv [--dry-run]``, with the diff shown on the page.

A trial run (the default) reads in a read-only transaction and changes nothing; the
import itself plans again against the data as it is then and applies in one unit of
work (one bad row: nothing changes, every bad row named). The same file twice changes
nothing, so sending the form again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, render_template
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField

from flexnet.db import utcnow
from flexnet.errors import FlexnetError, ValidationError
from flexnet.otp.importer import ImportFailed
from flexnet.provisioning import registry, registry_file
from flexnet.provisioning.registry_report import report_lines, summary
from flexnet.web import state
from flexnet.web.admin import HELPDESK, allowed, blueprint
from flexnet.web.admin.onboarding import MAX_IMPORT_BYTES
from flexnet.web.errors import reshows_stale_form

SHOWN_LINES = 500  # a first import names thousands; the counts say the rest


class RegistryForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    file = FileField(
        "CSV-Export des Registers (siehe docs/IMPORT_FORMATS.md)",
        validators=[FileRequired("Bitte eine Datei wählen.")],
    )
    trial = BooleanField("Nur prüfen, nichts ändern (Probelauf)", default=True)


@dataclass(frozen=True)
class _Result:
    trial: bool
    summary: str
    lines: list[str]
    more: int


@blueprint.route("/registry", methods=["GET", "POST"])
@reshows_stale_form
@allowed(HELPDESK)
def registry_import() -> ResponseReturnValue:
    """Upload the registry's export: a trial run shows the diff, the import applies it."""
    form = RegistryForm()

    def page(
        problems: list[str], status: int, result: _Result | None = None
    ) -> ResponseReturnValue:
        shown = render_template(
            "admin/registry.html", form=form, problems=problems, result=result, staff=g.staff
        )
        return shown, status

    if not form.is_submitted():
        return page([], 200)
    if g.get("stale_form"):
        return page([], 400)
    if not form.validate():
        return page([], 400)
    try:
        result = _run(form)
    except ImportFailed as failed:
        lines = [
            *failed.errors,
            f"Import abgebrochen, nichts geändert ({len(failed.errors)} Fehler)",
        ]
        return page(lines, 400)
    except FlexnetError as error:
        return page(error.lines, error.status)
    return page([], 200, result)


def _run(form: RegistryForm) -> _Result:
    data = form.file.data.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError("Die Datei ist größer als 5 MB")
    rows = registry_file.parse(data)  # every bad row named before anything is read
    settings, now, trial = state().settings, utcnow(), bool(form.trial.data)
    quarters = settings.lock_after_quarters
    if trial:
        with state().database.reader() as db:
            planned = registry.plan(db, rows, now=now, quarters=quarters)
    else:
        with state().database.session() as db:
            planned = registry.plan(db, rows, now=now, quarters=quarters)
            registry.apply(db, planned, actor=g.staff.actor, now=now, quarters=quarters)
    lines = report_lines(planned)
    return _Result(
        trial,
        summary(planned, dry_run=trial),
        lines[:SHOWN_LINES],
        max(0, len(lines) - SHOWN_LINES),
    )
