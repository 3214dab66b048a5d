"""Read a manifest file into an `AppManifest`, or into problems that name file, line and field.

The YAML is parsed with ruamel.yaml (YAML 1.2: `09:00` stays a string, `yes` is not a bool), which
keeps the line and column of every node. Validation errors from pydantic carry a location such as
`('agents', 0, 'heartbeats', 1, 'interval_minutes')`; we walk the parsed tree along it to find the
line to report. Hostile input is bounded before anything expensive happens: file size, nesting
depth and node count (alias expansion included, so a "billion laughs" file fails fast).
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from manifest.app import AppManifest
from manifest.models import AUTHORING, UNION_TAGS, HeartbeatSpec
from manifest.tasks import TRIGGER_TAGS, ScheduleTrigger, TaskSpec

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64

# Shorthand keys that stand in the file for the canonical field pydantic names.
SHORTHAND_FOR = {"cron_expression": "cron", "cooldown_seconds": "cooldown_minutes"}
SHORTHAND_KEYS = {HeartbeatSpec: ("cron", "cooldown_minutes"), TaskSpec: ("cooldown_minutes",), ScheduleTrigger: ("cron",)}
# Tags pydantic puts into error locations of tagged unions; dropped from the paths shown.
TAGS = UNION_TAGS | TRIGGER_TAGS


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, at a place in its file."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"


class ManifestError(ValueError):
    """A manifest that cannot be used; `problems` says every reason, with its place."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_manifest(path: str | Path) -> AppManifest:
    """Read and validate one manifest file; raise ManifestError listing every problem."""
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _fail(name, f"file is {size:,} bytes; a manifest may be at most {MAX_FILE_BYTES:,} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(name, f"cannot read file: {exc.strerror or exc}") from None
    return parse_manifest(raw, filename=name)


def parse_manifest(raw: bytes | str, *, filename: str = "<manifest>") -> AppManifest:
    """Validate manifest text; raise ManifestError listing every problem."""
    tree = _parse_yaml(raw, filename)
    plain = _to_plain(tree, filename)
    try:
        return AppManifest.model_validate(plain, context=AUTHORING)
    except ValidationError as exc:
        raise ManifestError(_problems_from(exc, tree, filename)) from None


def problem_at(path: str | Path, loc: tuple, message: str) -> Problem:
    """A problem found beyond the schema (e.g. install-time skill checks) at field `loc` of a
    manifest file that validated, with the same file:line:col as validation errors."""
    return locator(path)(loc, message)


def locator(path: str | Path) -> Callable[[tuple, str], Problem]:
    """`problem_at` for many problems of one file: the file is read and parsed once, not once per
    problem (a manifest with hundreds of problems would otherwise take minutes)."""
    name = str(path)
    tree = _parse_yaml(Path(path).read_bytes(), name)

    def at(loc: tuple, message: str) -> Problem:
        found = _file_path(tree, loc)
        line, column = _position(tree, found)
        return Problem(name, line, column, _format_path(found), message)

    return at


# --- YAML --------------------------------------------------------------------------------------


def _fail(filename: str, message: str, line: int = 1, column: int = 1, path: str = "(file)") -> ManifestError:
    return ManifestError([Problem(filename, line, column, path, message)])


def _parse_yaml(raw: bytes | str, filename: str) -> Any:
    if isinstance(raw, bytes):
        if len(raw) > MAX_FILE_BYTES:
            raise _fail(filename, f"file is {len(raw):,} bytes; a manifest may be at most {MAX_FILE_BYTES:,} bytes")
        if raw.startswith(b"\xef\xbb\xbf"):
            raise _fail(filename, "file starts with a byte-order mark; save it as UTF-8 without BOM")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise _fail(filename, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", line) from None
    else:
        text = raw
    if "\x00" in text:
        raise _fail(filename, "file contains NUL bytes; a manifest is YAML text")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _check_nesting(text, filename)
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part) + _opened_at(exc)
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "\t" in lines[mark.line][: len(lines[mark.line]) - len(lines[mark.line].lstrip())]:
            reason += " (a tab in the indentation: YAML indents with spaces only)"
        raise _fail(filename, f"YAML syntax error: {reason}", line, column, "(yaml)") from None
    except ManifestError:
        raise
    except (YAMLError, RecursionError, ValueError) as exc:
        raise _fail(filename, f"YAML error: {exc}", path="(yaml)") from None
    if tree is None:
        raise _fail(filename, "file is empty; a manifest is a mapping with id, name, version, agents", path="(manifest)")
    if not isinstance(tree, CommentedMap):
        raise _fail(filename, f"a manifest must be a mapping, not a {_kind(tree)}", path="(manifest)")
    return tree


def _opened_at(exc: MarkedYAMLError) -> str:
    """Where the construct being read began, when the parser noticed the error elsewhere: an
    unclosed `{`, `[` or quote is reported where parsing failed, often lines after it opened."""
    start, end = exc.context_mark, exc.problem_mark
    what = re.fullmatch(r"while \w+ an? (.+)", str(exc.context or ""))
    if not (what and start and end) or (start.line, start.column) == (end.line, end.column):
        return ""
    verb = "opened" if what[1].startswith(("flow ", "quoted ", "single-quoted ", "double-quoted ")) else "began"
    return f" (the {what[1]} {verb} at line {start.line + 1}, column {start.column + 1})"


def _check_nesting(text: str, filename: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before composing: ruamel's composer recurses per level,
    so a few KB of `[[[[...` would otherwise take seconds to end in a RecursionError. The event
    parser is iterative, and this pass stops at the first level too deep."""
    depth = 0
    for event in YAML(typ="rt").parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise _fail(filename, f"nested deeper than {MAX_DEPTH} levels", mark.line + 1, mark.column + 1, "(yaml)")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _to_plain(tree: Any, filename: str) -> Any:
    """ruamel's round-trip nodes as plain Python values, within the node and depth budgets."""
    budget = [MAX_NODES]

    def convert(node: Any, depth: int, where: tuple) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            line, column = _position(tree, where)
            raise _fail(filename, f"too many YAML nodes (more than {MAX_NODES:,}, aliases expanded)", line, column, "(yaml)")
        if depth > MAX_DEPTH:
            line, column = _position(tree, where)
            raise _fail(filename, f"nested deeper than {MAX_DEPTH} levels", line, column, _format_path(where))
        if isinstance(node, dict):
            result = {}
            for key, value in node.items():
                if not isinstance(key, str):
                    line, column = _position(tree, where, key_of=key)
                    raise _fail(filename, f"keys must be strings (got {key!r})", line, column, _format_path(where) or "(manifest)")
                result[key] = convert(value, depth + 1, (*where, key))
            return result
        if isinstance(node, list):
            return [convert(item, depth + 1, (*where, index)) for index, item in enumerate(node)]
        return _plain_scalar(node)

    return convert(tree, 0, ())


def _plain_scalar(value: Any) -> Any:
    # ruamel keeps bools as ScalarBoolean (an int), floats as ScalarFloat and strings as
    # str subclasses; pydantic's strict mode wants the plain types.
    if type(value).__name__ == "ScalarBoolean" or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


# --- locating errors ---------------------------------------------------------------------------


def _position(tree: Any, loc: tuple, *, key_of: Any = None, key_position: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the deepest node of `tree` that `loc` reaches."""
    node, line, column = tree, tree.lc.line, tree.lc.col
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and isinstance(part, str):
            key = _file_key(node, part)
            if key is None:
                break
            line, column = node.lc.key(key) if (last and key_position) else node.lc.value(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, column = node.lc.item(part)
            node = node[part]
        else:
            break
    if key_of is not None and isinstance(node, CommentedMap) and key_of in node:
        line, column = node.lc.key(key_of)
    return line + 1, column + 1


def _file_key(node: CommentedMap, field: str) -> str | None:
    """The key under which `field` appears in the file: itself, or its shorthand."""
    if field in node:
        return field
    shorthand = SHORTHAND_FOR.get(field)
    return shorthand if shorthand in node else None


def _file_path(tree: Any, loc: tuple) -> tuple:
    """`loc` with union tags dropped and canonical names replaced by the shorthand used."""
    node, parts = tree, []
    for part in loc:
        if isinstance(part, str) and part in TAGS and not (isinstance(node, CommentedMap) and part in node):
            continue
        if isinstance(node, CommentedMap) and isinstance(part, str):
            key = _file_key(node, part) or part
            parts.append(key)
            node = node.get(key)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(part)
            node = node[part]
        else:
            parts.append(part)
            node = None
    return tuple(parts)


def _format_path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems_from(exc: ValidationError, tree: Any, filename: str) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        context = error.get("ctx") or {}
        loc = (*error["loc"], *context.get("at", ()))
        loc = _file_path(tree, loc)
        unknown_key = error["type"] == "extra_forbidden"
        line, column = _position(tree, loc, key_position=unknown_key)
        message = _message(error, loc)
        problems.append(Problem(filename, line, column, _format_path(loc) or "(manifest)", message))
    # One line per place: pydantic can report the same place twice (e.g. both union branches).
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line, p.column))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: dict[str, Any], loc: tuple) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "manifest":
        return error["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field" + _did_you_mean(loc)
    if kind == "string_type":
        hint = f" (quote it: \"{value}\")" if isinstance(value, int | float) and not isinstance(value, bool) else ""
        return f"must be a string (got {_shown(value)}){hint}"
    if kind in ("int_type", "int_from_float"):
        return f"must be a whole number (got {_shown(value)})"
    if kind == "bool_type":
        return f"must be true or false (got {_shown(value)})"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']} (got {_shown(value)})"
    if kind in ("list_type",):
        return f"must be a list (got {_shown(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (got {_shown(value)})"
    if kind == "too_short" and isinstance(value, list):
        return "must not be empty"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"has an unexpected form (got {_shown(value)})"
    return error["msg"][0].lower() + error["msg"][1:]


def _did_you_mean(loc: tuple) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    known = [*model.model_fields, *SHORTHAND_KEYS.get(model, ())]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; allowed: {', '.join(known)}"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (list indices skipped)."""
    model: type[BaseModel] = AppManifest
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


__all__ = ["ManifestError", "Problem", "load_manifest", "locator", "parse_manifest", "problem_at"]
