"""German wording of the audit trail and the auth log, for people (the admin UI).

Every audit tag and every auth-log reason has a German label here; the admin UI shows it
and keeps the technical name small beside it. An audit entry's data are shown as German
label and value, never as JSON: keys, enum values, days and instants are translated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flexnet.audit import ActorKind, AuditTag
from flexnet.labels import change_lines, euro
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import AuditEntry, LockCause

AUDIT_TAG_LABEL: dict[AuditTag, str] = {
    AuditTag.STAFF_ACCOUNT_CREATE: "Mitarbeiter angelegt",
    AuditTag.STAFF_ACCOUNT_DEACTIVATE: "Mitarbeiter deaktiviert",
    AuditTag.STAFF_ROLE_CHANGE: "Rolle eines Mitarbeiters geändert",
    AuditTag.STAFF_LOGIN: "Mitarbeiter angemeldet",
    AuditTag.STAFF_LOGOUT: "Mitarbeiter abgemeldet",
    AuditTag.STAFF_SIGN_IN_FAIL: "Anmeldung eines Mitarbeiters abgewiesen",
    AuditTag.STAFF_TOTP_ENROL: "zweiter Faktor eingerichtet",
    AuditTag.STAFF_TOTP_RESET: "zweiter Faktor zurückgesetzt",
    AuditTag.STAFF_ENROLMENT_CODE: "Einrichtungscode ausgegeben",
    AuditTag.STAFF_PASSWORD_CHANGE: "Kennwort eines Mitarbeiters geändert",
    AuditTag.STAFF_PASSWORD_RESET: "Kennwort eines Mitarbeiters zurückgesetzt",
    AuditTag.PRACTICE_CREATE: "Betriebsstätte angelegt",
    AuditTag.PRACTICE_ACTIVITY_END: "Ende der Tätigkeit erfasst",
    AuditTag.PRACTICE_TERMS_ACCEPT: "Nutzungsbedingungen angenommen",
    AuditTag.PRACTICE_ACTIVATE: "Betriebsstätte freigeschaltet",
    AuditTag.PRACTICE_LOCK: "Betriebsstätte gesperrt",
    AuditTag.PRACTICE_LOCK_AUTO: "Betriebsstätte nach Fristablauf gesperrt",
    AuditTag.PRACTICE_UNLOCK: "Betriebsstätte entsperrt",
    AuditTag.PRACTICE_TERMINATE: "Kündigung erfasst",
    AuditTag.EXCEPTION_GRANT: "Ausnahme von der automatischen Sperre erteilt",
    AuditTag.EXCEPTION_END: "Ausnahme beendet",
    AuditTag.USER_CREATE: "Benutzer angelegt",
    AuditTag.USER_PASSWORD_MIGRATE: "Kennwort aus dem Vorgängersystem übernommen",
    AuditTag.USER_PASSWORD_POLICY_CHECK: "übernommenes Kennwort gegen die Richtlinie geprüft",
    AuditTag.USER_ACTIVATE: "Benutzer freigeschaltet (erste Anmeldung)",
    AuditTag.USER_LOCK: "Benutzer gesperrt",
    AuditTag.USER_UNLOCK: "Benutzer entsperrt",
    AuditTag.USER_THROTTLE: "Benutzer vorübergehend gesperrt (Fehlversuche)",
    AuditTag.USER_PASSWORD_CHANGE: "Kennwort geändert",
    AuditTag.USER_PASSWORD_REHASH: "Kennwort-Hash erneuert",
    AuditTag.USER_PASSWORD_ISSUE: "Kennwort ausgegeben (Brief)",
    AuditTag.USER_PASSWORD_REVOKE: "ausgegebenes Kennwort widerrufen",
    AuditTag.USER_PASSWORD_REPLACE: "neues Kennwort erstmals verwendet",
    AuditTag.NAS_CLIENT_CREATE: "VPN-Konzentrator (NAS) angelegt",
    AuditTag.NAS_CLIENT_SECRET: "Geheimnis eines NAS geändert",
    AuditTag.NAS_CLIENT_DISABLE: "NAS deaktiviert",
    AuditTag.NAS_CLIENT_ENABLE: "NAS aktiviert",
    AuditTag.NAS_CLIENT_CHANGE: "Einstellungen eines NAS geändert",
    AuditTag.PRACTICE_TERMINATION_CORRECT: "Kündigung berichtigt",
    AuditTag.PRACTICE_TERMINATION_WITHDRAW: "Kündigung zurückgenommen",
    AuditTag.PRACTICE_REACTIVATE: "Betriebsstätte nimmt wieder teil",
    AuditTag.TOKEN_UNLOCK: "Yubikey entsperrt (Fehlalarm)",
    AuditTag.FEE_OWE: "Verlustgebühr fällig",
    AuditTag.FEE_INVOICE: "Verlustgebühr in Rechnung gestellt",
    AuditTag.FEE_PAY: "Verlustgebühr bezahlt",
    AuditTag.FEE_WAIVE: "Verlustgebühr erlassen",
    AuditTag.PROFILE_SET: "Zugangsprofil gespeichert",
    AuditTag.API_CLIENT_CREATE: "API-Client angelegt",
    AuditTag.API_CLIENT_REGENERATE: "neuer Schlüssel für API-Client",
    AuditTag.API_CLIENT_DISABLE: "API-Client deaktiviert",
    AuditTag.API_CLIENT_ENABLE: "API-Client aktiviert",
    AuditTag.VPN_DISCONNECT: "VPN-Sitzung getrennt (Ergebnis)",
    AuditTag.VPN_DISCONNECT_REQUEST: "Trennung einer VPN-Sitzung angefordert",
    AuditTag.REQUEST_FILE: "Anfrage eingegangen",
    AuditTag.REQUEST_VERIFY: "Anfrage bestätigt (Rückruf)",
    AuditTag.REQUEST_FULFIL: "Anfrage erledigt",
    AuditTag.REQUEST_REJECT: "Anfrage abgelehnt",
    AuditTag.TOKEN_LOCK: "Yubikey gesperrt",
    AuditTag.TOKEN_IMPORT: "Yubikeys importiert",
    AuditTag.TOKEN_ASSIGN: "Yubikey zugewiesen",
    AuditTag.TOKEN_ASSIGN_STAFF: "Yubikey an Mitarbeiter ausgegeben",
    AuditTag.TOKEN_ACTIVATE: "Yubikey erstmals verwendet",
    AuditTag.TOKEN_RESYNC: "Yubikey resynchronisiert",
    AuditTag.TOKEN_COUNTER_WARNING: "Zähler des Yubikeys nahe am Ende",
    AuditTag.TOKEN_LOSS: "Verlust des Yubikeys erfasst",
    AuditTag.TOKEN_RETIRE: "Yubikey ausgemustert",
    AuditTag.TOKEN_REPLACE: "Yubikey ersetzt",
    AuditTag.TOKEN_SHIP: "Yubikey versandt",
    AuditTag.TOKEN_RETURN: "Rückgabe des Yubikeys erfasst",
    AuditTag.TOKEN_REPROGRAM: "Yubikey neu programmiert im Lager",
    AuditTag.LETTER_QUEUE: "Brief vorgemerkt",
    AuditTag.LETTER_REPRINT: "Brief neu gedruckt",
    AuditTag.MAIL_RUN_PRODUCE: "Versandlauf erzeugt",
    AuditTag.MAIL_RUN_DISPATCH: "Versand bestätigt",
    AuditTag.MAIL_RUN_CANCEL: "Versandlauf storniert",
    AuditTag.LIFECYCLE_RUN: "nächtlicher Lauf",
    AuditTag.RETENTION_PURGE: "Verbindungsdaten nach Frist gelöscht",
    AuditTag.AUDIT_PURGE: "Protokolleinträge nach Frist gelöscht",
    AuditTag.MASTER_KEY_ROTATE: "Hauptschlüssel gewechselt",
    AuditTag.DATABASE_BACKUP: "Datensicherung erstellt",
    AuditTag.DATABASE_RESTORE: "Datensicherung zurückgespielt",
    AuditTag.WSAPI_CLIENT_CREATE: "Prüfdienst-Client angelegt",
    AuditTag.WSAPI_CLIENT_REGENERATE: "neuer Schlüssel für Prüfdienst-Client",
    AuditTag.WSAPI_CLIENT_DISABLE: "Prüfdienst-Client deaktiviert",
    AuditTag.WSAPI_CLIENT_ENABLE: "Prüfdienst-Client aktiviert",
    AuditTag.PRACTICE_EDIT: "Daten der Betriebsstätte geändert",
    AuditTag.PRACTICE_ACTIVITY_CLEAR: "Ende der Tätigkeit gestrichen",
    AuditTag.PRACTICE_TAKEOVER: "Praxis übernommen",
    AuditTag.TERMS_PUBLISH: "neue Version der Nutzungsbedingungen veröffentlicht",
    AuditTag.REGISTRY_IMPORT: "Arztregister eingelesen",
    AuditTag.USER_EDIT: "Daten des Benutzers geändert",
    AuditTag.USER_ACTIVITY_END: "Ende der Tätigkeit des Mitglieds erfasst",
    AuditTag.USER_ACTIVITY_CLEAR: "Ende der Tätigkeit des Mitglieds gestrichen",
    AuditTag.LETTER_RETURN: "Brief als unzustellbar zurückgekommen",
    AuditTag.AUDIT_KEY_ROTATE: "Signaturschlüssel des Protokolls gewechselt",
    AuditTag.AUDIT_EXPORT: "Revisionsprotokoll exportiert",
    AuditTag.PRIVACY_EXPORT: "Auskunft nach Art. 15 DSGVO erstellt",
}

SUBJECT_KIND_LABEL = {
    "practice": "Betriebsstätte",
    "user": "Benutzer",
    "token": "Yubikey",
    "staff": "Mitarbeiter",
    "request": "Anfrage",
    "mail_run": "Versandlauf",
    "letter": "Brief",
    "nas": "NAS",
    "api_client": "API-Client",
    "wsapi_client": "Prüfdienst-Client",
    "profile": "Zugangsprofil",
}

_SYSTEM_ACTOR = {
    "lifecycle": "nächtlicher Lauf",
    "radius": "RADIUS-Server",
    "authn": "Anmeldeprüfung",
    "otp": "Yubikey-Prüfung",
    "setup": "Einrichtung",
    "demo": "Demo-Einrichtung",
    "admin-anmeldung": "Admin-Anmeldung",
}


def tag_label(tag: str) -> str:
    try:
        return AUDIT_TAG_LABEL[AuditTag(tag)]
    except (ValueError, KeyError):
        return "anderer Vorgang"


def actor_label(kind: str, name: str) -> str:
    """Who acted: a staff member by username, the system by what it is."""
    if kind == ActorKind.STAFF:
        return name
    if kind == ActorKind.USER:
        return f"Benutzer {name}"
    if kind == ActorKind.API_CLIENT:
        return f"API-Client {name}"
    if name.startswith("cli:"):
        return f"Kommandozeile ({name[4:]})"
    return f"System: {_SYSTEM_ACTOR.get(name, name)}"


# --- the auth log -------------------------------------------------------------------------

CHANNEL_LABEL = {"radius": "VPN", "api": "Portal (API)", "self_service": "Selbstbedienung"}
OUTCOME_LABEL = {"accept": "angenommen", "reject": "abgelehnt", "challenge": "Rückfrage"}
OUTCOME_TONE = {"accept": "ok", "reject": "danger", "challenge": "warn"}

LOCK_CAUSE_LABEL = {
    LockCause.MANUAL: "Verstoß oder wichtiger Grund",
    LockCause.LOSS: "Verlust",
    LockCause.MISUSE: "Verdacht auf Missbrauch",
    LockCause.SELF_SERVICE: "Selbstsperre",
    LockCause.LIFECYCLE: "Ende der Tätigkeit",
    LockCause.TERMINATION: "Kündigung",
    LockCause.OBJECTION: "Widerspruch gegen Bedingungen",
    LockCause.REPLACED: "ersetzt",
    LockCause.THROTTLE: "Fehlversuche",
    LockCause.TAKEOVER: "Praxisübernahme",
}

AUTH_REASON_LABEL = {
    "ok": "Anmeldung in Ordnung",
    "password_changed": "Kennwort bei der Anmeldung geändert",
    "syntax": "Eingabe unlesbar (Benutzername, Kennwort oder Einmalkennwort)",
    "radius_attributes": "Anfrage des Konzentrators unvollständig oder widersprüchlich",
    "new_password_refused": "neues Kennwort abgelehnt (Richtlinie)",
    "source_throttled": "zu viele Fehlversuche von dieser Adresse",
    "key_throttled": "zu viele Fehlversuche mit diesem Yubikey",
    "password_only_throttled": "zu viele Fehlversuche ohne Yubikey von dieser Adresse",
    "user_unknown": "Benutzer unbekannt",
    "user_throttled": "vorübergehend gesperrt nach Fehlversuchen",
    "password_wrong": "Kennwort falsch",
    "method_chap": "Verfahren CHAP abgelehnt (nur PAP)",
    "method_mschap": "Verfahren MS-CHAP abgelehnt (nur PAP)",
    "method_mschapv2": "Verfahren MS-CHAPv2 abgelehnt (nur PAP)",
    "method_eap": "Verfahren EAP abgelehnt (nur PAP)",
    "key_of_other_practice": "Yubikey einer anderen Betriebsstätte",
    "initial_password_expired": "Erstkennwort abgelaufen",
    "password_expired": "Kennwort abgelaufen",
    "password_must_change": "Kennwort muss geändert werden",
    "password_weak": "übernommenes Kennwort verletzt die Richtlinie",
    "challenge_state_unknown": "Rückfrage abgelaufen oder unbekannt",
    "otp_malformed": "Einmalkennwort unlesbar",
    "key_unknown": "Yubikey unbekannt",
    "key_not_assigned": "Yubikey nicht ausgegeben (im Lager)",
    "key_returned": "Yubikey zurückgegeben",
    "key_retired": "Yubikey ausgemustert",
    "key_locked": "Yubikey gesperrt",
    "key_lost": "Yubikey als verloren gemeldet",
    "otp_invalid": "Einmalkennwort ungültig",
    "otp_replayed": "Einmalkennwort schon verwendet",
    "otp_replayed_request": "Anfrage wiederholt",
    "otp_delayed": "Einmalkennwort verspätet (möglicherweise weitergeleitet)",
    "backend_error": "interner Fehler (abgewiesen)",
}
_USER_STATE = {
    "pending": "wartet auf Freischaltung",
    "locked": "gesperrt",
    "revoked": "beendet",
    "active": "aktiv",
}
_USER_REASON = re.compile(r"user_(pending|locked|revoked|active)(?:_([a-z_]+))?")


def auth_reason_label(reason: str) -> str:
    """The auth log's reason in German ("Benutzer gesperrt (Verlust)")."""
    if reason in AUTH_REASON_LABEL:
        return AUTH_REASON_LABEL[reason]
    matched = _USER_REASON.fullmatch(reason)
    if matched:
        text = f"Benutzer {_USER_STATE[matched.group(1)]}"
        cause = matched.group(2)
        if cause and cause in set(LockCause):
            text += f" ({LOCK_CAUSE_LABEL[LockCause(cause)]})"
        return text
    return "anderer Grund"


def auth_reason_known(reason: str) -> bool:
    return auth_reason_label(reason) != "anderer Grund"


# --- an audit entry's data ----------------------------------------------------------------

DATA_KEY_LABEL = {
    "accepted_on": "angenommen am",
    "address": "Adresse",
    "after": "nachher",
    "allow_missing_message_authenticator": "Message-Authenticator darf fehlen",
    "anchor": "Kette beginnt bei",
    "before": "vorher",
    "bsnr": "BSNR",
    "by": "durch",
    "by_kind": "nach Art",
    "bytes": "Bytes",
    "carried": "übernommen",
    "cause": "Anlass",
    "channel": "Weg",
    "city": "Ort",
    "coa_port": "CoA-Port",
    "condition": "Zustand",
    "decision_ref": "Aktenzeichen",
    "decided_by": "entschieden von",
    "dispatched_on": "versandt am",
    "ended_on": "Ende am",
    "entries": "Einträge",
    "expires_at": "gültig bis",
    "failures": "Fehlversuche",
    "fee_cents": "Kosten",
    "fee": "Gebühr Nr.",
    "amount_cents": "Betrag",
    "proxy": "RADIUS-Proxy",
    "tls_fingerprint": "TLS-Zertifikat (SHA-256)",
    "terms_version": "Version der Nutzungsbedingungen",
    "lock_lifted": "Sperre aufgehoben",
    "file": "Datei",
    "from": "von",
    "keys_retired": "ausgemusterte Yubikeys",
    "kind": "Art",
    "known_practice": "bekannte Betriebsstätte",
    "lanr": "LANR",
    "last_day": "letzter Tag",
    "letter": "Brief",
    "letters": "Briefe",
    "limit": "Grenze",
    "locked": "gesperrt",
    "mail_run": "Versandlauf",
    "name": "Name",
    "nas": "NAS",
    "note": "Vermerk",
    "notice_date": "Eingang der Kündigung",
    "notices": "Hinweisbriefe",
    "now": "Zeitpunkt",
    "oath_hotp": "OATH-HOTP",
    "old_stops": "altes endet",
    "older_than_days": "älter als (Tage)",
    "policy": "Richtlinie",
    "previous": "vorher",
    "public_id": "öffentliche Kennung",
    "reason": "Grund",
    "received_on": "eingegangen am",
    "recorded_before": "erfasst vor",
    "reminders": "Erinnerungen",
    "remote_validation": "externe Prüfung",
    "replaced_by": "ersetzt durch",
    "replaces": "ersetzt",
    "require_otp": "OTP Pflicht",
    "require_signature": "Signatur Pflicht",
    "result": "Ergebnis",
    "revision": "Schema-Version",
    "role": "Rolle",
    "seconds": "Sekunden",
    "serials": "Seriennummern",
    "session": "Sitzung",
    "sessions_ended": "beendete Sitzungen",
    "staff": "Mitarbeiter",
    "step": "Schritt",
    "to": "bis",
    "until": "bis",
    "upcoming": "anstehend",
    "usage_counter": "Zählerstand",
    "version": "Version",
    "was": "war",
    "why": "warum",
    "yubico_otp": "Yubico-OTP",
    "requested_date": "gewünschtes Ende",
    "serial": "Seriennummer",
    "username": "Benutzer",
    "status": "Status",
    "count": "Anzahl",
    "total": "insgesamt",
    "reprogrammed": "neu programmiert",
    "at_once": "sofort",
    "on_first_use": "bei erster Nutzung",
    "users": "Benutzer",
    "tokens": "Yubikeys",
    "practices": "Betriebsstätten",
    "changes": "Änderungen",
    "returned_on": "zurück am",
    "resend": "erneut gesendet als",
    "on": "am",
    "previous_name": "bisheriger Name",
    "new_name": "neuer Name",
    "successor_bsnr": "BSNR des Nachfolgers",
    "ended": "beendet",
    "cleared": "Termine gestrichen",
    "new_users": "neue Benutzer",
    "practices_created": "Betriebsstätten neu",
    "practices_changed": "Betriebsstätten geändert",
    "members_created": "Mitglieder neu",
    "members_changed": "Mitglieder geändert",
    "skipped": "übersprungen",
    "effective_on": "gilt ab",
    "accept_by": "anzunehmen bis",
    "subject": "betrifft",
    "by_actor": "von",
    "format": "Format",
    "old_public_key": "alter öffentlicher Schlüssel",
    "new_public_key": "neuer öffentlicher Schlüssel",
    "source": "Quelle",
}

# Values that are codes, by key: shown in German.
_VALUE_LABEL: dict[str, Mapping[str, str]] = {
    "cause": {cause.value: label for cause, label in LOCK_CAUSE_LABEL.items()},
    "by": {
        "member": "Praxis oder Dritter",
        "association": "KVSA",
        "extraordinary": "außerordentlich",
    },
    "channel": {
        "paper": "Teilnahmeerklärung (Papier)",
        "portal": "Portal",
        **CHANNEL_LABEL,
    },
    "condition": {"good": "gut", "damaged": "beschädigt"},
    "role": {"admin": "Administration", "helpdesk": "Helpdesk", "auditor": "Revision"},
    "result": {
        "ack": "getrennt",
        "nak": "vom Konzentrator abgelehnt",
        "timeout": "keine Antwort",
        "no_coa_port": "nicht möglich: kein CoA-Port",
        "sending": "wird gesendet",
    },
    "why": {"lost": "Verlust", "defective": "defekt", "takeover": "Übernahme"},
    "old_stops": {"on_first_use": "bei erster Nutzung des neuen", "at_once": "sofort"},
    "step": {
        "password": "Kennwort",
        "code": "zweiter Faktor",
        "enrol": "Einrichtung",
        "password_change": "Kennwortänderung",
        "verify": "bestätigt",
        "fulfil": "erledigt",
        "reject": "abgelehnt",
    },
    "reason": {
        "unknown_account": "unbekanntes Konto",
        "inactive": "Konto deaktiviert",
        "password_wrong": "Kennwort falsch",
        "throttled": "zu viele Versuche",
        "enrolment_code_wrong": "Einrichtungscode falsch oder abgelaufen",
        "code_wrong": "Code falsch",
        "code_malformed": "Code unlesbar",
        "no_app": "keine App eingerichtet",
        "old_password_wrong": "bisheriges Kennwort falsch",
    },
    "kind": {
        "member": "Mitglied",
        "staff": "Praxispersonal",
        "third_party": "Dritter",
        "practice_access": "Praxiszugang",
        "key": "Begleitschreiben (Yubikey)",
        "credentials": "Zugangsdaten",
        "new_password": "neues Kennwort",
        "lock": "Sperrbrief",
        "loss_confirmation": "Verlustbestätigung",
        "lock_notice": "Hinweis vor Sperre",
        "return_reminder": "Rückgabe-Erinnerung",
        "key_lost": "Yubikey verloren",
        "key_defective": "Yubikey defekt",
        "resync": "Resynchronisierung",
        "unlock": "Entsperrung",
        "new_user": "neuer Benutzer",
        "end_of_access": "Zugang beenden",
        "self_lock": "Selbstsperre",
        "yubico_otp": "Yubikey",
        "oath_hotp": "OATH-HOTP",
        "totp": "TOTP",
    },
}
# A staff member's Yubikey refused at sign-in: "yubikey_" and the OTP check's reason.
_VALUE_LABEL["reason"] = {
    **_VALUE_LABEL["reason"],
    "yubikey_not_own": "Yubikey gehört nicht zu diesem Konto",
    **{f"yubikey_{code}": f"Yubikey: {label}" for code, label in AUTH_REASON_LABEL.items()},
}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass(frozen=True)
class Datum:
    label: str
    value: str
    key: str  # the technical name, shown small beside an unknown label


def _value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if value is None:
        return "–"
    if isinstance(value, int) and key in ("fee_cents", "amount_cents"):
        return euro(value)
    if isinstance(value, list):
        return ", ".join(_value(key, item) for item in value) or "–"
    if isinstance(value, dict):
        if key == "changes":  # an edit: field by field, old → new
            return "; ".join(change_lines(value))
        if key == "by_kind":  # letters counted by their kind
            kinds = _VALUE_LABEL["kind"]
            return "; ".join(f"{kinds.get(k, k)}: {_value(k, v)}" for k, v in value.items())
        return "; ".join(f"{d.label}: {d.value}" for d in data_items(value))
    text = str(value)
    labels = _VALUE_LABEL.get(key)
    if labels is not None and text in labels:
        return labels[text]
    if _INSTANT.match(text):
        try:
            return f"{datetime.fromisoformat(text).astimezone(BERLIN):%d.%m.%Y %H:%M}"
        except ValueError:
            return text
    if _DAY.fullmatch(text):
        return f"{date.fromisoformat(text):%d.%m.%Y}"
    return text


def data_items(data: Mapping[str, Any]) -> list[Datum]:
    return [
        Datum(DATA_KEY_LABEL.get(key, "Angabe"), _value(key, value), key)
        for key, value in data.items()
    ]


def entry_data(entry: AuditEntry) -> list[Datum]:
    """An audit entry's data as German label and value (its JSON is what is hashed)."""
    try:
        data = json.loads(entry.data or "{}")
    except ValueError:
        return [Datum("Daten", entry.data, "data")]
    return data_items(data) if isinstance(data, dict) else [Datum("Daten", str(data), "data")]


def unknown_keys(entries: Iterable[AuditEntry]) -> set[str]:
    """Data keys without a German label (a test keeps this empty)."""
    return {d.key for e in entries for d in entry_data(e) if d.key not in DATA_KEY_LABEL}
