"""The registry import's diff in words, as the CLI prints it and the admin page shows it:
what is (or would be) created and changed, old → new."""

from __future__ import annotations

from flexnet.labels import FIELD_LABEL
from flexnet.provisioning import registry
from flexnet.provisioning.registry import Plan, day_text

_LABELS = {**FIELD_LABEL, "activity_ended_on": "Ende der Tätigkeit"}


def report_lines(planned: Plan) -> list[str]:
    """The diff: what is (or would be) created and changed, old → new; what is skipped;
    the unchanged and those the file does not name, counted."""
    lines = []
    for practice in planned.practices:
        row = practice.row
        if practice.practice is None:
            extra = f"{row.address_extra}, " if row.address_extra else ""
            lines.append(
                f"Neu: Betriebsstätte {row.bsnr} {row.name}, {extra}{row.street}, "
                f"{row.zip_code} {row.city}"
            )
        else:
            lines.append(f"Geändert: Betriebsstätte {row.bsnr}: {_changes(practice.changes)}")
    for member in planned.members:
        row = member.row
        who = f"Mitglied LANR {row.lanr} {row.member_name} bei BSNR {row.bsnr}"
        if member.user is None:
            end = f", Ende der Tätigkeit {row.ended_on:%d.%m.%Y}" if row.ended_on else ""
            lines.append(f"Neu: {who}, Benutzer {member.username}{end}")
        else:
            lines.append(f"Geändert: {who} ({member.username}): {_changes(member.changes)}")
    for row, why in planned.skipped:
        lines.append(f"Übersprungen: Mitglied LANR {row.lanr} bei BSNR {row.bsnr}: {why}")
    lines.append(
        f"Unverändert: {planned.unchanged_practices} Betriebsstätten, "
        f"{planned.unchanged_members} Mitglieder"
    )
    if planned.not_in_file:
        lines.append(
            f"Nicht in der Datei (bleiben, wie sie sind): {planned.not_in_file} Mitglieder"
        )
    return lines


def _changes(changes: registry.Change) -> str:
    return "; ".join(
        f"{_LABELS.get(name, name)}: {_value(old)} → {_value(new)}"
        for name, (old, new) in changes.items()
    )


def _value(value: object) -> str:
    if value is None or value == "":
        return "–"
    if hasattr(value, "strftime"):
        return day_text(value)  # type: ignore[arg-type]
    return str(value)


def summary(planned: Plan, *, dry_run: bool) -> str:
    """One line: how many practices and members are (or would be) new and changed."""
    created = sum(p.practice is None for p in planned.practices)
    members = sum(m.user is None for m in planned.members)
    counts = (
        f"{created} Betriebsstätten neu, {len(planned.practices) - created} geändert; "
        f"{members} Mitglieder neu, {len(planned.members) - members} geändert"
    )
    if dry_run:
        return f"Probelauf, nichts geändert: {counts}"
    return f"Übernommen: {counts}" if planned.steps else "Nichts zu ändern"
