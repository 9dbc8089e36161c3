"""The access report (:mod:`flexnet.ops.privacy`) as a readable German PDF: the letters'
fonts and letterhead, the purposes and periods first (Art. 15 (1) DSGVO), then each
section with its fields by German name. Stored text is shown, never obeyed (control and
bidi characters as \\xNN)."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table

from flexnet.lifecycle.rules import BERLIN
from flexnet.ops.privacy import Report
from flexnet.provisioning.letters import LetterTemplates
from flexnet.textrules import visible

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}.*)?$")
SECTIONS = {
    "benutzer": "Benutzer",
    "betriebsstaette": "Betriebsstätte",
    "kennwortwechsel": "Frühere Kennwörter gesetzt am (die Kennwörter selbst speichern wir nicht)",
    "ausnahme_von_der_sperre": "Ausnahme von der automatischen Sperre (§ 10 Abs. 3)",
    "nutzungsbedingungen": "Annahme der Nutzungsbedingungen (§ 1.3)",
    "briefe": "Briefe",
    "yubikeys": "Yubikeys der Betriebsstätte",
    "anfragen": "Anfragen an den IT-Service",
    "anmeldeprotokoll": "Anmeldeprotokoll (31 Tage)",
    "vpn_sitzungen": "VPN-Sitzungen (31 Tage)",
    "revisionsprotokoll": "Revisionsprotokoll",
}
FIELDS = {
    "id": "Nummer",
    "bsnr": "BSNR",
    "username": "Benutzername",
    "usernames": "Benutzernamen",
    "name": "Name",
    "lanr": "LANR",
    "kind": "Art",
    "status": "Status",
    "address_extra": "Adresszusatz",
    "street": "Straße",
    "zip_code": "Postleitzahl",
    "city": "Ort",
    "created_at": "angelegt am",
    "anonymised_at": "anonymisiert am",
    "activity_ended_on": "Ende der Tätigkeit",
    "terminated_by": "gekündigt durch",
    "termination_notice_on": "Kündigung eingegangen am",
    "access_ends_on": "letzter Tag mit Zugang",
    "termination_reason": "Kündigungsgrund",
    "lock_cause": "Sperrgrund (Art)",
    "lock_reason": "Sperrgrund",
    "locked_at": "gesperrt am",
    "password_set_at": "Kennwort gesetzt am",
    "password_must_change": "Kennwort muss geändert werden",
    "failed_logins": "Fehlversuche in Folge",
    "last_failed_at": "letzter Fehlversuch",
    "throttled_until": "vorübergehend gesperrt bis",
    "last_login_at": "letzte Anmeldung",
    "first_login_at": "erste Anmeldung",
    "version": "Version",
    "accepted_on": "angenommen am",
    "channel": "Weg",
    "until": "bis einschließlich",
    "reason": "Grund",
    "decision_ref": "Aktenzeichen",
    "decided_by": "entschieden von",
    "reference": "Zeichen",
    "printed_at": "gedruckt am",
    "dispatched_on": "versandt am",
    "effective_on": "wirksam am",
    "fee_cents": "Kosten (Cent)",
    "note": "Vermerk",
    "serial": "Seriennummer",
    "public_id": "öffentliche Kennung",
    "returned_on": "zurückgegeben am",
    "return_condition": "Zustand bei Rückgabe",
    "last_used_at": "zuletzt benutzt",
    "contact_person": "Ansprechpartner",
    "phone": "Telefon",
    "message": "Nachricht",
    "source_ip": "IP-Adresse",
    "handled_by": "bearbeitet von",
    "handled_at": "bearbeitet am",
    "staff_notes": "Vermerke des IT-Service",
    "at": "Zeitpunkt",
    "client": "über",
    "outcome": "Ergebnis",
    "token_serial": "Yubikey",
    "started_at": "Beginn",
    "stopped_at": "Ende",
    "framed_ip": "IP-Adresse im VPN",
    "calling_station": "eigene IP-Adresse",
    "actor": "Handelnder",
    "tag": "Ereignis",
    "subject_id": "betrifft",
    "data": "Angaben",
    "taken_over_password": "übernommenes Kennwort",
    "next_password_set_at": "neues Kennwort ausgegeben am",
    "recorded_at": "erfasst am",
    "replace_at_once": "ersetzt das alte sofort",
    "run_id": "Versandlauf",
    "token_id": "Yubikey (Nummer)",
    "user_id": "Benutzer (Nummer)",
    "input_octets": "empfangene Bytes",
    "output_octets": "gesendete Bytes",
    "terminate_cause": "Grund des Endes",
    "disconnect_requested_at": "Trennung angefordert am",
    "disconnect_result": "Ergebnis der Trennung",
    "updated_at": "zuletzt gemeldet",
    "nas": "VPN-Konzentrator",
    "actor_kind": "Art des Handelnden",
    "subject_kind": "betrifft (Art)",
    "hash": "Prüfsumme",
    "digits": "Stellen",
    "remote_validation": "extern geprüft",
    "return_reminded_on": "an Rückgabe erinnert am",
    "counter_warned_at": "Zählerwarnung am",
    "created_by": "erstellt von",
}
# Technical fields the JSON holds as well; left out of the readable report.
_TECHNICAL = frozenset(
    {
        "practice_id",
        "staff_id",
        "nas_id",
        "session_epoch",
        "search_key",
        "acct_session_id",
        "replaced_by_id",
        "otp_usage_counter",
        "otp_session_counter",
        "otp_timestamp",
        "hotp_counter",
        "totp_last_step",
        "nas_address",
        "access_profile",
    }
)
# Values of enumerations, in German.
VALUES = {
    "member": "Mitglied (Ärztin/Arzt, Psychotherapeut/in)",
    "staff": "Praxispersonal",
    "third_party": "Dritte",
    "practice_access": "Praxiszugang",
    "pending": "wartet",
    "active": "aktiv",
    "locked": "gesperrt",
    "revoked": "beendet",
    "manual": "Sperre durch den IT-Service (§ 10.1)",
    "loss": "Verlust (§ 7.2)",
    "misuse": "Verdacht auf Missbrauch (§ 7.2)",
    "self_service": "Selbstsperre",
    "lifecycle": "Ende der Tätigkeit (§ 10.3)",
    "termination": "Kündigung (§ 10.2)",
    "objection": "Widerspruch (§ 14.2)",
    "paper": "Teilnahmeerklärung auf Papier",
    "portal": "Mitgliederportal",
    "due": "vorgemerkt",
    "printed": "gedruckt",
    "dispatched": "versandt",
    "cancelled": "entfallen",
    "accept": "angenommen",
    "reject": "abgelehnt",
    "open": "offen",
    "verified": "bestätigt",
    "fulfilled": "erledigt",
    "rejected": "abgelehnt",
    "credentials": "Zugangsdaten",
    "key": "Begleitschreiben zum Yubikey",
    "new_password": "neues Kennwort",
    "lock": "Sperre, Bitte um Rückgabe des Yubikeys",
    "loss_confirmation": "Bestätigung des Verlusts",
    "lock_notice": "Ankündigung der Sperre",
    "return_reminder": "Erinnerung an die Rückgabe",
    "key_lost": "Yubikey verloren",
    "key_defective": "Yubikey defekt",
    "resync": "Yubikey synchronisieren",
    "unlock": "Entsperren",
    "new_user": "neuer Benutzer",
    "end_of_access": "Zugang beenden",
    "self_lock": "Selbstsperre",
}
_PURPOSES = (
    "Zweck: Betrieb des VPN-Zugangs KV-FlexNet der KV Sachsen-Anhalt (Nutzungsbedingungen, "
    "Art. 6 Abs. 1 lit. c und e DSGVO). Anmeldeprotokoll, VPN-Sitzungen und IP-Adressen "
    "werden nach 31 Tagen gelöscht, erledigte Anfragen nach einem Jahr; Stammdaten, Briefe "
    "und das Revisionsprotokoll werden bis zu 10 Jahre nach dem Ende der Teilnahme "
    "aufbewahrt (§ 304 SGB V) und danach anonymisiert bzw. gelöscht. Empfänger: nur der "
    "IT-Service der KV Sachsen-Anhalt. Sie haben das Recht auf Berichtigung, Löschung, "
    "Einschränkung und Beschwerde bei der Aufsichtsbehörde (Art. 16 bis 18, 77 DSGVO)."
)


def render(report: Report, templates: LetterTemplates) -> bytes:
    regular, bold = templates.regular.name, templates.bold.name
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=11.5)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    heading = ParagraphStyle("h", parent=body, fontName=bold, fontSize=12, leading=16)
    title = ParagraphStyle("t", parent=body, fontName=bold, fontSize=15, leading=19)
    subject = "Benutzer" if report.kind == "user" else "Betriebsstätte (BSNR)"
    made = report.generated_at.astimezone(BERLIN)
    story: list[Any] = [
        Paragraph(_text(templates.layout.letterhead.title), heading),
        Paragraph(_text(templates.layout.letterhead.subtitle), body),
        Spacer(0, 6 * mm),
        Paragraph("Auskunft nach Art. 15 DSGVO", title),
        Paragraph(f"über {subject} {_text(report.key)}, Stand {made:%d.%m.%Y %H:%M} Uhr", body),
        Spacer(0, 3 * mm),
        Paragraph(_PURPOSES, small),
    ]
    for name, content in report.sections.items():
        story.append(Spacer(0, 5 * mm))
        story.append(Paragraph(_text(SECTIONS.get(name, name)), heading))
        story.extend(_section(content, body, small))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title="Auskunft nach Art. 15 DSGVO",
        author=templates.layout.letterhead.title,
    )
    document.build(story)
    return buffer.getvalue()


def _section(content: Any, body: ParagraphStyle, small: ParagraphStyle) -> list[Any]:
    if content is None or content == []:
        return [Paragraph("keine", body)]
    if isinstance(content, dict):
        return [_fields(content, small)]
    if all(not isinstance(item, dict) for item in content):
        return [Paragraph(", ".join(_shown(item) for item in content), body)]
    return [KeepTogether([Spacer(0, 2 * mm), _fields(item, small)]) for item in content]


def _fields(values: dict[str, Any], style: ParagraphStyle) -> Table:
    rows = [
        [Paragraph(_text(FIELDS.get(name, name)), style), Paragraph(_shown(value, name), style)]
        for name, value in values.items()
        if name not in _TECHNICAL and (not isinstance(value, dict | list) or value)
    ]
    table = Table(rows, colWidths=[45 * mm, 125 * mm])
    table.setStyle(
        [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEABOVE", (0, 0), (-1, 0), 0.3, "#999999")]
    )
    return table


def _shown(value: Any, field: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, dict):
        return "<br/>".join(f"{_text(k)}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, str):
        return _text(_german(value, field))
    return _text(value)


# The fields whose values are enumerations of VALUES ("staff" elsewhere is IT staff).
_ENUMERATED = frozenset({"kind", "status", "lock_cause", "channel", "outcome"})


def _german(value: str, field: str) -> str:
    """A stored instant or day as Germans write it; an enumeration's value in German."""
    if _ISO.match(value):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        if len(value) == 10:
            return f"{parsed:%d.%m.%Y}"
        return f"{parsed.astimezone(BERLIN):%d.%m.%Y %H:%M:%S}"
    return VALUES.get(value, value) if field in _ENUMERATED else value


def _text(value: Any) -> str:
    return escape(visible(str(value)))
