"""The hostile input corpus: every file under tests/hostile/ is refused, fast, with a located message,
and `heartbeats install` of it installs nothing (and never needs Temporal to say so).

Each corpus file's first line is its expectation, the table this test reads:

    # expect: agents[0].heartbeats[0].interval_minutes: must be between 5 and 43200
    # expect-install: agents[0].heartbeats[0].skill: kv.set is MEDIUM risk

`expect` cases are refused by `manifest.loader.load_manifest` itself; `expect-install` cases are valid
manifests the skill registry refuses at install (a non-LOW pre-filter tool, an unregistered skill), or
the static checks of state-machine workflows do (a place never reached, an `extends` cycle). A
path ending in `*` matches as a prefix. A line carrying `#!` is the line the problem must be reported at.
A few cases are generated here rather than committed: a 10 MB file, non-UTF-8 bytes, a BOM, NUL bytes,
an alias bomb far larger than the committed one, and a file nested thousands of levels deep.
"""

from __future__ import annotations

import asyncio
import re
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from client.checks import ManifestsInvalid, load_manifests
from manifest.loader import ManifestError, load_manifest
from store import open_store
from tests.temporal_env import free_port as closed_port  # a port nothing listens on

CORPUS = Path(__file__).resolve().parent / "hostile"
EXPECT = re.compile(r"# (expect|expect-install): (\S+): (.+)")
MAX_SECONDS = 2.0  # per file, loading and validating
MAX_PEAK_BYTES = 64 * 1024 * 1024  # Python allocations while refusing one file


@dataclass(frozen=True)
class Case:
    file: Path
    stage: str  # "expect" (the loader refuses it) or "expect-install" (the registry does)
    path: str
    message: str
    line: int | None  # the `#!` line, when the case marks one


def read_case(file: Path, raw: bytes | None = None) -> Case:
    raw = raw if raw is not None else file.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    first = text.splitlines()[0]
    match = EXPECT.fullmatch(first)
    assert match, f"{file.name}: first line must be '# expect: PATH: MESSAGE', got {first!r}"
    marked = [n for n, line in enumerate(text.splitlines(), start=1) if "#!" in line]
    return Case(file, match[1], match[2], match[3], marked[0] if marked else None)


CASES = [read_case(file) for file in sorted(CORPUS.glob("*.yaml"))]


def test_the_corpus_has_at_least_60_cases():
    assert len(CASES) >= 60
    assert len({case.file.stem for case in CASES}) == len(CASES)


def path_matches(expected: str, actual: str) -> bool:
    return actual.startswith(expected[:-1]) if expected.endswith("*") else actual == expected


def refused(file: Path) -> tuple[list[str], float, int]:
    """The problem lines install would print for `file`, the seconds taken and the peak Python
    allocation (measured in a second run: tracemalloc slows allocation-heavy code severalfold)."""

    def attempt() -> list[str]:
        try:
            load_manifests([file])
        except ManifestsInvalid as exc:
            return exc.problems
        raise AssertionError(f"{file.name} was accepted")

    started = time.perf_counter()
    lines = attempt()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        attempt()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return lines, elapsed, peak


def check_refusal(case: Case, file: Path) -> None:
    if case.stage == "expect":
        with pytest.raises(ManifestError) as caught:
            load_manifest(file)
        problems = caught.value.problems
        found = [p for p in problems if path_matches(case.path, p.path) and case.message in p.message]
        assert found, f"{file.name}: no problem at {case.path} containing {case.message!r}; got:\n{caught.value}"
        assert found[0].file == str(file)
        if case.line is not None:
            assert found[0].line == case.line, f"{file.name}: reported line {found[0].line}, marked {case.line}"
    else:
        load_manifest(file)  # valid as a manifest; the registry refuses it

    lines, elapsed, peak = refused(file)
    pattern = re.compile(rf"{re.escape(str(file))}:(\d+):(\d+): (\S+): (.*)")
    located = [(m, int(m[1])) for m in map(pattern.fullmatch, lines) if m]
    assert located and len(located) == len(lines), f"{file.name}: every problem names file:line:col: {lines}"
    matching = [(m, line) for m, line in located if path_matches(case.path, m[3]) and case.message in m[4]]
    assert matching, f"{file.name}: install would print {lines}"
    if case.line is not None:
        assert matching[0][1] == case.line
    assert elapsed < MAX_SECONDS, f"{file.name}: {elapsed:.2f}s"
    assert peak < MAX_PEAK_BYTES, f"{file.name}: peak {peak:,} bytes"


@pytest.mark.parametrize("case", CASES, ids=[case.file.stem for case in CASES])
def test_corpus_file_is_refused_with_file_line_and_field(case: Case):
    check_refusal(case, case.file)


# --- generated at test time ------------------------------------------------------------------

VALID_TAIL = b"""id: sales
agents:
  - id: outreach
    heartbeats:
      - slug: daily
        skill: _internal_app_records
        tool: query
        params: {record_type: campaign}
        interval_minutes: 60
"""


def big_alias_bomb() -> bytes:
    # 10^12 nodes when expanded: the node budget must stop it long before that.
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]" for i in range(1, 12)]
    return ("# expect: (yaml): too many YAML nodes\n" + "\n".join(lines) + "\nid: sales\nagents: [*a11]\n").encode()


GENERATED = {
    "ten-megabytes": b"# expect: (file): a manifest may be at most 1,048,576 bytes\n" + VALID_TAIL
    + b"# padding padding padding padding padding padding padding padding padding padding\n" * 130_000,
    "non-utf8": b"# expect: (file): not UTF-8 text (byte 0xff\nid: sales\nname: \xff\xfe #!\n" + VALID_TAIL[10:],
    "latin1-name": b"# expect: (file): not UTF-8 text (byte 0xe9\nid: sales\nname: caf\xe9 #!\n" + VALID_TAIL[10:],
    "utf16": b"# expect: (file): not UTF-8 text\n" + VALID_TAIL.decode().encode("utf-16"),
    "bom": b"\xef\xbb\xbf# expect: (file): byte-order mark\n" + VALID_TAIL,
    "nul-bytes": b"# expect: (file): NUL bytes\n" + VALID_TAIL + b"\x00\n",
    "alias-bomb-huge": big_alias_bomb(),
    # Refused before composing (ruamel's composer recurses once per level).
    "deep-flow-nesting": b"# expect: (yaml): nested deeper than 64 levels\nid: sales\nagents: " + b"[" * 5000
    + b"]" * 5000 + b" #!\n",
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_hostile_file_is_refused(tmp_path, name):
    file = tmp_path / f"{name}.yaml"
    raw = GENERATED[name]
    file.write_bytes(raw)
    case = read_case(file, raw.removeprefix(b"\xef\xbb\xbf") if name != "utf16" else raw)
    if name == "ten-megabytes":
        assert file.stat().st_size >= 10 * 1024 * 1024
    with pytest.raises(ManifestError) as caught:
        load_manifest(file)
    problems = caught.value.problems
    assert any(case.message in p.message for p in problems), str(caught.value)
    assert any(path_matches(case.path, p.path) for p in problems), str(caught.value)
    if case.line is not None:
        assert problems[0].line == case.line
    lines, elapsed, peak = refused(file)
    assert all(line.startswith(f"{file}:") for line in lines), lines
    assert elapsed < MAX_SECONDS, f"{name}: {elapsed:.2f}s"
    assert peak < MAX_PEAK_BYTES, f"{name}: peak {peak:,} bytes"


# --- `heartbeats install` of every hostile file installs nothing ------------------------------



@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """The CLI on a fresh SQLite store with tenant `acme`, and Temporal pointed at a closed port:
    a refusal that needed Temporal would fail with a connection error instead of the expected one."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HEARTBEATS_DATABASE_URL", url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(cli, ["tenant", "set", "acme"])
    assert result.exit_code == 0, result.output
    return url


def installed_apps(url: str) -> list:
    async def read():
        store = await open_store(url)
        try:
            return await store.apps.list(tenant="acme", include_uninstalled=True)
        finally:
            await store.close()

    return asyncio.run(read())


def test_install_of_every_hostile_file_installs_nothing(tmp_path, cli_env):
    files = [case.file for case in CASES]
    for name, raw in GENERATED.items():
        (tmp_path / f"{name}.yaml").write_bytes(raw)
        files.append(tmp_path / f"{name}.yaml")
    runner = CliRunner()
    for file in files:
        result = runner.invoke(cli, ["install", str(file), "--tenant", "acme"])
        assert result.exit_code == 1, f"{file.name}: {result.output}"
        assert "nothing installed" in result.output, f"{file.name}: {result.output}"
        assert f"{file}:" in result.output
        assert "Traceback" not in result.output and "connect" not in result.output.lower()
    assert installed_apps(cli_env) == []


def test_validate_refuses_every_hostile_file_that_install_refuses(tmp_path):
    """`validate` runs every check `install` runs that needs no server: the registry's refusals
    (a HIGH-risk pre-filter, an unregistered skill) too, with the same file:line:col line."""
    runner = CliRunner()
    for case in CASES:
        result = runner.invoke(cli, ["validate", str(case.file)])
        assert result.exit_code == 1, f"{case.file.name}: {result.output}"
        pattern = re.compile(rf"{re.escape(str(case.file))}:(\d+):\d+: (\S+): (.*)")
        located = [m for m in map(pattern.fullmatch, result.output.splitlines()) if m]
        assert any(path_matches(case.path, m[2]) and case.message in m[3] for m in located), \
            f"{case.file.name}: {result.output}"
        if case.line is not None:
            assert any(int(m[1]) == case.line for m in located), f"{case.file.name}: {result.output}"
        assert ": ok," not in result.output
    assert any(case.stage == "expect-install" for case in CASES)


# --- bad CLI input -----------------------------------------------------------------------------

VALID_FILE = Path(__file__).resolve().parent.parent / "manifests" / "sales.yaml"


@pytest.mark.parametrize(("args", "message"), [
    (["records", "put", "--tenant", "acme", "--app", "sales", "--type", "lead", "--data", "{not json"],
     "--data is not valid JSON"),
    (["records", "put", "--tenant", "acme", "--app", "sales", "--type", "lead", "--data", "[1, 2]"],
     "--data must be a JSON object"),
    (["records", "put", "--tenant", "acme", "--app", "sales", "--type", "lead", "--data", "\"\\ud800\""],
     "--data must be a JSON object"),
    (["records", "put", "--tenant", "ghost", "--app", "sales", "--type", "lead", "--data", "{}"], "unknown tenant 'ghost'"),
    (["install", str(VALID_FILE), "--tenant", "ghost"], "unknown tenant 'ghost'"),
    (["install", str(VALID_FILE), "--tenant", "Acme"], "--tenant must be lowercase"),
    (["install", str(VALID_FILE), "--tenant", "acme:eu"], "--tenant must be lowercase"),
    (["uninstall", "sales", "--tenant", "ghost"], "ghost"),
    (["status", "heartbeat:acme:sales"], "heartbeat:"),
    (["status", "workflow-123"], "heartbeat:"),
    (["run-now", "heartbeat:Acme:sales:outreach:daily"], "heartbeat:"),
    (["runs", "heartbeat:acme:sales:outreach:nosuch"], "nosuch"),
    (["pause", "heartbeat:acme:sales:outreach:daily:extra"], "heartbeat:"),
])
def test_bad_cli_input_is_one_clear_line_and_changes_nothing(cli_env, args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert installed_apps(cli_env) == []
