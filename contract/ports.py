"""What skills may ask of Temporal, as an interface: the tool-call activity passes an implementation
(runtime.workflows.TemporalWorkflows over the worker's client), so a skill never holds a client."""

from __future__ import annotations

from typing import Protocol

from contract.job import JobConfig
from contract.machine import MachineInput
from contract.task import DelegatedCase, TaskConfig


class Workflows(Protocol):
    async def start_job(self, config: JobConfig) -> None:
        """Start the runtime task's workflow (a second start of the same ID changes nothing)."""

    async def cancel(self, workflow_id: str) -> bool:
        """Ask the workflow to cancel; False when no such workflow is running."""

    async def start_machine(self, input: MachineInput) -> bool:
        """Start a state-machine run; False when a run with its ID was started before (nothing changes)."""

    async def delegate(self, config: TaskConfig, case: DelegatedCase) -> None:
        """Give the task a delegated case through its `a2a` trigger (starting its workflow if needed)."""
