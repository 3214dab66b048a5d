"""The static checks of an app's state-machine workflows: what the graph and its expressions get wrong.

    for found in workflow_problems(manifest): print(found.at, found.message, found.warning)

Each problem names the field it is about (`at`, a path into the manifest file: in a workflow that
`extends` a template, into whichever of them writes the field) so the CLI can show file:line:col.
The checks, per workflow as resolved against its template:

- `extends` names a workflow of the app, without a cycle; an override names a transition the
  template has; transition names are unique;
- places: `from` names a place some transition reaches (or `start`); with `places:` declared,
  every `from`, `to`, `onError` and `on_deadline` is one of them; nothing leaves `end`;
- every place is reachable from `start`, and `end` is reachable from every place;
- every `${ }` parses, and reads only `context`, `options`, `transition`, `error`, the `foreach`
  item where it repeats (and a `compensate`'s `result`), and `as` variables set on *every* path to
  it (a must-be-defined analysis over the graph: a variable set by one branch only is not defined
  after the branches meet);
- an `agent:` call names an agent of the app; a document tool names a declared document;
- a manual transition without `payload_schema` is a warning: its payload is taken unchecked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from manifest.app import AppManifest
from manifest.expressions import ExpressionError, free_names, strings_in, templates
from manifest.machines import (
    BUILTIN_DOCUMENT_TOOLS,
    COMPENSATE_RESULT,
    END,
    SCOPE_NAMES,
    START,
    CallSpec,
    TemplateError,
    TransitionSpec,
    WorkflowSpec,
    resolve_workflow,
)


@dataclass(frozen=True)
class WorkflowProblem:
    at: tuple[str | int, ...]
    message: str
    warning: bool = False


def workflow_problems(manifest: AppManifest) -> list[WorkflowProblem]:
    """Every problem (and warning) of every workflow of the app, in manifest order."""
    found: list[WorkflowProblem] = []
    for index, workflow in enumerate(manifest.workflows):
        base = ("workflows", index)
        # Names as written: an extending workflow's two overrides of one name would merge unseen.
        seen: set[str] = set()
        for position, transition in enumerate(workflow.transitions):
            if transition.name in seen:
                found.append(WorkflowProblem((*base, "transitions", position, "name"),
                                             f"workflow {workflow.name!r}: duplicate transition name"
                                             f" {transition.name!r}"))
            seen.add(transition.name)
        try:
            resolved = resolve_workflow(manifest.workflows, workflow.name)
        except TemplateError as exc:
            found.append(WorkflowProblem((*base, *exc.at), str(exc)))
            continue
        found += _Checker(manifest, resolved, _Written(manifest, index)).run()
    return found


_KEYS = {(info.alias or name): name for name, info in TransitionSpec.model_fields.items()}


class _Written:
    """Where a field of the resolved workflow `index` is written: in the workflow itself, or in the
    template (or its template) that gives it. Used once `extends` resolved, so the chain ends."""

    def __init__(self, manifest: AppManifest, index: int) -> None:
        self.chain: list[int] = []
        position: int | None = index
        while position is not None:
            self.chain.append(position)
            parent = manifest.workflows[position].extends
            position = next((i for i, w in enumerate(manifest.workflows) if w.name == parent), None)
        self.manifest = manifest

    def transition(self, name: str, key: str, *rest: str | int) -> tuple[str | int, ...]:
        """The field `key` (as written: `from`, `onError`) of transition `name`, then `rest` below it:
        in the first workflow of the chain whose transition `name` gives `key`."""
        first = None
        for position in self.chain:
            for t, transition in enumerate(self.manifest.workflows[position].transitions):
                if transition.name == name:
                    at = ("workflows", position, "transitions", t)
                    if _KEYS.get(key, key) in transition.model_fields_set:
                        return (*at, key, *rest)
                    first = first or at
                    break
        return (*(first or ("workflows", self.chain[0])), key, *rest)

    def place(self, place: str) -> tuple[str | int, ...] | None:
        """The entry of the `places:` list that declares `place`, if one does."""
        for position in self.chain:
            declared = self.manifest.workflows[position].places
            if declared is not None:
                return ("workflows", position, "places", declared.index(place)) if place in declared else None
        return None


class _Checker:
    def __init__(self, manifest: AppManifest, workflow: WorkflowSpec, written: _Written) -> None:
        self.manifest, self.workflow, self.written = manifest, workflow, written
        self.found: list[WorkflowProblem] = []

    def problem(self, at: tuple, message: str, *, warning: bool = False) -> None:
        self.found.append(WorkflowProblem(at, f"workflow {self.workflow.name!r}: {message}", warning))

    def run(self) -> list[WorkflowProblem]:
        transitions = self.workflow.transitions
        places = self._check_places()
        if places is not None:
            self._check_reachability(places)
            self._check_variables(places)
        for transition in transitions:
            self._check_calls(transition)
            if transition.manual and transition.payload_schema is None:
                self.problem(self.written.transition(transition.name, "when"),
                             f"manual transition {transition.name!r} has no payload_schema: its payload is taken"
                             " unchecked", warning=True)
        return self.found

    # --- places -------------------------------------------------------------------------------

    def _check_places(self) -> set[str] | None:
        declared = self.workflow.places
        reached = {START, END}
        for transition in self.workflow.transitions:
            reached.update(transition.targets)
            reached.update(place for place in (transition.on_error, transition.on_deadline) if place)
        known = {START, END, *declared} if declared is not None else reached
        ok = True
        for transition in self.workflow.transitions:
            for field, key, names in (("from_", "from", transition.sources), ("to", "to", transition.targets),
                                      ("on_error", "onError", [transition.on_error]),
                                      ("on_deadline", "on_deadline", [transition.on_deadline])):
                for position, place in enumerate(names):
                    if place is None or place in known:
                        continue
                    where = self.written.transition(transition.name, key,
                                                    *([position] if isinstance(getattr(transition, field), list) else []))
                    hint = ("the places: list" if declared is not None
                            else "any transition's to, onError or on_deadline, nor start")
                    self.problem(where, f"unknown place {place!r} in {transition.name}.{key}: not in {hint}"
                                        f" (places: {', '.join(sorted(known))})")
                    ok = False
            if END in transition.sources:
                self.problem(self.written.transition(transition.name, "from"),
                             f"transition {transition.name!r} leaves end: end is final")
                ok = False
        return known if ok else None

    def _edges(self) -> list[tuple[str, str, TransitionSpec, str]]:
        """(source, target, transition, kind) with kind `to`, `onError` or `on_deadline`."""
        edges = []
        for transition in self.workflow.transitions:
            for source in transition.sources:
                edges += [(source, target, transition, "to") for target in transition.targets]
                if transition.on_error:
                    edges.append((source, transition.on_error, transition, "onError"))
                if transition.on_deadline:
                    edges.append((source, transition.on_deadline, transition, "on_deadline"))
        return edges

    def _check_reachability(self, places: set[str]) -> None:
        edges = self._edges()
        forward = _closure(START, [(s, t) for s, t, _, _ in edges])
        backward = _closure(END, [(t, s) for s, t, _, _ in edges])
        for place in sorted(places - forward):
            self.problem(self._mention(place), f"place {place!r} cannot be reached from start")
        for place in sorted((places & forward) - backward):
            self.problem(self._mention(place), f"end cannot be reached from place {place!r}: a run there never"
                                               " completes")

    def _mention(self, place: str) -> tuple:
        """The field that first names `place`: for a stuck place, where the run is sent there."""
        for transition in self.workflow.transitions:
            for key, names in (("to", transition.targets), ("onError", [transition.on_error]),
                               ("on_deadline", [transition.on_deadline]), ("from", transition.sources)):
                if place in names:
                    return self.written.transition(transition.name, key)
        # Named by no transition: declared in `places:` only, or `end` that nothing reaches.
        return self.written.place(place) or ("workflows", self.written.chain[0], "name")

    # --- variables ----------------------------------------------------------------------------

    def _check_variables(self, places: set[str]) -> None:
        """Must-be-defined analysis: what is set on every path into each place, to a fixed point."""
        everything = {call.as_ for t in self.workflow.transitions for call in t.call if call.as_}
        defined = {place: (set() if place == START else set(everything)) for place in places}
        changed = True
        while changed:
            changed = False
            for source, target, transition, kind in self._edges():
                out = defined[source] | (_sets(transition) if kind == "to" else set())
                if target != START and not defined[target] <= out:
                    defined[target] &= out
                    changed = True
        for transition in self.workflow.transitions:
            before = set.intersection(*(defined[source] for source in transition.sources)) if transition.sources \
                else set()
            if transition.guard:
                self._check_names(transition.guard, before, self.written.transition(transition.name, "when"))
            for index, call in enumerate(transition.call):
                self._check_call_names(call, before, self.written.transition(transition.name, "call", index))
                if call.as_:
                    before = before | {call.as_}

    def _check_call_names(self, call: CallSpec, defined: set[str], at: tuple) -> None:
        if call.foreach:
            self._check_names(call.foreach, defined, (*at, "foreach"))
            defined = defined | {call.item}
        for index, inner in enumerate(call.parallel or []):
            self._check_call_names(inner, defined, (*at, "parallel", index))
        self._check_names(call.arguments, defined, (*at, "arguments"))
        if call.agent is not None:
            self._check_names(call.agent.prompt, defined, (*at, "agent", "prompt"))
        if call.compensate is not None:
            # The undo reads the call's own result, as `result` and as its `as` variable.
            undo = defined | {COMPENSATE_RESULT} | ({call.as_} if call.as_ else set())
            self._check_names(call.compensate.arguments, undo, (*at, "compensate", "arguments"))

    def _check_names(self, value: Any, defined: set[str], at: tuple) -> None:
        for where, text in strings_in(value):
            try:
                for source in templates(text):
                    unknown = sorted(free_names(source) - defined - set(SCOPE_NAMES))
                    if unknown:
                        names = ", ".join(unknown)
                        have = ", ".join(sorted(defined)) or "none yet"
                        self.problem((*at, *where), f"`${{ {source.strip()} }}` reads {names}, which is not set on"
                                                    f" every path to here (set on every path: {have}; also readable:"
                                                    f" {', '.join(SCOPE_NAMES)})")
            except ExpressionError as exc:
                self.problem((*at, *where), str(exc))

    # --- calls --------------------------------------------------------------------------------

    def _check_calls(self, transition: TransitionSpec) -> None:
        agents = {agent.id for agent in self.manifest.agents}
        for index, call in enumerate(transition.call):
            for where, single in _singles(call, self.written.transition(transition.name, "call", index)):
                if single.agent is not None and single.agent.id not in agents:
                    self.problem((*where, "agent", "id"), f"no agent {single.agent.id!r} in this app"
                                                          f" (agents: {', '.join(sorted(agents)) or 'none'})")
                if single.tool in BUILTIN_DOCUMENT_TOOLS:
                    self._check_document(single.arguments, where)

    def _check_document(self, arguments: dict[str, Any], at: tuple) -> None:
        name, key = arguments.get("document"), ("document",)
        if name is None and isinstance(arguments.get("where"), dict):
            name, key = arguments["where"].get("name"), ("where", "name")
        if isinstance(name, str) and "${" not in name and self.manifest.document(name) is None:
            known = ", ".join(document.name for document in self.manifest.documents) or "none"
            self.problem((*at, "arguments", *key),
                         f"no document {name!r} is declared under documents: (declared: {known})")


def _singles(call: CallSpec, at: tuple) -> Iterable[tuple[tuple, CallSpec]]:
    if call.parallel is not None:
        for index, inner in enumerate(call.parallel):
            yield (*at, "parallel", index), inner
    else:
        yield at, call


def _sets(transition: TransitionSpec) -> set[str]:
    return {call.as_ for call in transition.call if call.as_}


def _closure(origin: str, edges: list[tuple[str, str]]) -> set[str]:
    seen, frontier = {origin}, [origin]
    while frontier:
        place = frontier.pop()
        for source, target in edges:
            if source == place and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


__all__ = ["WorkflowProblem", "workflow_problems"]
