"""JSON request bodies, read by the endpoints themselves (after authentication, not before it),
with errors that say what is wrong and where."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.errors import InvalidField, validation_message
from contract.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


def _refuse_constant(name: str) -> Any:
    # Python's json module takes NaN and Infinity; JSON has no such numbers.
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The JSON value of `raw`; InvalidInput saying where it stops being JSON."""
    try:
        text = raw.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259); no guessing at UTF-16
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput("the request body is empty; send a JSON object")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


async def json_object(request: Request) -> dict[str, Any]:
    """The request's body, which must be a JSON object."""
    value = parse_json(await request.body())
    if not isinstance(value, dict):
        raise InvalidInput(f"the request body must be a JSON object (got {_json_kind(value)})")
    return value


async def json_model(request: Request, model: type[Model]) -> tuple[Model, dict[str, Any]]:
    """The request's body checked against `model`: (the model, the JSON object it came from)."""
    value = await json_object(request)
    try:
        return model.model_validate(value), value
    except ValidationError as exc:
        message, field = validation_message(list(exc.errors()))
        if field is None:
            raise InvalidInput(message) from None
        raise InvalidField(field, message.removeprefix(f"{field}: ")) from None


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
