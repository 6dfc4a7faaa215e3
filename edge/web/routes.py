"""Routes of the web pages and of the JSON they read. Patient-facing output (the kiosk) never
carries an acuity level; staff and status need loopback, the service token or a signed-in
session; every post carries the CSRF header unless it is a bearer-token machine client."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, url_for

from edge.clinical.case import parse_case
from edge.errors import EdgeError
from edge.service import http_request
from edge.service.state import ServiceState
from edge.web.queue import needs_staff_now
from edge.web.security import CSRF_FIELD, CSRF_HEADER, SECURITY_HEADERS, WebSession, bearer_token, is_loopback
from edge.service.config_tables import web_settings
from edge.web.settings import WebSettings
from edge.web.state import WebState, web_state
from edge.web.status import status_view

log = logging.getLogger(__name__)
KIOSK_FIELDS = ("complaint", "age", "sex", "pain")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _error(code: str, message: str, status: int, field: str | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify({"error": body}), status


def _triage(payload: Any, *, source: str, explain: bool) -> tuple[int, dict[str, Any]]:
    """The pages' triage: the API's own path (edge.service.answering), called in-process after the
    page's access and CSRF checks; errors come back as the API's JSON error body and status."""
    service: ServiceState = current_app.extensions["edge"]
    try:
        case = parse_case(payload)
        result = http_request.triage(service, [case], source=source, from_query=False, explain=explain)
    except EdgeError as error:
        return error.http_status, error.to_dict()
    except Exception as error:  # the kiosk must still send the patient to a person
        log.error("unexpected %s triaging for the %s page", type(error).__name__, source)  # type only: no PHI
        return 500, EdgeError("internal_error", "Internal error; the event was logged.", http_status=500).to_dict()
    return 200, result.results[0].to_dict()


def register_routes(bp: Blueprint, explicit: WebSettings | None) -> None:
    def ws() -> WebState:
        return web_state(current_app, explicit)

    def service() -> ServiceState:
        return current_app.extensions["edge"]

    @bp.record_once
    def _validate(setup_state: Any) -> None:
        # A typo in the service's [web] table is refused at start, like every other setting,
        # not at the first request.
        service: ServiceState | None = setup_state.app.extensions.get("edge")
        if explicit is None and service is not None:
            web_settings(service.config.web)

    @bp.before_app_request
    def _attach() -> None:
        # Created on the first request of any kind (so settings put in app.config after
        # create_app still count) and attached to the service's result listeners before the
        # first decision, so machine-client cases reach the staff queue too.
        ws()

    @bp.before_request
    def _load_session() -> None:
        g.web_session = ws().signer.load(request)

    @bp.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        session: WebSession | None = g.get("web_session")
        if session is not None and (session.fresh or g.get("web_session_changed")):
            ws().signer.save(response, session)
        return response

    # --- access -------------------------------------------------------------------------
    def staff_access() -> str | None:
        """How this request may see staff data: 'loopback', 'bearer', 'session' or None."""
        state = ws()
        presented = bearer_token(request)
        if presented is not None:
            return "bearer" if state.token_ok(presented) else None
        if is_loopback(request.remote_addr):
            return "loopback"
        return "session" if g.web_session.staff and not g.web_session.fresh else None

    def csrf_ok(access: str | None) -> bool:
        if access == "bearer":
            return True  # browsers never add Authorization on their own: no cross-site forgery
        return ws().signer.csrf_ok(g.web_session, request.headers.get(CSRF_HEADER))

    def denied_json() -> tuple[Response, int]:
        return _error("unauthorized", "Staff data needs the service token (Authorization: Bearer) "
                      "when reached from another host; sign in at /staff/login.", 401)

    def page(template: str, **extra: Any) -> str:
        state = ws()
        client = {"strings": state.strings, "settings": {
            "kioskIdleMs": int(state.settings.kiosk_idle_s * 1000),
            "resultIdleMs": int(state.settings.result_idle_s * 1000),
            "staffRefreshMs": int(state.settings.staff_refresh_s * 1000),
            "statusRefreshMs": int(state.settings.status_refresh_s * 1000),
        }}
        return render_template(template, t=state.strings, lang=state.settings.language,
                               csrf=state.signer.csrf_token(g.web_session),
                               client_json=json.dumps(client), **extra)

    def guard_page() -> Response | None:
        if staff_access() is None:
            return redirect(url_for("web.staff_login", next=request.path), code=303)
        return None

    # --- kiosk --------------------------------------------------------------------------
    # A kiosk on another host (a tablet on the ward network) is signed in once by staff with the
    # token, like the staff board: an anonymous network client must not write audit records.
    @bp.get("/")
    def kiosk() -> Any:
        return guard_page() or page("kiosk.html", pain_scale=range(11))

    @bp.post("/kiosk/api/submit")
    def kiosk_submit() -> tuple[Response, int] | Response:
        access = staff_access()
        if access is None:
            return denied_json()
        if not csrf_ok(access):
            return _error("csrf_failed", "Reload the page and try again.", 403)
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return _error("not_an_object", "Send the answers as a JSON object.", 400)
        case = {k: payload[k] for k in KIOSK_FIELDS if payload.get(k) not in (None, "")}
        t = ws().strings
        if not str(case.get("complaint", "")).strip():
            return jsonify({"action": "fix", "field": "complaint", "message": t["kiosk.need_complaint"]}), 400
        # No explain: the patient sees only the next step, and the basis costs model passes per
        # word. The staff board asks for it when a nurse triages (or re-triages) the case.
        status, result = _triage(case, source="kiosk", explain=False)
        if status == 400 and isinstance(result.get("error"), dict):
            field = str(result["error"].get("field") or "")
            label = t.get(f"field.{field}", "")
            return jsonify({"action": "fix", "field": field, "message": f"{t['kiosk.fix_field']} {label}".strip()}), 400
        if status != 200 or "level" not in result:
            # Fail toward the staff: a kiosk that cannot triage sends the patient to a person.
            return jsonify({"action": "staff_now", "title": t["kiosk.failed.title"], "body": t["kiosk.failed.body"]})
        # Only the next step goes back to the patient's screen: never a level or probability.
        if needs_staff_now(result):
            return jsonify({"action": "staff_now", "title": t["kiosk.staff_now.title"], "body": t["kiosk.staff_now.body"]})
        return jsonify({"action": "wait", "title": t["kiosk.wait.title"], "body": t["kiosk.wait.body"]})

    # --- staff sign-in (other hosts) ---------------------------------------------------
    @bp.route("/staff/login", methods=["GET", "POST"])
    def staff_login() -> Any:
        target = request.values.get("next", "")
        if not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
            target = url_for("web.staff")
        error = None
        if request.method == "POST":
            state = ws()
            if not state.signer.csrf_ok(g.web_session, request.form.get(CSRF_FIELD)):
                error = state.strings["error.generic"]
            elif state.token_ok(request.form.get("token", "").strip()):
                g.web_session.staff = True
                g.web_session_changed = True
                return redirect(target, code=303)
            else:
                error = state.strings["login.bad"]
        return page("login.html", next=target, error=error), (401 if error else 200)

    # --- staff board --------------------------------------------------------------------
    @bp.get("/staff")
    def staff() -> Any:
        return guard_page() or page("staff.html", pain_scale=range(11))

    @bp.get("/staff/api/queue")
    def staff_queue() -> Any:
        if staff_access() is None:
            return denied_json()
        return jsonify(ws().queue.snapshot())

    @bp.get("/staff/api/case/<request_id>")
    def staff_case(request_id: str) -> Any:
        if staff_access() is None:
            return denied_json()
        detail = ws().queue.get(request_id) if REQUEST_ID.match(request_id) else None
        if detail is None:
            return _error("not_found", "No recent case with that request id on this board.", 404)
        return jsonify(detail)

    @bp.post("/staff/api/triage")
    def staff_triage() -> Any:
        access = staff_access()
        if access is None:
            return denied_json()
        if not csrf_ok(access):
            return _error("csrf_failed", "Reload the page and try again.", 403)
        try:
            payload = http_request.json_body()
        except EdgeError as error:
            return jsonify(error.to_dict()), error.http_status
        status, result = _triage(payload, source="staff", explain=True)
        if status != 200:
            return jsonify(result), status
        detail = ws().queue.get(str(result.get("request_id", "")))
        return jsonify(detail or {"result": result, "case": request.get_json(silent=True)})

    @bp.post("/staff/api/ack/<request_id>")
    def staff_ack(request_id: str) -> Any:
        access = staff_access()
        if access is None:
            return denied_json()
        if not csrf_ok(access):
            return _error("csrf_failed", "Reload the page and try again.", 403)
        if not REQUEST_ID.match(request_id):
            return _error("not_found", "Unknown request id.", 404)
        body = request.get_json(silent=True) or {}
        final_level = body.get("final_level")
        reason = str(body.get("reason") or "").strip()
        if isinstance(final_level, bool) or not isinstance(final_level, int) or not 1 <= final_level <= 5:
            return _error("invalid_level", "'final_level' must be a whole number from 1 to 5.", 400, "final_level")
        detail = ws().queue.get(request_id)
        if detail and final_level != detail["level"] and not reason:
            return _error("reason_required", ws().strings["staff.need_reason"], 400, "reason")
        audit = service().audit
        if audit is None:
            return _error("audit_disabled", "The audit log is not enabled on this service.", 404)
        try:
            answer = audit.acknowledge(request_id, final_level, reason or None)
        except EdgeError as error:
            return jsonify(error.to_dict()), error.http_status
        ws().queue.acknowledge(request_id, final_level, reason or None)
        return jsonify({"request_id": request_id, "final_level": final_level, "audit": answer})

    # --- device status ------------------------------------------------------------------
    @bp.get("/status")
    def status_page() -> Any:
        return guard_page() or page("status.html")

    @bp.get("/status/api")
    def status_api() -> Any:
        if staff_access() is None:
            return denied_json()
        return jsonify(status_view(service(), ws().history, ws().stats, ws().power_history))
