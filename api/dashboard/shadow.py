"""A heartbeat's or task's shadow report: agreement over time, the disagreeing cases, the cases that
wait for a decision (with one-click decisions), and promotion.

    GET  /shadow/{id}               the report (client.shadow.shadow_report)
    POST /shadow/{id}/decide        `case` and `decision`: `proposal` (the agent was right), `none` (no
                                    action was right) or `json` with `actions` (a JSON list of {tool, arguments})
    POST /shadow/{id}/promote       switch shadow mode off when the report allows it; why not, otherwise
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.context import Context
from api.dashboard.charts import Bar, columns
from api.dashboard.layout import (
    ACTOR,
    Session,
    action_button,
    cells,
    csrf_input,
    entity_link,
    esc,
    field,
    json_block,
    page,
    posted_form,
    refused_page,
    table,
)
from api.errors import status_and_code
from client.shadow import decide, promote, shadow_report
from contract.errors import HeartbeatsError, InvalidInput, NotFound
from contract.shadow import PROMOTE_BELOW

router = APIRouter(include_in_schema=False)



@router.get("/shadow/{workflow_id}")
async def report_page(workflow_id: str, context: Context, session: Session) -> Response:
    return await _report(context, workflow_id, session)


async def _report(context: Context, workflow_id: str, session: str, *, problem: str | None = None,
                  status: int = 200) -> Response:
    try:
        report = await shadow_report(context.backends.store, workflow_id=workflow_id)
    except HeartbeatsError as exc:
        return refused_page("Shadow report", exc, session=session)
    url = f"/shadow/{quote(workflow_id, safe=':')}"
    mode = "in shadow mode" if report.shadow else "promoted" if report.promoted else "not in shadow mode"
    rate = f"{report.disagreement_rate:.1%}" if report.compared else "—"
    bars = [Bar(day.day[5:], 100.0 * day.agree / day.compared, text=f"{day.agree} of {day.compared} agree")
            for day in report.by_day]
    day_rows = [cells(esc(day.day), str(day.compared), str(day.agree), f"{day.agree / day.compared:.0%}")
                for day in reversed(report.by_day)]
    disagreeing = [cells(esc(case["case"]), json_block(case["proposed"], 2_000), json_block(case["decided"], 2_000))
                   for case in report.disagreeing]
    undecided = [cells(esc(case["case"]), json_block(case["proposed"], 2_000), _decide_forms(url, case, session))
                 for case in report.undecided]
    promotable = report.shadow and report.compared >= report.min_cases and report.disagreement_rate < PROMOTE_BELOW
    promote_form = (action_button(f"{url}/promote", "promote: switch shadow mode off", session, described=workflow_id)
                    if report.shadow else "")
    shown_problem = f'<p class="problem" role="alert">{esc(problem)}</p>' if problem else ""
    body = f"""<h1>Shadow report</h1>
<p>{entity_link(workflow_id)} · <strong id="shadow-mode">{esc(mode)}</strong></p>
{shown_problem}
<p id="shadow-summary">{report.cases} cases run in shadow · {report.compared} decided by a person · {report.agree} agree ·
{report.disagree} disagree · disagreement {rate} · promotion needs {report.min_cases} compared cases and a rate below
{PROMOTE_BELOW:.0%}: {"met" if promotable else "not met"}.</p>
{promote_form}
<h2>Agreement over time</h2>
{columns("share of compared cases that agree, per day (percent)", bars, limit=100 * (1 - PROMOTE_BELOW), unit="%") if bars else ""}
{table(["day", "compared", "agree", "share"], day_rows, empty="No case compared yet.", caption="agreement per day")}
<h2>Disagreeing cases</h2>
{table(["case", "the agent proposed", "a person decided"], disagreeing, empty="None.")}
<h2>Waiting for a decision</h2>
{table(["case", "the agent proposed", "decide"], undecided, empty="None: every case run in shadow is decided.")}"""
    return page("Shadow report", body, session=session, status=status)


def _decide_forms(url: str, case: dict, session: str) -> str:
    key = case["case"]
    box = "actions-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return (action_button(f"{url}/decide", "agree with the proposal", session, described=f"case {key}",
                          fields={"case": key, "decision": "proposal"})
            + action_button(f"{url}/decide", "no action was right", session, described=f"case {key}",
                            fields={"case": key, "decision": "none"})
            + f'<form method="post" action="{esc(url)}/decide">{csrf_input(session)}'
              f'<input type="hidden" name="case" value="{esc(key)}"><input type="hidden" name="decision" value="json">'
              f'<label for="{box}">or these actions (JSON list of {{tool, arguments}})</label>'
              f'<textarea id="{box}" name="actions" rows="2" cols="40"></textarea>'
              f'<button type="submit" aria-label="decide case {esc(key)} with these actions">decide</button></form>')


@router.post("/shadow/{workflow_id}/decide")
async def decide_case(workflow_id: str, request: Request, context: Context, session: Session) -> Response:
    form = await posted_form(request, session)
    case, decision = field(form, "case"), field(form, "decision")
    try:
        if decision == "none":
            actions: object = []
        elif decision == "proposal":
            report = await shadow_report(context.backends.store, workflow_id=workflow_id)
            found = [c["proposed"] for c in report.undecided + report.disagreeing if c["case"] == case]
            if not found:
                raise NotFound(f"no case {case!r} run in shadow")
            actions = found[0]
        elif decision == "json":
            try:
                actions = json.loads(field(form, "actions") or "null")
            except ValueError as exc:
                raise InvalidInput(f"actions: not JSON ({exc})") from None
        else:
            raise InvalidInput(f"decision must be proposal, none or json (got {decision!r})")
        await decide(context.backends.store, workflow_id=workflow_id, case=case, actions=actions, actor=ACTOR)
    except HeartbeatsError as exc:
        return await _report(context, workflow_id, session, problem=str(exc), status=status_and_code(exc)[0])
    return RedirectResponse(f"/shadow/{quote(workflow_id, safe=':')}", status_code=303)


@router.post("/shadow/{workflow_id}/promote")
async def promote_routine(workflow_id: str, request: Request, context: Context, session: Session) -> Response:
    await posted_form(request, session)
    try:
        await promote(context.backends.store, workflow_id=workflow_id, actor=ACTOR)
    except HeartbeatsError as exc:
        return await _report(context, workflow_id, session, problem=str(exc), status=status_and_code(exc)[0])
    return RedirectResponse(f"/shadow/{quote(workflow_id, safe=':')}", status_code=303)
