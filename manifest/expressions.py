"""`${ ... }` expressions in state-machine workflows, in CEL (the Common Expression Language).

    render({"source": "${ context.variables.DOC }", "note": "for ${ NAME }"}, scope)
    truthy("${ size(ITEMS) > 0 }", scope)
    free_names("context.variables.DOC + X")      # {"context", "X"}

CEL (via cel-python) because it cannot loop forever, call out, read the clock or the environment:
an expression is a pure function of its scope, so a workflow evaluates it in its own code and a
replay computes the same value. Never `eval`.

A value that is one whole `${ expr }` becomes the expression's value with its JSON type (a list
stays a list); `${ }` inside a longer string is interpolated as text (strings as they are, other
values as compact JSON). The scope maps names (`context`, `options`, `transition`, the `as`
variables) to JSON values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError

OPEN = "${"
MAX_EXPRESSION_CHARS = 2_000
# Levels of the parse tree (a bracket is ~11, an operator in a chain ~2): celpy evaluates by recursion,
# and an expression much deeper than this fails on every evaluation with a RecursionError.
MAX_EXPRESSION_DEPTH = 250
# The comprehension macros bind their first argument: `ITEMS.map(x, x.name)` reads ITEMS, not x.
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
_WHOLE = re.compile(r"\s*\$\{(.*)\}\s*", re.DOTALL)


class ExpressionError(ValueError):
    """An expression that does not parse, or that fails on its scope (a missing key, a type error)."""


def templates(text: str) -> list[str]:
    """The sources of every `${ ... }` in `text`, in order; ExpressionError for an unclosed one.

    Braces inside the expression (a CEL map literal) and quoted strings are skipped over."""
    found, index = [], text.find(OPEN)
    while index != -1:
        end = _closing(text, index + len(OPEN))
        if end is None:
            raise ExpressionError(f"`${{` at character {index + 1} is never closed with `}}`")
        found.append(text[index + len(OPEN): end])
        index = text.find(OPEN, end + 1)
    return found


def _closing(text: str, start: int) -> int | None:
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    return None


def sources_in(value: Any) -> list[str]:
    """Every expression source in a JSON value (strings inside lists and mappings included)."""
    return [source for _, text in strings_in(value) for source in templates(text)]


def strings_in(value: Any, at: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """(where, text) of every string holding `${` in a JSON value: `where` is the keys and indexes
    leading to it, so a problem can name the very field."""
    if isinstance(value, str):
        return [(at, value)] if OPEN in value else []
    if isinstance(value, Mapping):
        return [found for key, item in value.items() for found in strings_in(item, (*at, key))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in strings_in(item, (*at, index))]
    return []


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()  # builds the CEL grammar once per process (~0.3 s)


@lru_cache(maxsize=4096)
def _compiled(source: str) -> tuple[Any, Any]:
    """(parse tree, program) of one expression; ExpressionError when it does not parse."""
    text = source.strip()
    if not text:
        raise ExpressionError("`${ }` is empty: write an expression such as ${ context.variables.NAME }")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"an expression may be at most {MAX_EXPRESSION_CHARS} characters (got {len(text)})")
    environment = _environment()
    try:
        tree = environment.compile(text)
    except CELParseError as exc:
        column = getattr(exc, "column", None)
        where = f"unexpected input at character {column}" if column else "syntax error"
        raise ExpressionError(f"`${{ {text} }}` does not parse as CEL: {where}") from None
    except RecursionError:
        raise ExpressionError(f"`${{ {text[:60]} }}` is nested too deeply") from None
    if _depth(tree) > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"`${{ {text[:60]}{'...' if len(text) > 60 else ''} }}` is nested too deeply to"
                              " evaluate: use fewer brackets or shorter operator chains, or compute it in steps"
                              " (a call's `as`)")
    return tree, environment.program(tree)


def _depth(tree: Any) -> int:
    """Levels of a parse tree, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in getattr(node, "children", ()) if hasattr(child, "children"))
    return deepest


def check(source: str) -> None:
    """ExpressionError when `source` does not parse."""
    _compiled(source)


def free_names(source: str) -> set[str]:
    """The names an expression reads from its scope: the roots of `a.b.c`, not the variables a
    macro binds (`x` in `ITEMS.map(x, x.name)`, within the macro only), nor function names."""
    tree, _ = _compiled(source)
    names: set[str] = set()
    stack: list[tuple[Any, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, bound = stack.pop()
        if node.data in ("ident", "dot_ident"):
            name = str(node.children[0])
            if node.data == "dot_ident" or name not in bound:
                names.add(name)
            continue
        children = [child for child in node.children if hasattr(child, "children")]
        if node.data == "member_dot_arg" and str(node.children[1]) in _MACROS and len(node.children) > 2 \
                and node.children[2] is not None and len(node.children[2].children) > 1:
            target, (variable, *rest) = node.children[0], node.children[2].children
            inner = bound | {str(ident.children[0]) for ident in variable.iter_subtrees() if ident.data == "ident"}
            stack.append((target, bound))
            stack.extend((argument, inner) for argument in rest)
            continue
        stack.extend((child, bound) for child in children)
    return names


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """The JSON value of one expression over `scope`; ExpressionError when it fails."""
    _, program = _compiled(source)
    names = free_names(source)
    activation = {name: celpy.json_to_cel(scope[name]) for name in names if name in scope}
    missing = sorted(name for name in names if name not in scope)
    if missing:
        raise ExpressionError(f"`${{ {source.strip()} }}`: no variable {', '.join(map(repr, missing))}"
                              f" (defined: {', '.join(sorted(scope)) or 'none'})")
    try:
        result = program.evaluate(activation)
    except celpy.CELEvalError as exc:
        raise ExpressionError(f"`${{ {source.strip()} }}` failed: {_reason(exc)}") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise ExpressionError(f"`${{ {source.strip()} }}` failed: {exc}") from None
    if isinstance(result, celpy.CELEvalError):
        raise ExpressionError(f"`${{ {source.strip()} }}` failed: {_reason(result)}")
    return to_json(result)


def _reason(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """`value` (JSON: the `arguments` of a call) with every expression in it evaluated."""
    if isinstance(value, str):
        if OPEN not in value:
            return value
        whole = _WHOLE.fullmatch(value)
        if whole is not None and templates(value) == [whole.group(1)]:
            return evaluate(whole.group(1), scope)
        return _interpolate(value, scope)
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value


def _interpolate(text: str, scope: Mapping[str, Any]) -> str:
    parts, index = [], 0
    while (start := text.find(OPEN, index)) != -1:
        end = _closing(text, start + len(OPEN))
        if end is None:
            raise ExpressionError(f"`${{` at character {start + 1} is never closed with `}}`")
        value = evaluate(text[start + len(OPEN): end], scope)
        parts += [text[index:start], value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))]
        index = end + 1
    return "".join(parts) + text[index:]


def truthy(text: str, scope: Mapping[str, Any]) -> bool:
    """A guard (`when: ${ expr }`): its value must be a boolean."""
    value = render(text, scope)
    if not isinstance(value, bool):
        raise ExpressionError(f"{text.strip()} must be true or false (got {json.dumps(value)[:60]})")
    return value


def to_json(value: Any) -> Any:
    """A CEL value as plain JSON (bools before ints: CEL's BoolType is an int)."""
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if value is None or isinstance(value, celtypes.NullType):
        return None
    if isinstance(value, celtypes.TimestampType | datetime):
        return value.isoformat()
    if isinstance(value, celtypes.DurationType | timedelta):
        return value.total_seconds()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {str(to_json(key)): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    raise ExpressionError(f"an expression produced a {type(value).__name__}, which is not JSON")


__all__ = ["ExpressionError", "check", "evaluate", "free_names", "render", "sources_in", "strings_in", "templates",
           "to_json", "truthy"]
