"""Clients of flexnet (admin only): the VPN concentrators (NAS), the access profiles
they apply, the systems using the REST API and those using the Yubico validation
protocol. Secrets typed here are stored encrypted; keys made here are shown once, on
the answer page, and never again. A client's secret or key is replaced, or the client
switched off and on, by typing its name: a slip of the mouse must not cut off a
concentrator or a portal."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import g, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from flexnet import labels
from flexnet.clients import apiclients, nas, profiles
from flexnet.clients.switch import Switch
from flexnet.db import utcnow
from flexnet.models import AccessProfile, ApiClient, NasClient, StaffRole, WsapiClient
from flexnet.otp import wsapi
from flexnet.radius.packets import load_dictionary
from flexnet.web import state
from flexnet.web.admin import (
    ADMIN,
    ROLE_LABELS,
    Again,
    allowed,
    blank,
    blueprint,
    flash_and_redirect,
    submit,
)
from flexnet.web.errors import reshows_stale_form

REQUIRED = "Bitte ausfüllen."


class _Section(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    """One of the page's forms. Its fields are named and identified with the section's
    prefix (``nas-name``): five forms on one page share no field name and no id."""

    section = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix=self.section, **kwargs)


class NasForm(_Section):
    section = "nas"
    name = StringField("Name", validators=[DataRequired(REQUIRED), Length(max=100)])
    address = StringField("Adresse oder Netz (IP/CIDR)", validators=[DataRequired(REQUIRED)])
    secret = PasswordField("Gemeinsames Geheimnis", validators=[DataRequired(REQUIRED)])
    allow_missing_ma = BooleanField("Message-Authenticator darf fehlen (nicht empfohlen)")


class ProfileForm(_Section):
    section = "profile"
    name = StringField("Profilname", validators=[DataRequired(REQUIRED), Length(max=64)])
    description = StringField("Beschreibung", validators=[Optional(), Length(max=200)])
    attributes = TextAreaField(
        "Antwort-Attribute, eines je Zeile: Attribut=Wert (z. B. Filter-Id=praxis)",
        validators=[Length(max=4000)],
    )


class ApiClientForm(_Section):
    section = "api"
    name = StringField("Name", validators=[DataRequired(REQUIRED), Length(max=100)])
    role = SelectField(
        "Rolle",
        choices=[
            SelectChoice("", "nur Anmeldungen prüfen (/auth)"),
            *[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()],
        ],
        validators=[Optional()],
    )
    require_otp = BooleanField("Anfragen an /auth müssen ein Yubikey-OTP enthalten")


class WsapiForm(_Section):
    section = "wsapi"
    name = StringField("Name", validators=[DataRequired(REQUIRED), Length(max=100)])
    unsigned_allowed = BooleanField("Unsignierte Anfragen zulassen (nicht empfohlen)")


class NameForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Name zur Bestätigung", validators=[DataRequired(REQUIRED)])


class NasSecretForm(_Section):
    section = "secret"
    name = StringField("Name des NAS", validators=[DataRequired(REQUIRED), Length(max=100)])
    secret = PasswordField("Neues gemeinsames Geheimnis", validators=[DataRequired(REQUIRED)])
    repeat = PasswordField(
        "Neues Geheimnis wiederholen",
        validators=[
            DataRequired(REQUIRED),
            EqualTo("secret", "Die Eingaben stimmen nicht überein."),
        ],
    )


class NasChangeForm(_Section):
    section = "change"
    name = StringField("Name des NAS", validators=[DataRequired(REQUIRED), Length(max=100)])
    address = StringField("Neue Adresse oder neues Netz (leer: bleibt)", validators=[Optional()])
    coa_port = StringField(
        "CoA-Port für Disconnect-Requests (leer: bleibt; 0: keiner)",
        validators=[
            Optional(),
            Regexp(r"^\s*\d{1,5}\s*$", message="Bitte eine Zahl von 0 bis 65535."),
        ],
    )
    allow_missing_ma = SelectField(
        "Message-Authenticator",
        choices=[
            SelectChoice("", "bleibt"),
            SelectChoice("no", "Pflicht"),
            SelectChoice("yes", "darf fehlen (nur für alte NAS, nicht empfohlen)"),
        ],
        validators=[Optional()],
    )
    proxy = SelectField(
        "Art des Clients",
        choices=[
            SelectChoice("", "bleibt"),
            SelectChoice("no", "ein Konzentrator"),
            SelectChoice("yes", "RADIUS-Proxy vor mehreren Konzentratoren"),
        ],
        validators=[Optional()],
    )
    tls_fingerprint = StringField(
        "TLS-Client-Zertifikat, SHA-256-Fingerabdruck (leer: bleibt)",
        validators=[Optional(), Length(max=200)],
    )
    tls_remove = BooleanField("hinterlegtes TLS-Zertifikat entfernen (kein RADIUS über TLS mehr)")

    def validate_tls_remove(self, field: BooleanField) -> None:
        if field.data and (self.tls_fingerprint.data or "").strip():
            raise ValidationError("Bitte entweder einen Fingerabdruck angeben oder entfernen.")


# What switching a client off or on does, as staff read it after the click.
_SWITCHES: dict[str, tuple[Switch, str, str]] = {
    "nas": (
        nas.set_active,
        "NAS {name} deaktiviert; die RADIUS-Server verwerfen seine Pakete binnen einer Minute.",
        "NAS {name} wieder aktiv; die RADIUS-Server nehmen ihn binnen einer Minute an.",
    ),
    "api": (
        apiclients.set_active,
        "API-Client {name} deaktiviert; sein Schlüssel wird ab sofort abgewiesen.",
        "API-Client {name} wieder aktiv.",
    ),
    "wsapi": (
        wsapi.set_active,
        "Prüfdienst-Client {name} deaktiviert; seine Anfragen erhalten NO_SUCH_CLIENT.",
        "Prüfdienst-Client {name} wieder aktiv.",
    ),
}


def _page(
    *,
    shown_key: str | None = None,
    problems: Sequence[str] = (),
    status: int = 200,
    submitted: Mapping[str, FlaskForm] | None = None,
) -> ResponseReturnValue:
    with state().database.reader() as db:
        listing = {
            "nas_clients": list(db.scalars(select(NasClient).order_by(NasClient.name))),
            "profiles": list(db.scalars(select(AccessProfile).order_by(AccessProfile.name))),
            "api_clients": list(db.scalars(select(ApiClient).order_by(ApiClient.name))),
            "wsapi_clients": list(db.scalars(select(WsapiClient).order_by(WsapiClient.name))),
        }
    form_set = {
        "nas_form": blank(NasForm),
        "profile_form": blank(ProfileForm),
        "api_form": blank(ApiClientForm),
        "wsapi_form": blank(WsapiForm),
        "secret_form": blank(NasSecretForm),
        "change_form": blank(NasChangeForm),
        **(submitted or {}),  # the one submitted, when it is shown again as typed
    }
    response = render_template(
        "admin/clients.html",
        shown_key=shown_key,
        problems=problems,
        role_labels=ROLE_LABELS,
        staff=g.staff,
        **listing,
        **form_set,
    )
    return response, status, {"Cache-Control": "no-store"}


def _again(**submitted: FlaskForm) -> Again:
    """The page again with the submitted form (``nas_form=…``) as typed."""
    return lambda problems, status: _page(problems=problems, status=status, submitted=submitted)


def _listed(message: str) -> ResponseReturnValue:
    return flash_and_redirect(message, url_for("admin.clients"))


def _key_shown(key: str) -> ResponseReturnValue:
    """A new key on this answer only (no-store), never again."""
    return _page(shown_key=key)


@blueprint.get("/clients")
@allowed(ADMIN)
def clients() -> ResponseReturnValue:
    return _page()


@blueprint.post("/clients/nas")
@reshows_stale_form
@allowed(ADMIN)
def clients_nas() -> ResponseReturnValue:
    form = NasForm()
    flexnet = state()
    return submit(
        form,
        lambda db: nas.add_nas(
            db,
            name=form.name.data or "",
            address=form.address.data or "",
            secret=form.secret.data or "",
            allow_missing_message_authenticator=form.allow_missing_ma.data,
            box=flexnet.secret_box,
            actor=g.staff.actor,
            now=utcnow(),
        ),
        done=lambda added: _listed(
            f"NAS {added.name} angelegt; die RADIUS-Server laden ihn binnen einer Minute."
        ),
        again=_again(nas_form=form),
    )


@blueprint.post("/clients/profile")
@reshows_stale_form
@allowed(ADMIN)
def clients_profile() -> ResponseReturnValue:
    """Create a profile or replace its reply attributes (the RADIUS servers take it up
    within 30 seconds)."""
    form = ProfileForm()

    def act(db: Session) -> str:
        lines = [line for line in (form.attributes.data or "").splitlines() if line.strip()]
        profile = profiles.set_profile(
            db,
            name=form.name.data or "",
            attributes=profiles.parse_attributes(lines, load_dictionary()),
            description=form.description.data or None,  # empty: keep it (none for a new one)
            actor=g.staff.actor,
            now=utcnow(),
        )
        return profile.name

    return submit(
        form,
        act,
        done=lambda name: _listed(
            f"Profil {name} gespeichert; die RADIUS-Server übernehmen es binnen 30 s."
        ),
        again=_again(profile_form=form),
    )


@blueprint.post("/clients/api")
@reshows_stale_form
@allowed(ADMIN)
def clients_api() -> ResponseReturnValue:
    form = ApiClientForm()
    return submit(
        form,
        lambda db: apiclients.add_client(
            db,
            name=form.name.data or "",
            role=StaffRole(form.role.data) if form.role.data else None,
            require_otp=form.require_otp.data,
            actor=g.staff.actor,
            now=utcnow(),
        )[1],
        done=_key_shown,
        again=_again(api_form=form),
    )


@blueprint.post("/clients/api/regenerate")
@reshows_stale_form
@allowed(ADMIN)
def clients_api_regenerate() -> ResponseReturnValue:
    """A new key, shown once; the old one is refused at once (MD § 6(4))."""

    def regenerate(db: Session, name: str) -> str:
        return apiclients.regenerate_key(db, name=name, actor=g.staff.actor, now=utcnow())

    return _named(regenerate, done=_key_shown)


@blueprint.post("/clients/wsapi")
@reshows_stale_form
@allowed(ADMIN)
def clients_wsapi() -> ResponseReturnValue:
    form = WsapiForm()

    def act(db: Session) -> str:
        client, key = wsapi.add_client(
            db,
            name=form.name.data or "",
            require_signature=not form.unsigned_allowed.data,
            box=state().secret_box,
            actor=g.staff.actor,
            now=utcnow(),
        )
        return f"id={client.id} key={key}"

    return submit(form, act, done=_key_shown, again=_again(wsapi_form=form))


@blueprint.post("/clients/wsapi/regenerate")
@reshows_stale_form
@allowed(ADMIN)
def clients_wsapi_regenerate() -> ResponseReturnValue:
    """A new key, shown once with the id the portal sends; the old one is refused at once."""

    def regenerate(db: Session, name: str) -> str:
        client, key = wsapi.regenerate_key(
            db, name=name, box=state().secret_box, actor=g.staff.actor, now=utcnow()
        )
        return f"id={client.id} key={key}"

    return _named(regenerate, done=_key_shown)


@blueprint.post("/clients/nas/secret")
@reshows_stale_form
@allowed(ADMIN)
def clients_nas_secret() -> ResponseReturnValue:
    """A new shared secret, e.g. when the old one may have leaked (it decrypts recorded
    passwords and OTPs). Typed twice: a typo would cut the concentrator off."""
    form = NasSecretForm()
    flexnet = state()
    return submit(
        form,
        lambda db: nas.set_secret(
            db,
            name=form.name.data or "",
            secret=form.secret.data or "",
            box=flexnet.secret_box,
            actor=g.staff.actor,
            now=utcnow(),
        ),
        done=lambda changed: _listed(
            f"Geheimnis von NAS {changed.name} geändert; die RADIUS-Server verwenden es binnen "
            "einer Minute. Bitte jetzt auch am Konzentrator eintragen."
        ),
        again=_again(secret_form=form),
    )


@blueprint.post("/clients/nas/change")
@allowed(ADMIN)
def clients_nas_change() -> ResponseReturnValue:
    """Change a NAS in place: address, Message-Authenticator rule, CoA port, proxy or
    concentrator, its pinned TLS client certificate (audited)."""
    form = NasChangeForm()
    rule, proxy = form.allow_missing_ma.data, form.proxy.data
    fingerprint = (form.tls_fingerprint.data or "").strip()
    return submit(
        form,
        lambda db: nas.change_nas(
            db,
            name=form.name.data or "",
            actor=g.staff.actor,
            now=utcnow(),
            address=form.address.data.strip() if form.address.data else nas.KEEP,
            allow_missing_message_authenticator=rule == "yes" if rule else nas.KEEP,
            coa_port=int(form.coa_port.data) or None if form.coa_port.data else nas.KEEP,
            proxy=proxy == "yes" if proxy else nas.KEEP,
            tls_fingerprint=None if form.tls_remove.data else fingerprint or nas.KEEP,
        ),
        done=lambda changed: _listed(
            f"NAS {changed.name} geändert; die RADIUS-Server übernehmen es binnen einer Minute."
        ),
        again=_again(change_form=form),
    )


@blueprint.post("/clients/<any(nas, api, wsapi):kind>/<any(disable, enable):action>")
@reshows_stale_form
@allowed(ADMIN)
def clients_switch(kind: str, action: str) -> ResponseReturnValue:
    """Switch a client off (refused from then on, like an unknown one) or on again."""
    switch, disabled, enabled = _SWITCHES[kind]
    active = action == "enable"

    def act(db: Session, name: str) -> str:
        client = switch(db, name=name, active=active, actor=g.staff.actor, now=utcnow())
        return (enabled if active else disabled).format(name=client.name)

    return _named(act, done=_listed)


def _named(
    act: Callable[[Session, str], str], *, done: Callable[[str], ResponseReturnValue]
) -> ResponseReturnValue:
    """Run ``act`` on the client whose name was typed; ``done`` shows what it returns (a
    key on this answer only, or a message on the list it leads back to)."""
    form = NameForm()
    return submit(
        form,
        lambda db: act(db, form.name.data),
        done=done,
        again=_again(),
        invalid="Zur Bestätigung bitte den Namen des Clients eingeben.",
    )


@blueprint.get("/settings")
@allowed(ADMIN)
def settings_view() -> ResponseReturnValue:
    """The settings in force (from the environment, FLEXNET_*): read here, changed in the
    environment file and by a restart, so that every node runs with the same ones."""
    settings = state().settings
    policy, auth, letters = settings.password_policy, settings.auth, settings.letters
    rows = [
        ("Kennwort: Mindestlänge", f"{policy.min_length} Zeichen"),
        ("Kennwort: nicht wiederverwendbar", f"die letzten {policy.history}"),
        ("Kennwort: Mindeststärke (zxcvbn)", str(policy.min_strength)),
        ("Kennwort: Mindestalter", labels.duration(policy.min_age)),
        ("Kennwort: Gültigkeit", f"{auth.password_max_age_days} Tage"),
        ("Kennwort: Warnung vor Ablauf", f"{auth.password_warning_days} Tage"),
        ("Erstkennwort gültig", f"{auth.initial_password_days} Tage"),
        ("Fehlversuche bis zur vorübergehenden Sperre", str(auth.lockout_threshold)),
        ("Fehlversuche bis zur Sperre durch den IT-Service", str(auth.hard_lock_after)),
        (
            "Zugangsdaten-Brief frühestens",
            f"{letters.credentials_delay_days} Werktage nach dem Yubikey",
        ),
        ("Kostenersatz bei Verlust (§ 6.3)", labels.euro(letters.loss_fee_cents)),
        ("Briefvorlagen", str(letters.directory or "mitgeliefert (letters/)")),
        ("Sperre nach Ende der Tätigkeit", f"{settings.lock_after_quarters} Quartale (§ 10.3)"),
        ("Verbindungsdaten gelöscht nach", f"{settings.connection_log_days} Tagen"),
        ("Protokoll gelöscht nach", f"{settings.audit_retention_years} Jahren"),
        ("Erinnerung Yubikey-Rückgabe nach", f"{settings.return_reminder_days} Tagen"),
    ]
    return render_template("admin/settings.html", rows=rows, staff=g.staff)
