"""The built-in document tools of state-machine workflows: create_document, load_document, update_document.

The workflow interpreter's tool activity calls `run_document_tool` for a call of one of them, with the
app's declared documents (name → JSON Schema) and the call's idempotency key:

    result = await run_document_tool(
        store, tenant="acme", app="billing", tool="update_document",
        arguments={"document": "invoice", "update": {"status": "paid"}},
        documents={"invoice": {"type": "object", "required": ["status"]}},
        idempotency_key="machine:acme:billing:inv-7/pay/0", created_by="machine:acme:billing:inv-7")
    # {"document": "invoice", "version": 3, "content": {...}, "created_at": "2026-12-08T09:00:00.123456Z"}

Arguments (the names of the source spec):
    create_document  {document: NAME, update: {...}}   (`content:` is a synonym of `update:`; neither: {})
                     a new version whose content is exactly that object (1 when new, else the next)
    update_document  {document: NAME, update: {...}}   the latest content shallow-merged with `update`
                     (top-level keys replaced whole; a key set to null stays, as null)
    load_document    {where: {name: NAME, version?: N}} or {document: NAME, version?: N}   (latest if no N)

The content to write is checked against the document's schema (draft 2020-12) before anything is
written. An undeclared document, bad arguments or content the schema refuses raise DocumentError (an
InvalidInput: retrying cannot help); a document or version that does not exist raises
DocumentNotFound (a DocumentError and a NotFound). A write is idempotent per key: a retried call
returns the version its first attempt wrote. An update that keeps losing to concurrent writers
raises VersionConflict (a Conflict: a retry may succeed).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.exceptions import ValidationError

from contract.errors import InvalidInput, NotFound
from manifest.machines import BUILTIN_DOCUMENT_TOOLS
from store.errors import StoreError, VersionConflict
from store.models import Document
from store.store import Areas
from store.types import iso_z

DOCUMENT_TOOLS: tuple[str, ...] = BUILTIN_DOCUMENT_TOOLS
CREATE, LOAD, UPDATE = "create_document", "load_document", "update_document"

# Each failed attempt means another writer's update landed in between; beyond this many the document
# is too busy for this call (its activity retries later).
MAX_UPDATE_ATTEMPTS = 10
# Schema problems named in one error, and the length of each (jsonschema quotes whole values).
MAX_SCHEMA_PROBLEMS = 3
MAX_PROBLEM_CHARS = 300

_ARGUMENTS = {
    CREATE: ("document", "update", "content"),
    UPDATE: ("document", "update"),
    LOAD: ("document", "version", "where"),
}


class DocumentError(InvalidInput):
    """A document tool call that cannot succeed as written; the message says what to fix."""


class DocumentNotFound(DocumentError, NotFound):
    """The document (or the version) the call names has not been written yet."""


async def run_document_tool(
    store: Areas,
    *,
    tenant: str,
    app: str,
    tool: str,
    arguments: dict[str, Any],
    documents: dict[str, dict[str, Any]],
    idempotency_key: str | None,
    created_by: str = "",
) -> dict[str, Any]:
    """Run one document tool call for the tenant's app; its JSON result (see the module docstring)."""
    if tool not in DOCUMENT_TOOLS:
        raise DocumentError(f"{tool!r} is not a document tool (they are: {', '.join(DOCUMENT_TOOLS)})")
    if not isinstance(arguments, dict):
        raise DocumentError(f"{tool}: arguments must be an object (got {type(arguments).__name__})")
    unknown = sorted(set(arguments) - set(_ARGUMENTS[tool]))
    if unknown:
        raise DocumentError(f"{tool}: unknown argument(s) {', '.join(unknown)}"
                            f" (it takes: {', '.join(_ARGUMENTS[tool])})")
    try:
        if tool == LOAD:
            return _result(await _load(store, tenant, app, arguments, documents))
        call = _Write(store, tenant, app, tool, documents, idempotency_key, created_by)
        return _result(await (call.create(arguments) if tool == CREATE else call.update(arguments)))
    except StoreError as exc:  # the store's own checks (ids, size, NUL characters, a reused key)
        raise DocumentError(f"{tool}: {exc}") from None


def _result(document: Document) -> dict[str, Any]:
    return {"document": document.name, "version": document.version, "content": document.content,
            "created_at": iso_z(document.created_at)}


# ------------------------------------------------------------------------------------------ load


async def _load(store: Areas, tenant: str, app: str, arguments: dict[str, Any],
                documents: dict[str, dict[str, Any]]) -> Document:
    if "where" in arguments:
        where = arguments["where"]
        if not isinstance(where, dict):
            raise DocumentError(f"{LOAD}: where must be an object {{name: NAME, version?: N}}"
                                f" (got {type(where).__name__})")
        if "document" in arguments or "version" in arguments:
            raise DocumentError(f"{LOAD}: give where: {{name, version?}} or document: (and version:), not both")
        extra = sorted(set(where) - {"name", "version"})
        if extra:
            raise DocumentError(f"{LOAD}: where: unknown key(s) {', '.join(extra)} (it takes: name, version)")
        name = _declared(LOAD, where.get("name"), documents, what="where.name")
        version = _version(where.get("version"), "where.version")
    else:
        name = _declared(LOAD, arguments.get("document"), documents)
        version = _version(arguments.get("version"), "version")
    found = await store.documents.get(tenant=tenant, app=app, name=name, version=version)
    if found is not None:
        return found
    if version is None:
        raise DocumentNotFound(f"{LOAD}: document {name!r} has no version yet (create it with {CREATE})")
    latest = await store.documents.get(tenant=tenant, app=app, name=name)
    have = f"its latest is {latest.version}" if latest is not None else "it has no version yet"
    raise DocumentNotFound(f"{LOAD}: document {name!r} has no version {version} ({have})")


def _version(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DocumentError(f"{LOAD}: {what} must be a positive whole number (got {value!r})")
    return value


# ---------------------------------------------------------------------------------------- writes


class _Write:
    """One create_document or update_document call."""

    def __init__(self, store: Areas, tenant: str, app: str, tool: str, documents: dict[str, dict[str, Any]],
                 idempotency_key: str | None, created_by: str) -> None:
        self.store, self.tenant, self.app, self.tool = store, tenant, app, tool
        self.documents, self.key, self.created_by = documents, idempotency_key, created_by

    async def create(self, arguments: dict[str, Any]) -> Document:
        name = _declared(CREATE, arguments.get("document"), self.documents)
        if "update" in arguments and "content" in arguments:
            raise DocumentError(f"{CREATE}: give update: or content: (the same thing), not both")
        content = _object(CREATE, arguments.get("update", arguments.get("content", {})),
                          "update" if "update" in arguments else "content")
        done = await self._done_before(name)
        if done is not None:
            return done
        _validate(CREATE, name, self.documents[name], content)
        return await self._write(name, content, expected_latest=None)

    async def update(self, arguments: dict[str, Any]) -> Document:
        name = _declared(UPDATE, arguments.get("document"), self.documents)
        if "update" not in arguments:
            raise DocumentError(f"{UPDATE}: update: {{...}} is required (the fields to change)")
        changes = _object(UPDATE, arguments["update"], "update")
        done = await self._done_before(name)
        if done is not None:
            return done
        for _ in range(MAX_UPDATE_ATTEMPTS):
            latest = await self.store.documents.get(tenant=self.tenant, app=self.app, name=name)
            if latest is None:
                raise DocumentNotFound(f"{UPDATE}: document {name!r} has no version yet (create it with {CREATE})")
            merged = {**latest.content, **changes}
            _validate(UPDATE, name, self.documents[name], merged)
            try:
                # Only on top of the version merged into: another writer's version is never lost.
                return await self._write(name, merged, expected_latest=latest.version)
            except VersionConflict:
                continue
        raise VersionConflict(f"{UPDATE}: document {name!r} was written by others {MAX_UPDATE_ATTEMPTS} times"
                              " while this update was being made; try again", latest=latest.version)

    async def _done_before(self, name: str) -> Document | None:
        """The version a first attempt of this call wrote (the call is a retry), else None."""
        if self.key is None:
            return None
        found = await self.store.documents.by_idempotency_key(tenant=self.tenant, app=self.app,
                                                              idempotency_key=self.key)
        if found is not None and found.name != name:
            raise DocumentError(f"{self.tool}: idempotency key {self.key!r} was used already for document"
                                f" {found.name!r} (version {found.version})")
        return found

    async def _write(self, name: str, content: dict[str, Any], *, expected_latest: int | None) -> Document:
        return await self.store.documents.write(tenant=self.tenant, app=self.app, name=name, content=content,
                                                created_by=self.created_by, idempotency_key=self.key,
                                                expected_latest=expected_latest)


# -------------------------------------------------------------------------------------- checks


def _declared(tool: str, name: Any, documents: dict[str, dict[str, Any]], *, what: str = "document") -> str:
    declared = ", ".join(sorted(documents)) or "none"
    if name is None:
        raise DocumentError(f"{tool}: {what}: NAME is required (declared documents: {declared})")
    if not isinstance(name, str):
        raise DocumentError(f"{tool}: {what} must be a document name (got {type(name).__name__})")
    if name not in documents:
        raise DocumentError(f"{tool}: no document {name!r} is declared under documents: (declared: {declared})")
    return name


def _object(tool: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DocumentError(f"{tool}: {what} must be an object of fields (got {type(value).__name__})")
    return value


def _validate(tool: str, name: str, schema: dict[str, Any] | None, content: dict[str, Any]) -> None:
    """Raise DocumentError naming where `content` breaks the document's schema."""
    validator = _validator(json.dumps(schema or {}, sort_keys=True))
    if isinstance(validator, str):
        raise DocumentError(f"{tool}: the schema of document {name!r} {validator}")
    problems = sorted(validator.iter_errors(content), key=lambda error: [str(part) for part in error.absolute_path])
    if problems:
        shown = "; ".join(f"{_where(error)}: {_short(error.message)}" for error in problems[:MAX_SCHEMA_PROBLEMS])
        more = f" (and {len(problems) - MAX_SCHEMA_PROBLEMS} more)" if len(problems) > MAX_SCHEMA_PROBLEMS else ""
        raise DocumentError(f"{tool}: content of document {name!r} does not match its schema, nothing written:"
                            f" {shown}{more}")


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator | str:
    """The validator of a schema (by its canonical JSON), or why the schema is not one."""
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"is not a valid JSON Schema: {_short(exc.message)}"
    return Draft202012Validator(schema)


def _where(error: ValidationError) -> str:
    """`content`, `content.customer.email`, `content.lines[0].sku`: the field the error is about."""
    where = "content"
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where


def _short(message: str) -> str:
    return message if len(message) <= MAX_PROBLEM_CHARS else message[: MAX_PROBLEM_CHARS - 1] + "…"
