"""Worker tuning from the environment: production defaults, and a clear error for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.errors import HeartbeatsError
from worker import DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_MAX_CONCURRENT_LLM_CALLS, WorkerSettings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_run_unsandboxed_with_a_cache_for_every_heartbeat() -> None:
    settings = WorkerSettings.from_env({})
    assert settings == WorkerSettings(sandboxed=False, max_cached_workflows=DEFAULT_MAX_CACHED_WORKFLOWS)
    assert DEFAULT_MAX_CACHED_WORKFLOWS > 1000  # above the SDK default: heartbeats should never miss it


@pytest.mark.parametrize(("value", "sandboxed"), [("on", True), ("ON ", True), ("1", True), ("true", True),
                                                  ("off", False), ("0", False), ("false", False)])
def test_sandbox_switch(value: str, sandboxed: bool) -> None:
    assert WorkerSettings.from_env({"HEARTBEATS_WORKFLOW_SANDBOX": value}).sandboxed is sandboxed


def test_cache_size_is_read() -> None:
    assert WorkerSettings.from_env({"HEARTBEATS_MAX_CACHED_WORKFLOWS": "2500"}).max_cached_workflows == 2500


def test_llm_calls_at_once_are_read() -> None:
    assert WorkerSettings.from_env({}).max_concurrent_llm_calls == DEFAULT_MAX_CONCURRENT_LLM_CALLS
    assert WorkerSettings.from_env({"HEARTBEATS_MAX_CONCURRENT_LLM_CALLS": "20"}).max_concurrent_llm_calls == 20


@pytest.mark.parametrize(("name", "value", "message"), [
    ("HEARTBEATS_WORKFLOW_SANDBOX", "maybe", "expected on or off (got 'maybe')"),
    ("HEARTBEATS_MAX_CACHED_WORKFLOWS", "1", "expected a whole number >= 2 (got '1')"),
    ("HEARTBEATS_MAX_CACHED_WORKFLOWS", "lots", "expected a whole number >= 2 (got 'lots')"),
    ("HEARTBEATS_MAX_CACHED_WORKFLOWS", "-5", "expected a whole number >= 2 (got '-5')"),
    ("HEARTBEATS_MAX_CONCURRENT_LLM_CALLS", "0", "expected a whole number >= 1 (got '0')"),
    ("HEARTBEATS_MAX_CONCURRENT_LLM_CALLS", "many", "expected a whole number >= 1 (got 'many')"),
])
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(HeartbeatsError) as raised:
        WorkerSettings.from_env({name: value})
    assert str(raised.value) == f"{name}: {message}"


@pytest.mark.parametrize("command", [[sys.executable, "worker.py"], [str(Path(sys.executable).parent / "heartbeats"), "worker"]])
def test_a_bad_setting_stops_the_worker_before_it_connects(command: list[str]) -> None:
    # Port 1 refuses connections: reaching it would print a connection error instead.
    env = {**os.environ, "HEARTBEATS_WORKFLOW_SANDBOX": "maybe", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: HEARTBEATS_WORKFLOW_SANDBOX: expected on or off (got 'maybe')"
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unknown_role_is_refused_before_anything_connects() -> None:
    heartbeats = str(Path(sys.executable).parent / "heartbeats")
    env = {**os.environ, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run([heartbeats, "worker", "--role", "activities"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "'activities' is not one of 'all', 'workflows', 'llm'" in done.stderr
