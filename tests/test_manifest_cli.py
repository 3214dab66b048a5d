"""`heartbeats validate`, `schema` and `preview` through the CLI runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
id: ops
name: Ops watch
version: 2.1.0
agents:
  - id: watcher
    heartbeats:
      - slug: nightly
        skill: _internal_app_records
        tool: query
        params: {record_type: incident, status: open}
        schedule_type: daily
        time_of_day: "02:30"
      - slug: queue
        skill: _internal_agent_memory
        tool: query
        params: {kind: commitment}
        interval_minutes: 30
        active_hours: {start: "22:00", end: "01:00", timezone: America/New_York}
"""

INVALID = """\
id: ops
agents:
  - id: watcher
    heartbeats:
      - slug: nightly
        skill: _internal_app_records
        tool: query
        params: {record_type: incident}
        interval_minutes: 2
        modle_tier: cheap
"""


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_valid_prints_a_summary(runner, tmp_path):
    path = write(tmp_path, "ops.yaml", VALID)
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: ok, app ops 2.1.0: 1 agent, 2 heartbeats\n"


def test_validate_invalid_lists_each_problem(runner, tmp_path):
    good = write(tmp_path, "good.yaml", VALID)
    bad = write(tmp_path, "bad.yaml", INVALID)
    result = runner.invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert f"{good}: ok, app ops 2.1.0: 1 agent, 2 heartbeats" in lines
    assert f"{bad}:9:27: agents[0].heartbeats[0].interval_minutes: must be between 5 and 43200 (got 2)" in lines
    assert f"{bad}:10:9: agents[0].heartbeats[0].modle_tier: unknown field (did you mean 'model_tier'?)" in lines


def test_validate_a_folder(runner, tmp_path):
    write(tmp_path, "a.yaml", VALID)
    write(tmp_path, "b.yml", VALID.replace("id: ops", "id: ops2"))
    write(tmp_path, "notes.txt", "not a manifest")
    result = runner.invoke(cli, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 2


def test_validate_missing_file_is_a_problem_not_a_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert re.fullmatch(r".*nope\.yaml:1:1: \(file\): cannot read file: .+\n", result.output)


def test_validate_yaml_syntax_error_names_the_line(runner, tmp_path):
    path = write(tmp_path, "broken.yaml", "id: ops\nagents:\n  - id: a\n    tools: [x, y\n")
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert re.match(rf"{re.escape(str(path))}:5:1: \(yaml\): YAML syntax error", result.output)


def test_schema_command_matches_the_kept_file(runner):
    result = runner.invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert result.output == (ROOT / "manifest.schema.json").read_text()
    schema = json.loads(result.output)
    heartbeat = schema["$defs"]["HeartbeatSpec"]
    assert heartbeat["additionalProperties"] is False
    assert {"cron", "cooldown_minutes", "interval_minutes", "active_hours"} <= set(heartbeat["properties"])


def test_preview_json_is_exact(runner, tmp_path):
    path = write(tmp_path, "ops.yaml", VALID)
    result = runner.invoke(cli, [
        "preview", str(path), "--tenant", "demo", "--timezone", "Europe/Berlin",
        "--from", "2026-03-28T00:00:00Z", "--count", "3", "--json",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"app": "ops", "agent": "watcher", "slug": "nightly", "timezone": "Europe/Berlin",
         # 02:30 does not exist on 2026-03-29 in Berlin: it fires at 03:30 CEST.
         "fires": ["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"]},
        {"app": "ops", "agent": "watcher", "slug": "queue", "timezone": "America/New_York",
         # salt("demo") % 600 = 596 s: the 30-min grid is xx:09:56 and xx:39:56 UTC; EDT is UTC-4.
         "fires": ["2026-03-28T02:09:56Z", "2026-03-28T02:39:56Z", "2026-03-28T03:09:56Z"]},
    ]


def test_preview_shows_each_time_trigger_of_a_task(runner, tmp_path):
    path = write(tmp_path, "support.yaml", """\
id: support
agents:
  - id: reviewer
    tasks:
      - slug: review
        triggers:
          - {type: event, event: case.created}
          - {type: schedule, cron: "0 9 * * 1-5"}
          - {type: heartbeat, interval_minutes: 30, skill: _internal_app_records, tool: query,
             params: {record_type: case}}
""")
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "demo", "--timezone", "Europe/Berlin",
                                 "--from", "2026-03-27T07:00:00Z", "--count", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        # 09:00 Berlin on weekdays: Friday the 27th (CET), then Monday the 30th (CEST).
        {"app": "support", "agent": "reviewer", "slug": "review", "trigger": "schedule", "timezone": "Europe/Berlin",
         "fires": ["2026-03-27T08:00:00Z", "2026-03-30T07:00:00Z"]},
        # The tenant's salted 30-minute grid (xx:09:56, xx:39:56 UTC), as for heartbeats.
        {"app": "support", "agent": "reviewer", "slug": "review", "trigger": "heartbeat", "timezone": "Europe/Berlin",
         "fires": ["2026-03-27T07:09:56Z", "2026-03-27T07:39:56Z"]},
    ]


def test_preview_uses_the_stored_tenant_timezone(runner, tmp_path):
    path = write(tmp_path, "ops.yaml", VALID)
    assert runner.invoke(cli, ["tenant", "set", "acme", "--timezone", "Asia/Kolkata"]).exit_code == 0
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "acme", "--from", "2026-11-22", "--count", "1", "--json"])
    assert result.exit_code == 0, result.output
    nightly = json.loads(result.output)[0]
    assert nightly["timezone"] == "Asia/Kolkata"
    assert nightly["fires"] == ["2026-11-22T21:00:00Z"]  # 02:30 IST on the 23rd


def test_preview_unknown_tenant_defaults_to_utc(runner, tmp_path):
    path = write(tmp_path, "ops.yaml", VALID)
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "nobody", "--from", "2026-11-22", "--count", "1", "--json"])
    assert json.loads(result.output)[0]["fires"] == ["2026-11-22T02:30:00Z"]


def test_preview_table(runner, tmp_path):
    path = write(tmp_path, "ops.yaml", VALID)
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "demo", "--from", "2026-11-22", "--count", "2"])
    assert result.exit_code == 0, result.output
    assert "ops/watcher/nightly" in result.output
    assert "2026-11-22T02:30:00Z" in result.output
    assert "daily 02:30" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--tenant", "Bad:Tenant"], "--tenant must be lowercase"),
    (["--tenant", "demo", "--timezone", "Mars/Olympus"], "--timezone: unknown timezone"),
    (["--tenant", "demo", "--from", "yesterday"], "--from: not an ISO 8601 time"),
])
def test_preview_bad_options(runner, tmp_path, args, message):
    path = write(tmp_path, "ops.yaml", VALID)
    result = runner.invoke(cli, ["preview", str(path), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_preview_invalid_manifest(runner, tmp_path):
    path = write(tmp_path, "bad.yaml", INVALID)
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "demo"])
    assert result.exit_code == 1
    assert "interval_minutes: must be between 5 and 43200 (got 2)" in result.output


def test_output_that_is_not_a_terminal_is_never_cut(runner, tmp_path):
    """Through a pipe (the runner is not a terminal) every cell of a table is whole: an id of 63
    characters per part, and the local-time column, all on the row's one line."""
    long = "a" + "b" * 62
    text = VALID.replace("id: ops", f"id: {long}").replace("- id: watcher", f"- id: {long}").replace(
        "slug: nightly", f"slug: {long}")
    path = write(tmp_path, "long.yaml", text)
    result = runner.invoke(cli, ["preview", str(path), "--tenant", "acme", "--timezone", "UTC",
                                 "--from", "2026-03-28T00:00:00Z", "--count", "2"])
    assert result.exit_code == 0, result.output
    name = f"{long}/{long}/{long}"
    [row] = [line for line in result.output.splitlines() if name in line]
    assert "2026-03-28T02:30:00Z" in row and "Sat 2026-03-28 02:30:00 UTC (UTC)" in row
    assert "…" not in result.output
