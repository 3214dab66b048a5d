"""Every manifest rule, with the line and field path it is reported at.

Each invalid case is a whole YAML file whose offending line carries the marker `#!`; the test
checks the reported line is that one, the field path, and the message.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from client.checks import check_manifests, machine_findings
from manifest.app import AppManifest
from manifest.loader import MAX_FILE_BYTES, ManifestError, load_manifest, parse_manifest
from manifest.schema import manifest_json_schema_text

ROOT = Path(__file__).resolve().parent.parent


def app(heartbeat: str = "", *, agent_extra: str = "", top: str = "") -> str:
    """A manifest with one agent and one heartbeat whose body is `heartbeat` (YAML lines)."""
    body = textwrap.indent(textwrap.dedent(heartbeat).strip("\n"), " " * 8) if heartbeat else ""
    extra = textwrap.indent(textwrap.dedent(agent_extra).strip("\n"), " " * 4) if agent_extra else ""
    return (
        "id: sales\nname: Sales\nversion: 1.0.0\n" + (textwrap.dedent(top) if top else "")
        + "agents:\n  - id: outreach\n" + (extra + "\n" if extra else "")
        + ("    heartbeats:\n" + body + "\n" if heartbeat else "")
    )


HB = """\
- slug: daily_cadence
  skill: _internal_app_records
  tool: query
  params: {record_type: campaign, status: active}
"""

INVALID = [
    ("interval-too-small", app(HB + "  interval_minutes: 2 #!"),
     "agents[0].heartbeats[0].interval_minutes", "must be between 5 and 43200 (got 2)"),
    ("interval-too-large", app(HB + "  interval_minutes: 43201 #!"),
     "agents[0].heartbeats[0].interval_minutes", "must be between 5 and 43200 (got 43201)"),
    ("interval-required", app(HB.replace("- slug: daily_cadence", "- slug: daily_cadence #!")),
     "agents[0].heartbeats[0].interval_minutes", "is required for schedule_type interval"),
    ("interval-as-string", app(HB + '  interval_minutes: "60" #!'),
     "agents[0].heartbeats[0].interval_minutes", "must be a whole number (got '60')"),
    ("interval-with-daily", app(HB + '  schedule_type: daily\n  time_of_day: "09:00"\n  interval_minutes: 60 #!'),
     "agents[0].heartbeats[0].interval_minutes", "applies only to schedule_type interval (this heartbeat is daily)"),
    ("unknown-key-hint", app(HB + "  interval_minutes: 60\n  intervall_minute: 5 #!"),
     "agents[0].heartbeats[0].intervall_minute", "unknown field (did you mean 'interval_minutes'?)"),
    ("unknown-shorthand-hint", app(HB + "  interval_minutes: 60\n  cooldown_minute: 5 #!"),
     "agents[0].heartbeats[0].cooldown_minute", "did you mean 'cooldown_minutes'?"),
    ("unknown-top-level", app(HB + "  interval_minutes: 60", top="agent: x #!\n"),
     "agent", "unknown field (did you mean 'agents'?)"),
    ("unknown-agent-key", app(HB + "  interval_minutes: 60", agent_extra="system_promt: hi #!"),
     "agents[0].system_promt", "did you mean 'system_prompt'?"),
    ("slug-uppercase", app(HB.replace("daily_cadence", "Daily #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].slug", "starting with a letter (got 'Daily')"),
    ("slug-digit-first", app(HB.replace("daily_cadence", "1st #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].slug", "starting with a letter (got '1st')"),
    ("slug-duplicate", app(HB + "  interval_minutes: 60\n" + HB.replace("daily_cadence", "daily_cadence #!") + "  interval_minutes: 30"),
     "agents[0].heartbeats[1].slug", "duplicate slug 'daily_cadence'"),
    ("tool-not-query", app(HB.replace("tool: query", "tool: search #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].tool", 'must be "query" for the internal source _internal_app_records'),
    ("unknown-internal", app(HB.replace("skill: _internal_app_records", "skill: _internal_secrets #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].skill", "unknown internal source '_internal_secrets'"),
    ("record-type-missing", app(HB.replace("{record_type: campaign, status: active}", "{status: active} #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].params.record_type", "record_type is required for _internal_app_records"),
    ("filter-not-scalar", app(HB.replace("status: active}", "status: [a, b]} #!") + "  interval_minutes: 60"),
     "agents[0].heartbeats[0].params.status", "filters compare a field for equality"),
    ("memory-unknown-param", app("""\
        - slug: commitments
          skill: _internal_agent_memory
          tool: query
          params:
            kind: commitment
            agent_id: other #!
          interval_minutes: 60
        """), "agents[0].heartbeats[0].params.agent_id", "it takes only 'kind'"),
    ("cron-bad-minute", app(HB + '  cron: "61 * * * *" #!'),
     "agents[0].heartbeats[0].cron", "is not a valid cron expression '61 * * * *'"),
    ("cron-four-fields", app(HB + '  schedule_type: cron\n  cron_expression: "0 9 * *" #!'),
     "agents[0].heartbeats[0].cron_expression", "must have 5 fields"),
    ("cron-last-weekday", app(HB + '  schedule_type: cron\n  cron_expression: "0 9 * * L5" #!'),
     "agents[0].heartbeats[0].cron_expression",
     "is not a standard cron expression '0 9 * * L5': 'L5' in the day-of-week field"),
    ("cron-range-to-last", app(HB + '  cron: "0 9 1-L * *" #!'),
     "agents[0].heartbeats[0].cron", "'1-L' in the day-of-month field"),
    ("cron-never", app(HB + '  cron: "0 0 30 2 *" #!'),
     "agents[0].heartbeats[0].cron", "never matches a calendar date"),
    # A missing field is reported at the mapping that lacks it.
    ("cron-required", app(HB.replace("- slug: daily_cadence", "- slug: daily_cadence #!") + "  schedule_type: cron"),
     "agents[0].heartbeats[0].cron_expression", "is required for schedule_type cron"),
    ("cron-and-schedule-type", app(HB + '  schedule_type: daily\n  cron: "0 9 * * *" #!'),
     "agents[0].heartbeats[0].cron", "cron: means schedule_type cron, but schedule_type is 'daily'"),
    ("cron-and-cron-expression", app(HB + '  cron_expression: "0 9 * * *"\n  cron: "0 9 * * *" #!'),
     "agents[0].heartbeats[0].cron", "either cron or cron_expression"),
    ("schedule-type-unknown", app(HB + "  schedule_type: hourly #!"),
     "agents[0].heartbeats[0].schedule_type", "must be 'interval', 'daily', 'weekly' or 'cron' (got 'hourly')"),
    ("time-of-day-format", app(HB + '  schedule_type: daily\n  time_of_day: "9am" #!'),
     "agents[0].heartbeats[0].time_of_day", 'must be a time "HH:MM"'),
    ("time-of-day-range", app(HB + '  schedule_type: daily\n  time_of_day: "24:00" #!'),
     "agents[0].heartbeats[0].time_of_day", "must be a time from 00:00 to 23:59 (got '24:00')"),
    ("time-of-day-required", app(HB.replace("- slug: daily_cadence", "- slug: daily_cadence #!") + "  schedule_type: daily"),
     "agents[0].heartbeats[0].time_of_day", "is required for schedule_type daily"),
    ("day-of-week-range", app(HB + '  schedule_type: weekly\n  time_of_day: "09:00"\n  day_of_week: 7 #!'),
     "agents[0].heartbeats[0].day_of_week", "must be between 0 (Monday) and 6 (Sunday) (got 7)"),
    ("day-of-week-on-daily", app(HB + '  schedule_type: daily\n  time_of_day: "09:00"\n  day_of_week: 1 #!'),
     "agents[0].heartbeats[0].day_of_week", "applies only to schedule_type weekly"),
    ("day-of-week-required", app(HB.replace("- slug: daily_cadence", "- slug: daily_cadence #!") + '  schedule_type: weekly\n  time_of_day: "09:00"'),
     "agents[0].heartbeats[0].day_of_week", "is required for schedule_type weekly"),
    ("window-zero-width", app(HB + '  interval_minutes: 60\n  active_hours: {start: "08:00", end: "08:00"} #!'),
     "agents[0].heartbeats[0].active_hours.end", "zero-width window"),
    ("window-shorthand-zero-width", app(HB + '  interval_minutes: 60\n  active_hours: "09:00-09:00" #!'),
     "agents[0].heartbeats[0].active_hours.end", "zero-width window"),
    ("window-bad-timezone", app(HB + '  interval_minutes: 60\n  active_hours:\n    start: "08:00"\n    end: "18:00"\n    timezone: Mars/Olympus #!'),
     "agents[0].heartbeats[0].active_hours.timezone", "unknown timezone 'Mars/Olympus'"),
    ("window-timezone-case-hint", app(HB + '  interval_minutes: 60\n  active_hours: {start: "08:00", end: "18:00", timezone: europe/berlin} #!'),
     "agents[0].heartbeats[0].active_hours.timezone", "did you mean 'Europe/Berlin'?"),
    ("window-shorthand-garbage", app(HB + '  interval_minutes: 60\n  active_hours: "8 to 6" #!'),
     "agents[0].heartbeats[0].active_hours", 'must be "HH:MM-HH:MM" or a mapping'),
    ("window-end-25", app(HB + '  interval_minutes: 60\n  active_hours: {start: "08:00", end: "25:00"} #!'),
     "agents[0].heartbeats[0].active_hours.end", "must be a time from 00:00 to 24:00"),
    ("daily-outside-window", app(HB + '  schedule_type: daily\n  time_of_day: "07:00"\n  active_hours: "08:00-18:00" #!'),
     "agents[0].heartbeats[0].active_hours", "07:00 is never inside active_hours 08:00-18:00"),
    ("cron-outside-window", app(HB + '  cron: "0 20-23 * * *"\n  active_hours: "08:00-18:00" #!'),
     "agents[0].heartbeats[0].active_hours", "is never inside active_hours 08:00-18:00"),
    ("cooldown-negative", app(HB + "  interval_minutes: 60\n  cooldown_seconds: -5 #!"),
     "agents[0].heartbeats[0].cooldown_seconds", "must be >= 0 (got -5)"),
    ("cooldown-minutes-negative", app(HB + "  interval_minutes: 60\n  cooldown_minutes: -1 #!"),
     "agents[0].heartbeats[0].cooldown_minutes", "must be a whole number of minutes >= 0 (got -1)"),
    ("cooldown-too-large", app(HB + "  interval_minutes: 60\n  cooldown_seconds: 2592001 #!"),
     "agents[0].heartbeats[0].cooldown_seconds", "must be at most 2592000 seconds (30 days) (got 2592001)"),
    ("cooldown-minutes-too-large", app(HB + "  interval_minutes: 60\n  cooldown_minutes: 100000000000000 #!"),
     "agents[0].heartbeats[0].cooldown_minutes", "must be at most 43200 minutes (30 days) (got 100000000000000)"),
    ("cooldown-both", app(HB + "  interval_minutes: 60\n  cooldown_seconds: 60\n  cooldown_minutes: 1 #!"),
     "agents[0].heartbeats[0].cooldown_minutes", "either cooldown_minutes or cooldown_seconds"),
    ("conversation-mode", app(HB + "  interval_minutes: 60\n  conversation_mode: shared #!"),
     "agents[0].heartbeats[0].conversation_mode", "must be 'dedicated', 'isolated' or 'main' (got 'shared')"),
    ("model-tier", app(HB + "  interval_minutes: 60\n  model_tier: gpt4 #!"),
     "agents[0].heartbeats[0].model_tier", "must be 'cheap', 'standard' or 'premium' (got 'gpt4')"),
    ("prompt-too-long", app(HB + "  interval_minutes: 60\n  prompt: " + "x" * 8001 + " #!"),
     "agents[0].heartbeats[0].prompt", "must be at most 8000 characters (got 8001)"),
    ("invoke-always-yes", app(HB + "  interval_minutes: 60\n  invoke_always: yes #!"),
     "agents[0].heartbeats[0].invoke_always", "must be true or false (got 'yes')"),
    ("split-needs-business-hours", app(HB.replace("- slug: daily_cadence", "- slug: daily_cadence #!") + "  interval_minutes: {business_hours: 15, overnight: 120}"),
     "agents[0].heartbeats[0].business_hours", "is required when interval_minutes has business_hours and overnight"),
    ("business-hours-without-split", app(HB + '  interval_minutes: 60\n  business_hours: "09:00-17:00" #!'),
     "agents[0].heartbeats[0].business_hours", "applies only with interval_minutes"),
    ("split-value-range", app(HB + '  business_hours: "09:00-17:00"\n  interval_minutes: {business_hours: 15, overnight: 3} #!'),
     "agents[0].heartbeats[0].interval_minutes.overnight", "must be between 5 and 43200 (got 3)"),
    ("app-id-colon", app(HB + "  interval_minutes: 60").replace("id: sales", "id: sales:eu #!", 1),
     "id", "(got 'sales:eu')"),
    ("agent-id-uppercase", app(HB + "  interval_minutes: 60").replace("- id: outreach", "- id: Outreach #!"),
     "agents[0].id", "(got 'Outreach')"),
    ("no-agents", "id: sales\nagents: [] #!\n", "agents", "an app needs agents, workflows, or both"),
    ("agents-missing", "id: sales #!\nname: x\n", "agents", "an app needs agents, workflows, or both"),
    ("agents-not-list", "id: sales\nagents: outreach #!\n", "agents", "must be a list (got 'outreach')"),
    ("team-unknown", app(HB + "  interval_minutes: 60", agent_extra="team: [ghost] #!"),
     "agents[0].team[0]", "no agent 'ghost' in this app"),
    ("team-self", app(HB + "  interval_minutes: 60", agent_extra="team: [outreach] #!"),
     "agents[0].team[0]", "cannot delegate to itself"),
    ("two-defaults", "id: sales\nagents:\n  - id: a\n    is_default: true\n  - id: b\n    is_default: true #!\n",
     "agents[1].is_default", "only one agent may be is_default"),
    ("duplicate-agent", "id: sales\nagents:\n  - id: a\n  - id: a #!\n", "agents[1].id", "duplicate agent id 'a'"),
    ("name-not-string", "id: sales\nname: 12 #!\nagents:\n  - id: a\n", "name", 'must be a string (got 12) (quote it: "12")'),
    ("yaml-syntax", "id: sales\nagents: [\n  - id: a #!\n", "(yaml)", "YAML syntax error"),
    ("yaml-duplicate-key", "id: sales\nid: other #!\nagents:\n  - id: a\n", "(yaml)", "duplicate key"),
    ("yaml-tab-indent", "id: sales\nagents:\n\t- id: a #!\n", "(yaml)", "a tab in the indentation"),
    ("top-level-list", "- id: sales #!\n", "(manifest)", "a manifest must be a mapping, not a list"),
    ("empty-file", "#!\n", "(manifest)", "file is empty"),
    ("non-string-key", "id: sales\n1: x #!\nagents:\n  - id: a\n", "(manifest)", "keys must be strings (got 1)"),
]


def expected_line(text: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if "#!" in line:
            return number
    raise AssertionError("case has no #! marker")


@pytest.mark.parametrize(("text", "path", "message"), [pytest.param(*c[1:], id=c[0]) for c in INVALID])
def test_invalid_manifest_names_line_and_field(tmp_path, text, path, message):
    file = tmp_path / "app.yaml"
    file.write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(file)
    problems = caught.value.problems
    matching = [p for p in problems if p.path == path and message in p.message]
    assert matching, f"no problem at {path} with {message!r}; got:\n{caught.value}"
    problem = matching[0]
    assert problem.file == str(file)
    assert problem.line == expected_line(text), str(caught.value)
    assert re.fullmatch(rf"{re.escape(str(file))}:\d+:\d+: {re.escape(path)}: .+", str(problem))


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    text = app(HB + "  interval_minutes: 2\n  model_tier: gpt4\n  conversation_mode: shared")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename="x.yaml")
    paths = {p.path.rsplit(".", 1)[-1] for p in caught.value.problems}
    assert {"interval_minutes", "model_tier", "conversation_mode"} <= paths


def test_yaml_syntax_error_names_where_the_unclosed_mapping_opened():
    text = "id: x\nagents:\n  - id: a\n    heartbeats:\n      - {slug: a, skill: _internal_app_records, tool: query\n      - slug: b\n"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename="x.yaml")
    assert str(caught.value) == (
        "x.yaml:6:13: (yaml): YAML syntax error: while parsing a flow mapping expected ',' or '}', but got ':'"
        " (the flow mapping opened at line 5, column 9)"
    )


def test_yaml_syntax_error_found_where_it_began_says_the_place_once():
    with pytest.raises(ManifestError) as caught:
        parse_manifest("id: sales\nagents: [\n  - id: a\n", filename="x.yaml")
    assert str(caught.value) == (
        "x.yaml:3:3: (yaml): YAML syntax error: while parsing a flow node expected the node content, but found '-'"
    )


def test_bom_is_rejected_with_a_reason():
    with pytest.raises(ManifestError, match="byte-order mark"):
        parse_manifest(b"\xef\xbb\xbf" + app(HB + "  interval_minutes: 60").encode(), filename="x.yaml")


def test_non_utf8_names_the_line():
    raw = b"id: sales\nname: caf\xe9\nagents:\n  - id: a\n"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw, filename="x.yaml")
    assert caught.value.problems[0].line == 2
    assert "not UTF-8" in caught.value.problems[0].message


def test_alias_bomb_is_rejected_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nid: sales\nagents: [*a8]\n"
    with pytest.raises(ManifestError, match="too many YAML nodes"):
        parse_manifest(text, filename="bomb.yaml")


def test_oversized_file_is_rejected_before_parsing(tmp_path):
    file = tmp_path / "big.yaml"
    file.write_text("id: sales\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(ManifestError, match="at most 1,048,576 bytes"):
        load_manifest(file)


def test_missing_file():
    with pytest.raises(ManifestError, match="cannot read file"):
        load_manifest("/nonexistent/app.yaml")


# --- valid manifests ---------------------------------------------------------------------------


EXAMPLES = sorted((ROOT / "manifests").rglob("*.yaml"))


def test_every_example_manifest_is_checked():
    assert {path.name for path in EXAMPLES} >= {"cmo.yaml", "sales.yaml", "support.yaml", "expenses.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(ROOT / "manifests")))
def test_example_manifests_are_valid(path):
    """Every example (what `make demo` installs) passes every check `heartbeats validate` and
    `install` run without a server: the manifest rules, the skill registry, the workflow graphs."""
    loaded, problems = check_manifests([path])
    assert problems == []
    manifest = loaded[0].manifest
    assert manifest.heartbeats() or manifest.tasks() or manifest.workflows
    assert [finding for finding, _ in machine_findings(loaded)] == []


def test_the_examples_carry_what_the_demo_shows():
    """`make demo` (cli/demo_seed.py) relies on these: a monthly ceiling it reaches, a daily one, a
    per-call ceiling a burst of mentions exceeds, and a heartbeat in shadow with a comparison."""
    cmo = load_manifest(ROOT / "manifests" / "cmo.yaml")
    agents = {agent.id: agent for agent in cmo.agents}
    assert agents["content_drafter"].budget.monthly_usd < 0.1
    assert agents["cmo"].budget.monthly_usd and agents["cmo"].heartbeats[0].budget.daily_usd
    assert agents["x_monitor"].heartbeats[0].budget.per_call_tokens
    sales = load_manifest(ROOT / "manifests" / "sales.yaml")
    outreach = sales.agents[0]
    assert outreach.shadow_mode and outreach.heartbeats[0].shadow.compare == {"email.send": ["to"]}


def test_shorthand_means_the_same_as_the_canonical_form():
    shorthand = parse_manifest(app(HB + '  cron: "0 9 * * *"\n  active_hours: "08:00-18:00"\n  cooldown_minutes: 60'))
    canonical = parse_manifest(app(HB + """\
  schedule_type: cron
  cron_expression: "0 9 * * *"
  active_hours: {start: "08:00", end: "18:00", timezone: user}
  cooldown_seconds: 3600"""))
    assert shorthand == canonical
    assert shorthand.agents[0].heartbeats[0].cooldown_seconds == 3600


def test_defaults_of_the_field_reference():
    spec = parse_manifest(app(HB + "  interval_minutes: 60")).agents[0].heartbeats[0]
    assert (spec.schedule_type, spec.invoke_always, spec.conversation_mode, spec.model_tier, spec.prompt) == (
        "interval", False, "dedicated", "cheap", "")


def test_lenient_where_harmless():
    manifest = parse_manifest(app(HB + '  schedule_type: daily\n  time_of_day: "9:05"\n  active_hours: "00:00-24:00"')
                              .replace("version: 1.0.0", "version: 1.0"))
    assert manifest.version == "1.0"
    assert manifest.agents[0].heartbeats[0].time_of_day == "09:05"


def test_cooldown_of_exactly_30_days_is_valid():
    seconds = parse_manifest(app(HB + "  interval_minutes: 60\n  cooldown_seconds: 2592000"))
    minutes = parse_manifest(app(HB + "  interval_minutes: 60\n  cooldown_minutes: 43200"))
    assert seconds == minutes
    assert seconds.agents[0].heartbeats[0].cooldown_seconds == 30 * 86_400


@pytest.mark.parametrize("expression", [
    "*/15 9-17 * * 1-5", "0 9 1,15 * *", "0 8-18/2 * JAN-MAR mon-fri", "30 6 * * SUN,sat", "0 0 * * 7",
])
def test_standard_cron_forms_are_valid(expression):
    spec = parse_manifest(app(HB + f'  cron: "{expression}"')).agents[0].heartbeats[0]
    assert spec.cron_expression == expression


def test_prompt_of_exactly_8000_characters_is_valid():
    parse_manifest(app(HB + "  interval_minutes: 60\n  prompt: " + "x" * 8000))


def test_schema_file_is_current():
    assert (ROOT / "manifest.schema.json").read_text() == manifest_json_schema_text(), (
        "manifest.schema.json is stale: run `make schema`"
    )


@pytest.mark.parametrize("field", ["active_hours", "business_hours"])
def test_schema_accepts_the_window_shorthand_the_loader_accepts(field):
    # jsonschema is not a dependency: check the property's string form against the shorthand.
    parse_manifest(app(HB + '  interval_minutes: {business_hours: 15, overnight: 120}\n'
                            '  business_hours: "09:00-17:00"\n  active_hours: "09:00-17:00"'))
    schema = json.loads(manifest_json_schema_text())
    forms = schema["$defs"]["HeartbeatSpec"]["properties"][field]["anyOf"]
    strings = [form for form in forms if form.get("type") == "string"]
    assert strings and all(re.search(form["pattern"], "09:00-17:00") for form in strings)
    assert not any(re.search(form["pattern"], "09:00") for form in strings)
    assert {"$ref": "#/$defs/Window"} in forms and {"type": "null"} in forms


def test_manifest_round_trips_through_json():
    manifest = load_manifest(ROOT / "manifests" / "cmo.yaml")
    assert AppManifest.model_validate_json(manifest.model_dump_json()) == manifest


TASKS = """\
id: support
agents:
  - id: reviewer
    tools: [records, email]
    tasks:
      - slug: review_cases
        prompt: Review each new case; reply HEARTBEAT_OK when nothing needs doing.
        dedupe: {key: case_id, ttl_hours: 48}
        active_hours: "08:00-20:00"
        cooldown_minutes: 5
        triggers:
          - type: event
            event: case.created
          - type: heartbeat
            interval_minutes: {business_hours: 1, overnight: 120}
            business_hours: {start: "09:00", end: "18:00", timezone: user}
            skill: _internal_app_records
            tool: query
            params: {record_type: case, status: open}
          - type: schedule
            cron: "0 9 * * 1-5"
          - type: threshold
            metric: error_rate
            above: 0.02
          - type: a2a
            from: [senior]
          - type: manual
  - id: senior
    team: [reviewer]
"""


def test_a_task_with_all_six_triggers_validates_and_survives_storage():
    manifest = parse_manifest(TASKS)
    [(agent, task)] = manifest.tasks()
    assert agent.id == "reviewer" and task.slug == "review_cases"
    assert [trigger.type for trigger in task.triggers] == ["event", "heartbeat", "schedule", "threshold", "a2a", "manual"]
    assert (task.dedupe.key, task.dedupe.ttl_hours, task.cooldown_seconds) == ("case_id", 48, 300)
    assert task.triggers[1].interval_minutes.business_hours == 1  # down to one minute for a task's poll
    assert task.triggers[2].calendar_cron() == "0 9 * * 1-5" and task.triggers[4].from_ == ["senior"]
    # What install stores is the dumped manifest: it validates again, unchanged.
    stored = manifest.model_dump(mode="json")
    assert AppManifest.model_validate(stored) == manifest


def test_the_schema_describes_tasks_and_their_shorthand():
    schema = json.loads((ROOT / "manifest.schema.json").read_text())
    task = schema["$defs"]["TaskSpec"]["properties"]
    assert {"slug", "triggers", "dedupe", "cooldown_minutes", "active_hours"} <= set(task)
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in task["triggers"]["items"]["oneOf"]}
    assert kinds == {"ScheduleTrigger", "HeartbeatTrigger", "EventTrigger", "ThresholdTrigger", "A2aTrigger",
                     "ManualTrigger"}
    assert "cron" in schema["$defs"]["ScheduleTrigger"]["properties"]
