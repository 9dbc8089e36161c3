"""``/admin``: the IT staff's web UI. It calls the same services as the CLI.

Who is signed in comes from a server-side staff session (``flexnet.staff.signin``), found
through the ``__Host-`` cookie by flask-login's request loader on every request; Flask's
own signed cookie is not used for it, so a session ends on the server for good. Every
view states the roles that may use it (``@allowed``); the route table test walks them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError as FieldError

from flexnet import labels, loglabels, textrules
from flexnet.accounts.practices import get_practice
from flexnet.audit import Actor
from flexnet.db import utcnow
from flexnet.errors import FlexnetError, NotFoundError, ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import StaffRole
from flexnet.provisioning import mailruns
from flexnet.staff import signin
from flexnet.web import state
from flexnet.web.forms import NOBODY

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

ALL_ROLES = frozenset(StaffRole)
HELPDESK = frozenset({StaffRole.ADMIN, StaffRole.HELPDESK})
ADMIN = frozenset({StaffRole.ADMIN})
ROLE_LABELS = {
    StaffRole.ADMIN: "Administration",
    StaffRole.HELPDESK: "Helpdesk",
    StaffRole.AUDITOR: "Revision (nur lesen)",
}
# Endpoint → roles, filled by @allowed; tests check every route for every role with it.
ROUTE_ROLES: dict[str, frozenset[StaffRole]] = {}


@dataclass(frozen=True)
class StaffPrincipal(UserMixin):  # type: ignore[misc]  # flask-login ships no types
    """The signed-in staff member, detached from any database session."""

    session_id: int
    staff_id: int
    username: str
    name: str | None
    role: StaffRole
    verified: bool  # second factor passed in this session
    must_change: bool  # the password someone else chose: changed before anything else

    def get_id(self) -> str:
        return str(self.session_id)

    @property
    def actor(self) -> Actor:
        return Actor.staff(self.username)


def cookie_name() -> str:
    # __Host-: Secure, Path=/ and no Domain, so no subdomain can set or read it. A plain
    # http://127.0.0.1 (make run) cannot use the prefix: browsers refuse it without TLS.
    return "__Host-flexnet-admin" if state().settings.cookie_secure else "flexnet-admin"


def _load_from_cookie(_request: Any) -> StaffPrincipal | None:
    token = request.cookies.get(cookie_name())
    if not token:
        return None
    with state().database.session() as db:
        record = signin.resume(db, token, now=utcnow())
        if record is None:
            g.staff_cookie_stale = True
            g.staff_session_ended = signin.end_reason_of(db, token)
            return None
        staff = record.staff
        return StaffPrincipal(
            record.id,
            staff.id,
            staff.username,
            staff.name,
            staff.role,
            record.verified_at is not None,
            staff.must_change_password,
        )


def _return_to() -> str:
    """Where to go after signing in again: this page, or for a form sent after the
    session ended, the page the form was on (a form's own address may take POST only)."""
    if request.method == "GET":
        return request.full_path
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path.startswith("/admin/"):
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return url_for("admin.dashboard")


def principal() -> StaffPrincipal | None:
    """The staff member of this request, whether or not the second factor is passed."""
    user = current_user._get_current_object()  # flask-login's proxy: the object itself
    return user if isinstance(user, StaffPrincipal) else None


def allowed(
    roles: frozenset[StaffRole],
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., ResponseReturnValue]]:
    """Only a fully signed-in staff member in one of ``roles`` reaches the view."""

    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        ROUTE_ROLES[f"{blueprint.name}.{view.__name__}"] = roles

        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            staff = principal()
            if staff is None or not staff.verified:
                ended = g.get("staff_session_ended")
                return redirect(url_for("admin.login", next=_return_to(), ended=ended))
            g.staff = staff
            if staff.role not in roles:
                abort(403)
            if staff.must_change and view.__name__ != "password":
                return redirect(url_for("admin.password", next=request.full_path))
            return view(*args, **kwargs)

        return wrapped

    return decorate


class ButtonForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    """A button that changes something: the CSRF token only."""


F = TypeVar("F", bound=FlaskForm)


def blank(form_class: type[F], **data: Any) -> F:
    """A form showing its defaults (and ``data``), never what this request submitted.

    Flask-WTF binds every form it builds to the submitted fields of the same names; on a
    page with several forms only the form that was submitted may be, or the others show
    (and on their next submission send) another form's input.
    """
    form: F = form_class(formdata=None, **data)
    return form


def person_choices(usernames: Iterable[str]) -> list[SelectChoice]:
    """The choices of a select of people: nobody first, then ``usernames``."""
    return [NOBODY, *(SelectChoice(name, name) for name in usernames)]


def named_person(named: str, usernames: Collection[str]) -> str | None:
    """The one of ``usernames`` that the text ``named`` names (usernames separated by
    spaces, commas or semicolons, any case), or None if it names none or several."""
    found = {word.lower() for word in re.split(r"[\s,;]+", named) if word} & set(usernames)
    return found.pop() if len(found) == 1 else None


def practice_or_404(bsnr: str) -> str:
    """The practice's BSNR as stored, or 404 (also for a malformed BSNR)."""
    with state().database.reader() as db:
        try:
            return get_practice(db, bsnr).bsnr
        except (NotFoundError, ValidationError):
            abort(404)


Outcome = TypeVar("Outcome")
# The page again: the problems to show above the form (German), and the status.
Again = Callable[[list[str], int], ResponseReturnValue]


def submit(
    form: FlaskForm,
    act: Callable[[Session], Outcome],
    *,
    done: Callable[[Outcome], ResponseReturnValue],
    again: Again,
    invalid: str | None = None,
    extra_validators: Mapping[str, Sequence[Any]] | None = None,
) -> ResponseReturnValue:
    """Every admin form the one way. A submitted ``form`` is validated (with
    ``extra_validators``, e.g. a typed confirmation), ``act`` runs in one unit of work
    (committed when it returns, rolled back if it raises), and ``done`` answers with
    what it returned: flash and redirect (post/redirect/get), or a page showing a new
    key once. Otherwise the page comes ``again`` with the form as typed: for a form that
    does not validate with 400 (the fields show their messages, ``invalid`` is shown on
    pages whose form is not shown again), for a domain error with its German lines and
    the status its class carries (404, 409, …). A GET shows the page with status 200."""
    if not form.is_submitted():
        return again([], 200)
    if g.get("stale_form"):  # sent with a stale token: shown again as typed (web.errors)
        return again([], 400)
    if not form.validate(extra_validators=extra_validators):
        return again([invalid] if invalid else [], 400)
    try:
        with state().database.session() as db:
            outcome = act(db)
    except FlexnetError as error:
        return again(error.lines, error.status)
    return done(outcome)


def flash_and_redirect(message: str, target: str) -> BaseResponse:
    """Post/redirect/get: the message shows on the page the browser goes to."""
    flash(message)
    return redirect(target)


def typed(expected: str, message: str, *, any_case: bool = False) -> Callable[[Any, Any], None]:
    """A validator for a destructive action's confirmation: the field holds ``expected``
    (spaces around it ignored; with ``any_case`` in any case, as for a username)."""

    def check(_form: Any, field: Any) -> None:
        value = (field.data or "").strip()
        same = value.lower() == expected.lower() if any_case else value == expected
        if not same:
            raise FieldError(message)

    return check


def form_page(
    form: FlaskForm,
    template: str,
    act: Callable[[Session], tuple[str, str]],
    extra_validators: Mapping[str, Sequence[Any]] | None = None,
    **context: Any,
) -> ResponseReturnValue:
    """A page of one form (``submit``): ``act`` returns the message to flash and where
    to go; problems are shown above the form."""

    def again(problems: list[str], status: int) -> ResponseReturnValue:
        page = render_template(template, form=form, problems=problems, staff=g.staff, **context)
        return page, status

    return submit(
        form,
        act,
        done=lambda outcome: flash_and_redirect(*outcome),
        again=again,
        extra_validators=extra_validators,
    )


def dialog(
    form: FlaskForm,
    act: Callable[[Session], tuple[str, str]],
    *,
    title: str,
    fields: Sequence[str],
    button: str,
    back: str,
    intro: Sequence[str] = (),
    facts: Sequence[tuple[str, str]] = (),
    danger: bool = False,
    extra_validators: Mapping[str, Sequence[Any]] | None = None,
) -> ResponseReturnValue:
    """A page of one form for one action (``form_page``): a title, what it does, the
    fields, one button (red if it cannot be undone or hits others) and the way back."""
    return form_page(
        form,
        "admin/dialog.html",
        act,
        extra_validators,
        title=title,
        intro=intro,
        facts=facts,
        form_fields=[form[name] for name in fields],
        button=button,
        back=back,
        danger=danger,
    )


def confirm_first(
    *,
    title: str,
    lines: Sequence[str],
    button: str,
    back: str,
    warning: str | None = None,
) -> ResponseReturnValue | None:
    """What cannot be undone or hits others is asked once more: None when this POST
    carries the confirmation, else a page that repeats what was sent (hidden) with one red
    button. Works without script; the caller validated the form (and its token) first."""
    if request.form.get("confirmed") == "1":
        return None
    hidden = [
        (name, value)
        for name, value in request.form.items(multi=True)
        if name not in ("csrf_token", "confirmed")
    ]
    return render_template(
        "admin/confirm.html",
        title=title,
        lines=lines,
        warning=warning,
        hidden=hidden,
        action=request.path,
        button=button,
        back=back,
        staff=g.staff,
    )


def set_cookie(response: BaseResponse, token: str) -> None:
    response.set_cookie(
        cookie_name(),
        token,
        httponly=True,
        secure=state().settings.cookie_secure,
        samesite="Strict",
        path="/",
        max_age=int(signin.LIFETIME.total_seconds()),
    )


def clear_cookie(response: BaseResponse) -> None:
    response.delete_cookie(cookie_name(), path="/", secure=state().settings.cookie_secure)


@blueprint.app_template_filter("visible")
def visible(value: object) -> str:
    """Text from outside (usernames from RADIUS, request texts, audit data) with control
    and bidi characters shown as \\xNN instead of acting on the page; HTML is escaped by
    the templates as always (every ``{{ … }}`` does this too: ``web.shown``). CR LF is a
    line break (browsers send a text area's line breaks so); a CR alone is shown."""
    return textrules.visible("" if value is None else str(value).replace("\r\n", "\n"))


@blueprint.app_template_filter("berlin")
def berlin(value: datetime) -> str:
    return f"{value.astimezone(BERLIN):%d.%m.%Y %H:%M}"


@blueprint.app_template_filter("day")
def day(value: date) -> str:
    return f"{value:%d.%m.%Y}"


@blueprint.app_template_filter("number")
def number(value: int) -> str:
    """1.234 as Germans write it."""
    return f"{value:,}".replace(",", ".")


@blueprint.app_template_filter("tone")
def tone(value: object) -> str:
    """The badge colour of a state (``labels.TONE``)."""
    return labels.TONE.get(str(getattr(value, "value", value)), "")


@blueprint.app_template_filter("letter_ref")
def letter_ref(letter: Any) -> str:
    """A letter's number as printed and typed ("FN-000123")."""
    return mailruns.reference(letter)


@blueprint.context_processor
def _wording() -> dict[str, Any]:
    """The German wording of states and records, for every admin page."""
    return {"labels": labels, "loglabels": loglabels}


@blueprint.after_request
def _forget_stale_cookie(response: Response) -> Response:
    if g.get("staff_cookie_stale"):
        clear_cookie(response)
    return response


def init_app(app: Flask) -> None:
    # flask-login only finds the staff session; its remember cookie is never used (a
    # planted cookie of that name would make it skip the request loader), and its
    # template context would resume the session on public pages too.
    app.config["REMEMBER_COOKIE_NAME"] = "__Host-flexnet-admin-unused"
    manager = LoginManager()
    manager.request_loader(_load_from_cookie)
    manager.init_app(app, add_context_processor=False)
    app.register_blueprint(blueprint)


# The views register themselves on the blueprint.
from flexnet.web.admin import (  # noqa: E402, F401
    auditpages,
    auth,
    changes,
    clients,
    feepages,
    keyactions,
    keypages,
    letterpages,
    lists,
    locking,
    logins,
    mailrunpages,
    navigation,
    onboarding,
    pages,
    privacypages,
    registrypage,
    reportpages,
    requestpages,
    staffaccounts,
    takeoverpage,
    terminations,
    termspages,
    undoing,
)
