"""`heartbeats shadow decide|report|promote` (client.shadow): compare a heartbeat's or task's
shadow proposals with human decisions, and switch shadow mode off when they agree."""

from __future__ import annotations

import json

import click

from cli.output import JSON_OPTION, echo_json
from cli.runner import run_with_store
from client.shadow import decide, promote, shadow_report
from contract.errors import InvalidInput

ACTOR = "operator:cli"


@click.group("shadow")
def shadow_group() -> None:
    """Shadow mode: what the agent proposed (never executed), what humans decided, and promotion."""


@shadow_group.command("decide")
@click.argument("workflow_id", metavar="ID")
@click.option("--case", "case", required=True, metavar="KEY", help="The case (a task's case key, a heartbeat's tick:ID).")
@click.option("--decision", required=True, metavar="JSON",
              help='The tool calls that should happen: [{"tool": "email.send", "arguments": {...}}], [] for none.')
def decide_command(workflow_id: str, case: str, decision: str) -> None:
    """Record what a human decided for CASE of heartbeat or task ID (replaces an earlier decision).

    A shadow run of the case that comes later gets this decision instead of "not executed".

    \b
    Example:
      heartbeats shadow decide task:acme:support:reviewer:review_cases --case c-42 \\
          --decision '[{"tool": "email.send", "arguments": {"to": "ada@example.com"}}]'
    """
    try:
        actions = json.loads(decision)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--decision: not valid JSON: {exc.msg} at column {exc.colno}") from None
    run_with_store(lambda store: decide(store, workflow_id=workflow_id, case=case, actions=actions, actor=ACTOR))
    click.echo(f"{workflow_id}: decision for case {case} recorded")


@shadow_group.command("report")
@click.argument("workflow_id", metavar="ID")
@JSON_OPTION
def report_command(workflow_id: str, as_json: bool) -> None:
    """Compare ID's shadow proposals with the human decisions, case by case.

    A case agrees when the same tools were proposed as decided, the same number of times, with
    equal values in the argument fields its `shadow.compare` names.

    JSON: {workflow_id, shadow, promoted, min_cases, cases, compared, agree, disagree,
    disagreement_rate, disagreeing: [{case, tick_id, proposed, decided}]}.
    """
    report = run_with_store(lambda store: shadow_report(store, workflow_id=workflow_id))
    if as_json:
        echo_json(report.to_json())
        return
    state = "promoted" if report.promoted else "in shadow" if report.shadow else "live"
    click.echo(f"{workflow_id}: {state}; {report.cases} case(s) run in shadow, {report.compared} compared"
               f" (of {report.min_cases} needed), {report.agree} agree, {report.disagree} disagree"
               f" ({report.disagreement_rate:.1%})")
    for case in report.disagreeing:
        click.echo(f"  {case['case']}: proposed {json.dumps(case['proposed'])}; decided {json.dumps(case['decided'])}")


@shadow_group.command("promote")
@click.argument("workflow_id", metavar="ID")
def promote_command(workflow_id: str) -> None:
    """Switch shadow mode off for ID, for this tenant: only with at least min_cases compared cases and
    a disagreement rate below 5% (else exit 1 saying why). Audited."""
    report = run_with_store(lambda store: promote(store, workflow_id=workflow_id, actor=ACTOR))
    click.echo(f"{workflow_id}: promoted ({report.compared} cases compared, {report.disagreement_rate:.1%} disagree);"
               " its next run executes its tools")


COMMANDS: list[click.Command] = [shadow_group]
