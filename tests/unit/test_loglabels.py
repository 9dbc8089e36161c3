"""The German wording of states, audit entries and auth-log reasons: complete (every tag,
every reason), and values as Germans write them (money, spans, days), never raw codes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flexnet import labels, loglabels
from flexnet.audit import AuditTag
from flexnet.authn.decision import Reason
from flexnet.models import AuditEntry, LockCause, TokenStatus
from flexnet.otp.verify import OtpReason


def test_every_audit_tag_has_a_german_label() -> None:
    assert [tag for tag in AuditTag if tag not in loglabels.AUDIT_TAG_LABEL] == []
    assert loglabels.tag_label("no.such.tag") == "anderer Vorgang"


@pytest.mark.parametrize(
    "reason", sorted({*(r.value for r in Reason), *(r.value for r in OtpReason)})
)
def test_every_reason_the_pipeline_writes_reads_in_german(reason: str) -> None:
    assert loglabels.auth_reason_known(reason), reason
    assert reason not in loglabels.auth_reason_label(reason)


def test_a_user_s_lock_reason_names_the_cause() -> None:
    assert loglabels.auth_reason_label("user_locked_loss") == "Benutzer gesperrt (Verlust)"
    assert [c for c in LockCause if c not in loglabels.LOCK_CAUSE_LABEL] == []


def test_money_and_spans_are_written_as_germans_write_them() -> None:
    assert labels.euro(6000) == "60,00 €"
    assert labels.euro(123450) == "1.234,50 €"
    assert labels.duration(timedelta(days=1)) == "1 Tag"
    assert labels.duration(timedelta(hours=24 * 14)) == "14 Tage"
    assert labels.duration(timedelta(hours=5)) == "5 Stunden"
    assert labels.duration(timedelta(minutes=90)) == "90 Minuten"


def test_every_key_state_has_a_german_label() -> None:
    assert all(labels.token_status_label(s) != "unbekannt" for s in TokenStatus)
    assert labels.disconnect_label("no_coa_port").startswith("nicht möglich")


def test_an_audit_entry_s_data_is_shown_as_label_and_value_not_json() -> None:
    entry = AuditEntry(
        tag=AuditTag.TOKEN_REPLACE.value,
        data=json.dumps(
            {"why": "lost", "fee_cents": 6000, "ended_on": "2026-12-31", "cause": "loss"}
        ),
    )

    shown = {d.label: d.value for d in loglabels.entry_data(entry)}

    assert shown == {
        "warum": "Verlust",
        "Kosten": "60,00 €",
        "Ende am": "31.12.2026",
        "Anlass": "Verlust",
    }


def test_an_edit_is_shown_field_by_field_old_to_new() -> None:
    entry = AuditEntry(
        tag=AuditTag.PRACTICE_EDIT.value,
        data=json.dumps({"changes": {"city": {"old": "Magdeburg", "new": "Halle (Saale)"}}}),
    )

    assert [(d.label, d.value) for d in loglabels.entry_data(entry)] == [
        ("Änderungen", "Ort: Magdeburg → Halle (Saale)")
    ]
