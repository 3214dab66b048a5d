"""One tool call of a state-machine transition (the MACHINE_CALL activity's logic).

    result = await run_machine_call(store, skills, request, now=datetime.now(UTC))

The tool is a built-in document tool (`create_document`, `load_document`, `update_document`) or a
registered skill's tool (`skill.tool`, or a skill named by itself). Error policy, as the agent's tool
calls but with no model to tell: what is wrong with the call itself (unknown tool, arguments the
schema refuses, the tool raising an ordinary exception, the store or a document schema refusing a
value, a result that is not JSON or is too big) fails it with the non-retryable type
MACHINE_TOOL_ERROR, and the transition takes its error path. Faults of the machinery (database,
connection, ApplicationErrors of a tool's own) propagate, so Temporal retries the activity within
the transition's retry policy.

Every call carries an idempotency key stable across retries (run, firing, call): a side-effecting
tool retried with the same key does its effect once, and a document write is kept once.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from temporalio.exceptions import ApplicationError

from activities.prefilter import INFRASTRUCTURE_ERRORS
from contract.errors import HeartbeatsError
from contract.machine import MACHINE_TOOL_ERROR, MAX_RESULT_BYTES, MachineCallRequest, MachineCallResult
from contract.ports import Workflows
from manifest.machines import BUILTIN_DOCUMENT_TOOLS
from skills.documents import run_document_tool
from skills.registry import SkillContext, SkillError, SkillRegistry, check_arguments
from store.errors import StoreError, VersionConflict
from store.store import Store

logger = logging.getLogger(__name__)


async def run_machine_call(store: Store, skills: SkillRegistry, request: MachineCallRequest, *, now: datetime,
                           workflows: Workflows | None = None) -> MachineCallResult:
    """Run the call; ApplicationError MACHINE_TOOL_ERROR for the call's own mistakes."""
    if request.tool in BUILTIN_DOCUMENT_TOOLS:
        try:
            result = await run_document_tool(store, tenant=request.tenant, app=request.app, tool=request.tool,
                                             arguments=request.arguments, documents=request.documents,
                                             idempotency_key=request.idempotency_key,
                                             created_by=request.workflow_id)
        except VersionConflict:
            raise  # other writers kept winning: the activity's next attempt reads again
        except (HeartbeatsError, StoreError) as exc:
            raise _refused(request, str(exc)) from None
        return _result(request, result)
    try:
        skill, spec = skills.workflow_tool(request.tool)
        arguments = check_arguments(spec, dict(request.arguments))
    except SkillError as exc:
        raise _refused(request, str(exc)) from None
    # The workflow stands where an agent would: skills that keep data per agent keep it under its name.
    ctx = SkillContext(store=store, tenant=request.tenant, app=request.app, agent=request.workflow, now=now,
                       idempotency_key=request.idempotency_key, workflow_id=request.workflow_id,
                       run_id=request.idempotency_key, workflows=workflows)
    try:
        result = await spec.handler(ctx, arguments)
    except (ApplicationError, *INFRASTRUCTURE_ERRORS):
        raise  # retryable faults of the machinery, or errors that carry their own type
    except (StoreError, HeartbeatsError) as exc:
        raise _refused(request, f"{skill}.{spec.name} refused: {exc}") from None
    except Exception as exc:
        raise _refused(request, f"{skill}.{spec.name} failed: {type(exc).__name__}: {exc}") from None
    return _result(request, result)


def _result(request: MachineCallRequest, result: object) -> MachineCallResult:
    try:
        text = json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _refused(request, f"{request.tool} returned a result that is not JSON: {exc}") from None
    if len(text.encode()) > MAX_RESULT_BYTES:
        raise _refused(request, f"{request.tool} returned {len(text.encode()):,} bytes; a call's result may be at most"
                                f" {MAX_RESULT_BYTES:,} (keep big data in a document and pass its name)")
    logger.info("%s: %s ok, %d chars", request.workflow_id, request.tool, len(text))
    return MachineCallResult(result=result)


def _refused(request: MachineCallRequest, message: str) -> ApplicationError:
    logger.info("%s: %s refused: %s", request.workflow_id, request.tool, message)
    return ApplicationError(message[:1_000], type=MACHINE_TOOL_ERROR, non_retryable=True)
