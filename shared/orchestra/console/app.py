"""The console's WSGI application (Flask, Jinja2 templates with autoescape on for everything).

Every page needs an authenticated principal (:mod:`orchestra.console.auth`); every change is a
POST carrying the principal's CSRF token. Every response carries the security headers below: no
script at all, styles only from the one stylesheet this app serves, no framing, no referrer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import flask
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from ..errors import (
    ApprovalRefused,
    ConfigError,
    IllegalTransition,
    InputError,
    NotFound,
    TransientError,
)
from ..models import RunStatus, TriggerKind, format_timestamp
from . import pages
from .auth import SESSION_COOKIE, Authenticator, LocalAuth, Principal, csrf_matches

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("orchestra.console")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_FORM_BYTES = 64 * 1024
PUBLIC_PATHS = ("/static/", "/login", "/favicon.ico")

STATUS_TONE = {
    RunStatus.succeeded: "ok",
    RunStatus.failed: "bad",
    RunStatus.rolled_back: "bad",
    RunStatus.skipped: "muted",
    RunStatus.awaiting_approval: "wait",
    RunStatus.awaiting_verification: "wait",
    RunStatus.running: "wait",
    RunStatus.queued: "muted",
}


def _when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    """JSON for people (the template escapes it like any text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _tone(status: str) -> str:
    text = str(status)
    if text in {"succeeded", "ok", "healthy", "closed", "approved", "accepted", "applied"}:
        return "ok"
    if text in {"failed", "rolled_back", "open", "unhealthy", "rejected", "expired"}:
        return "bad"
    if text in {"awaiting_approval", "running", "half_open", "degraded", "waiting_for_window", "requested"}:
        return "wait"
    return STATUS_TONE.get(RunStatus(text), "muted") if text in {s.value for s in RunStatus} else "muted"


def create_console(
    get_app: Callable[[], App],
    auth: Authenticator,
    *,
    allowed_hosts: frozenset[str] | None = None,
    secure_cookie: bool = False,
) -> flask.Flask:
    """The console. ``auth`` is a :class:`LocalAuth` (login URL + sessions) or an
    :class:`~orchestra.console.auth.IapAuth`; ``allowed_hosts`` (local: ``127.0.0.1:PORT``,
    ``localhost:PORT``) refuses other Host headers, against DNS rebinding."""
    web = flask.Flask(__name__, static_folder="static", template_folder="templates")
    web.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    web.jinja_env.autoescape = True
    web.jinja_env.filters["when"] = _when
    web.jinja_env.filters["tone"] = _tone
    web.jinja_env.filters["pretty"] = _pretty
    web.jinja_env.globals["run_statuses"] = [s.value for s in RunStatus]
    web.jinja_env.globals["trigger_kinds"] = [k.value for k in TriggerKind]
    local = auth if isinstance(auth, LocalAuth) else None

    def principal() -> Principal:
        found: Principal | None = flask.g.get("principal")
        if found is None:  # pragma: no cover - the before_request hook guarantees it
            flask.abort(401)
        return found

    def render(template: str, status: int = 200, **context: Any) -> flask.Response:
        who = flask.g.get("principal")
        body = flask.render_template(template, principal=who, path=flask.request.path, **context)
        return flask.Response(body, status=status, mimetype="text/html")

    def problem(status: int, title: str, message: str, where: str | None = None) -> flask.Response:
        return render("error.html", status=status, title=title, message=message, where=where)

    @web.before_request
    def _authenticate() -> flask.Response | None:
        if allowed_hosts is not None and flask.request.host not in allowed_hosts:
            return problem(400, "Unknown host", "this console answers only on the address it printed")
        if flask.request.path.startswith(PUBLIC_PATHS):
            return None
        found = auth.authenticate(flask.request)
        if found is None:
            if local is not None:
                message = "open the one-time login URL that `orchestra console` printed (each works once)"
            else:
                message = "no valid Identity-Aware Proxy assertion came with this request"
            return problem(401, "Sign-in required", message)
        flask.g.principal = found
        if flask.request.method not in ("GET", "HEAD"):
            if flask.request.method != "POST":
                return problem(405, "Method not allowed", "pages are read with GET and changed with POST")
            if not csrf_matches(found.csrf, flask.request.form.get("csrf")):
                return problem(
                    403, "Form refused", "the form's CSRF token is missing or wrong; reload the page"
                )
        return None

    @web.after_request
    def _headers(response: flask.Response) -> flask.Response:
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        if not flask.request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @web.errorhandler(InputError)
    def _input_error(exc: InputError) -> flask.Response:
        text = str(exc)
        prefix = f"{exc.where}: " if exc.where else ""
        message = text[len(prefix) :] if prefix and text.startswith(prefix) else text
        if isinstance(exc, ApprovalRefused):
            return problem(403, "Refused", message, exc.where)
        if isinstance(exc, NotFound):
            return problem(404, "Not found", message, exc.where)
        if isinstance(exc, IllegalTransition):
            return problem(409, "Not possible now", message, exc.where)
        return problem(400, "Bad request", message, exc.where)

    @web.errorhandler(TransientError)
    def _transient(exc: TransientError) -> flask.Response:
        log.warning("transient failure in the console: %s", exc)
        return problem(503, "Try again", "a dependency is unavailable for now (transient: safe to retry)")

    @web.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> flask.Response:
        return problem(exc.code or 500, exc.name, exc.description or exc.name)

    @web.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        if isinstance(exc, ConfigError):
            log.error("console configuration error: %s", exc)
        else:
            log.error("unexpected error in the console", exc_info=exc)
        return problem(500, "Server error", f"internal error ({type(exc).__name__}); see the server's logs")

    # ----------------------------------------------------------------------- sign-in

    @web.get("/login")
    def login() -> flask.Response:
        if local is None:
            return problem(404, "Not found", "sign-in happens at Identity-Aware Proxy")
        session_id = local.login(flask.request.args.get("token"))
        if session_id is None:
            return problem(401, "Login link refused", "this login link is unknown, expired or already used")
        response = flask.redirect("/", code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(local.session_ttl.total_seconds()),
            httponly=True,
            samesite="Strict",
            secure=secure_cookie,
            path="/",
        )
        return response

    @web.post("/logout")
    def logout() -> flask.Response:
        if local is not None:
            local.logout(flask.request.cookies.get(SESSION_COOKIE))
        response = problem(200, "Signed out", "start `orchestra console` again for a new login link")
        response.delete_cookie(SESSION_COOKIE, path="/", samesite="Strict", httponly=True)
        return response

    # ------------------------------------------------------------------------- pages

    @web.get("/")
    def overview() -> flask.Response:
        return render("overview.html", view=pages.overview(get_app()))

    @web.get("/runs")
    def runs() -> flask.Response:
        filters = pages.RunFilters.parse(dict(flask.request.args.items()))
        app = get_app()
        page = pages.runs_page(app, filters)
        next_link = "/runs?" + urlencode(filters.query(after=page.next)) if page.next else None
        first_link = "/runs?" + urlencode(filters.query(after=None)) if filters.after else None
        return render(
            "runs.html",
            page=page,
            filters=filters,
            tasks=app.registry.names(),
            environments=list(app.config.environments),
            next_link=next_link,
            first_link=first_link,
        )

    @web.get("/runs/<run_id>")
    def run(run_id: str) -> flask.Response:
        return render("run.html", detail=pages.run_detail(get_app(), run_id))

    @web.get("/approvals")
    def approvals() -> flask.Response:
        app = get_app()
        waiting = app.store.list_runs(status=RunStatus.awaiting_approval, limit=200)
        pending = [s for s in pages.subjects(app) if s.get("state") in pages.AWAITING_DECISION_STATES]
        done = flask.request.args.get("done")
        decided_id = flask.request.args.get("id")
        notice = None
        if done in {"approved", "rejected"} and decided_id:
            notice = f"{decided_id}: {done}"
        return render("approvals.html", runs=waiting, subjects=pending, notice=notice)

    @web.post("/approvals/<subject_id>")
    def decide(subject_id: str) -> flask.Response:
        form = flask.request.form
        decision = form.get("decision", "")
        pages.decide(get_app(), subject_id, decision, principal().identity, form.get("comment"))
        past = {"approve": "approved", "reject": "rejected"}.get(decision, "decided")
        return flask.redirect("/approvals?" + urlencode({"done": past, "id": subject_id}), code=303)

    @web.get("/deployments")
    def deployments() -> flask.Response:
        return render("deployments.html", view=pages.deployments(get_app()), decision_of=pages.decision_of)

    @web.get("/breakers")
    def breakers() -> flask.Response:
        return render("breakers.html", rows=pages.breakers(get_app()))

    @web.post("/breakers/reset")
    def reset_breaker() -> flask.Response:
        name = flask.request.form.get("name", "")
        if not name.strip():
            raise InputError("the breaker's name is required", where="name")
        pages.reset_breaker(get_app(), name, principal().identity)
        return flask.redirect("/breakers", code=303)

    @web.get("/dead-letters")
    def dead_letters() -> flask.Response:
        return render("dead_letters.html", letters=get_app().store.list_dead_letters(limit=200))

    @web.get("/dead-letters/<letter_id>")
    def dead_letter(letter_id: str) -> flask.Response:
        letter, attributes = pages.original_attributes(get_app(), letter_id)
        return render("dead_letter.html", letter=letter, attributes=attributes)

    @web.post("/dead-letters/<letter_id>/replay")
    def replay(letter_id: str) -> flask.Response:
        outcome = pages.replay(get_app(), letter_id, principal().identity)
        return flask.redirect(flask.url_for("run", run_id=outcome.outcome.run.id), code=303)

    web.jinja_env.globals["stamp"] = lambda value: Markup.escape(format_timestamp(value))
    return web
