"""Access reports (Art. 15 DSGVO) from the user and practice pages: admins download the
same report as ``flexnet privacy export``, as PDF or JSON; each is audited."""

from __future__ import annotations

from flask import Response, abort, g, request
from flask.typing import ResponseReturnValue

from flexnet.db import utcnow
from flexnet.errors import NotFoundError, ValidationError
from flexnet.ops import privacy, privacypdf
from flexnet.provisioning import mailruns
from flexnet.web import state
from flexnet.web.admin import ADMIN, ButtonForm, allowed, blueprint


@blueprint.post("/users/<username>/privacy")
@allowed(ADMIN)
def privacy_user(username: str) -> ResponseReturnValue:
    return _download("user", username)


@blueprint.post("/practices/<bsnr>/privacy")
@allowed(ADMIN)
def privacy_practice(bsnr: str) -> ResponseReturnValue:
    return _download("practice", bsnr)


def _download(kind: str, key: str) -> ResponseReturnValue:
    as_pdf = request.form.get("format") == "pdf"
    if not ButtonForm().validate_on_submit() or request.form.get("format") not in ("pdf", "json"):
        abort(400)
    settings = state().settings
    with state().database.session() as db:
        try:
            if kind == "user":
                report = privacy.for_user(db, key, actor=g.staff.actor, now=utcnow())
            else:
                report = privacy.for_practice(db, key, actor=g.staff.actor, now=utcnow())
        except (NotFoundError, ValidationError):
            abort(404)
        content = (
            privacypdf.render(report, mailruns.templates_for(settings))
            if as_pdf
            else report.as_json()
        )
    name = f"auskunft-{report.key}.{'pdf' if as_pdf else 'json'}"
    return Response(
        content,
        mimetype="application/pdf" if as_pdf else "application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
