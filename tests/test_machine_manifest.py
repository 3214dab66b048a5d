"""The manifest side of state-machine workflows (top-level `workflows:` and `documents:`).

The seed's examples validate as written once their tools exist; every static check of
`manifest.machine_checks` and every field rule of `manifest.machines` is reported at its file:line
(the offending line of each YAML text carries a `#!` marker, as in tests/test_manifest.py); the CEL
expressions of `manifest.expressions`; `heartbeats validate` on workflow manifests.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from client.checks import check_manifests, machine_findings, resolve_tool_problem
from manifest.expressions import (
    MAX_EXPRESSION_CHARS,
    ExpressionError,
    evaluate,
    free_names,
    render,
    sources_in,
    strings_in,
    templates,
    truthy,
)
from manifest.loader import ManifestError, parse_manifest
from manifest.machines import END, START, mermaid, pinned_definition, resolve_workflow
from skills.catalog import default_registry
from skills.registry import Skill, SkillContext, SkillRegistry, ToolSpec

# --- helpers -----------------------------------------------------------------------------------

SEED_TOOLS = ("data_extraction_tool", "debug_tool", "data_transformation_tool", "data_processor",
              "success_handler", "error_handler", "approval_processor")
LOCATED = re.compile(r"(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<path>\S+): (?P<message>.*)")


async def _answer(ctx: SkillContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"args": args}


def one_tool_skill(name: str) -> Skill:
    """A skill whose one tool a workflow names by the skill's name (`tool: data_extraction_tool`)."""
    return Skill(name=name, description=f"test skill {name}",
                 tools={"run": ToolSpec(name="run", risk="LOW", description=f"{name} for tests",
                                        parameters={"type": "object"}, handler=_answer)})


def registry(*names: str) -> SkillRegistry:
    """The built-in skills (no app skills from the environment) and a one-tool skill per name."""
    found = default_registry(app_skills=False)
    for name in names:
        found.register(one_tool_skill(name), source="tests.test_machine_manifest")
    return found


def write(tmp_path: Path, text: str, name: str = "app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def marked(text: str, marker: str = "#!") -> int:
    """The line (1-based) of `text` carrying `marker` (exactly one does)."""
    lines = [number for number, line in enumerate(textwrap.dedent(text).splitlines(), start=1)
             if line.rstrip().endswith(marker) or f"{marker} " in line]
    assert len(lines) == 1, f"{marker!r} marks lines {lines}"
    return lines[0]


def located(problems: list[str]) -> list[re.Match[str]]:
    found = [LOCATED.fullmatch(problem) for problem in problems]
    assert all(found), f"every problem names file:line:col: {problems}"
    return [match for match in found if match]


def check(tmp_path: Path, text: str, *tools: str) -> list[re.Match[str]]:
    """Every problem `heartbeats validate` / `install` finds in `text`, with the seed's tools registered
    (and `tools`)."""
    path = write(tmp_path, text)
    _, problems = check_manifests([path], registry(*SEED_TOOLS, "work", *tools))
    return located(problems)


def the_problem(tmp_path: Path, text: str, path: str, fragment: str, marker: str = "#!") -> re.Match[str]:
    """The one problem of `text`: at the line marked `marker`, field `path`, with `fragment` in its message."""
    found = check(tmp_path, text)
    assert len(found) == 1, [match[0] for match in found]
    (problem,) = found
    assert problem["path"] == path, problem[0]
    assert fragment in problem["message"], problem[0]
    assert int(problem["line"]) == marked(text, marker), problem[0]
    return problem


def more(workflows: str) -> str:
    """YAML list items written at any indentation, as further entries of the top-level `workflows:`."""
    return textwrap.indent(textwrap.dedent(workflows), "  ")


def workflow(body: str, *, places: str | None = None, extra: str = "") -> str:
    """An app with one workflow `w` whose transitions are `body` (YAML list items)."""
    return ("id: app\n" + extra + "workflows:\n  - name: w\n    type: stateMachine\n"
            + (f"    places: {places}\n" if places else "")
            + "    transitions:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 6) + "\n")


# --- the seed's examples -----------------------------------------------------------------------

# The examples of the seed's workflow chapter, each completed only as far as a workflow must be
# (a path from start to end): `prepare`, `finish` and `done` are the additions.
SEED = """\
id: loopstack
documents:
  - name: approval_form
  - name: customer_profile
workflows:
  - name: document_processor_workflow
    title: "Document Processing Workflow"
    type: stateMachine
    transitions:
      - name: extract_data
        from: start
        to: data_extracted
        call:
          - tool: data_extraction_tool # Tool call at first transition
            arguments:
              source: ${ context.variables.SOURCE_DOCUMENT }
            as: EXTRACTED_DATA
      - name: transform_data
        from: data_extracted
        to: end
        call:
          - tool: debug_tool # First tool call
            arguments:
              log: ${ EXTRACTED_DATA }
          - tool: data_transformation_tool # Second tool call
            arguments:
              data: ${ EXTRACTED_DATA }
  - name: error_handling
    type: stateMachine
    transitions:
      - name: process_data
        from: start
        to:
          - data_processed
          - processing_failed
        onError: processing_failed # Go here if an error occurs
        call:
          - tool: data_processor
            arguments:
              input: ${ context.variables.SOURCE_DOCUMENT }
            as: PROCESS_RESULT
      - name: handle_success
        from: data_processed
        to: end
        call:
          - tool: success_handler
      - name: handle_error
        from: processing_failed
        to: end
        call:
          - tool: error_handler
            arguments:
              error_message: "Data processing failed"
  - name: approval
    type: stateMachine
    transitions:
      - name: prepare
        from: start
        to: document_prepared
      - name: request_user_approval
        from: document_prepared
        to: waiting_for_approval
        call:
          - tool: create_document
            arguments:
              document: approval_form
      - name: process_user_approval
        from: waiting_for_approval
        to: approved
        when: manual # Workflow pauses, waiting for user input
        call:
          - tool: approval_processor
            arguments:
              approval_data: ${ transition.payload } # Access the data from the user form
      - name: finish
        from: approved
        to: end
  - name: workflow_a
    type: stateMachine
    transitions:
      - name: create_document
        from: start
        to: document_created
        call:
          - tool: create_document
            arguments:
              document: customer_profile
              update:
                content: "Hello"
      - name: done
        from: document_created
        to: end
  - name: workflow_b
    type: stateMachine
    transitions:
      - name: load_document
        from: start
        to: document_loaded
        call:
          - tool: load_document
            arguments:
              where:
                name: customer_profile
      - name: done
        from: document_loaded
        to: end
  - name: customer_template
    type: stateMachine
    transitions:
      - name: process_input
        from: start
        to: end
        call:
          - tool: data_processor
            arguments:
              customer_id: ${ options.customerId } # Access template options
              custom: ${ context.custom.customerId } # Access pipeline context
  - name: acme_customer
    title: The template for one customer
    type: stateMachine
    extends: customer_template
    options:
      customerId: acme-42
"""


def test_the_seed_examples_validate_once_their_tools_exist(tmp_path):
    path = write(tmp_path, SEED)
    loaded, problems = check_manifests([path], registry(*SEED_TOOLS))
    assert problems == []
    (item,) = loaded
    assert [w.name for w in item.manifest.workflows] == [
        "document_processor_workflow", "error_handling", "approval", "workflow_a", "workflow_b",
        "customer_template", "acme_customer"]
    # The seed's manual transition has no payload_schema: a warning, at its `when:` line, and only that.
    findings = machine_findings(loaded, registry(*SEED_TOOLS))
    warning_line = SEED.splitlines().index("        when: manual # Workflow pauses, waiting for user input") + 1
    assert [(int(m["line"]), m["path"]) for m in located([text for text, _ in findings])] == [
        (warning_line, "workflows[2].transitions[2].when")]
    assert [is_warning for _, is_warning in findings] == [True]
    assert "has no payload_schema" in findings[0][0]


def test_without_the_seed_tools_each_call_of_an_unknown_tool_is_one_problem_at_its_tool_line(tmp_path):
    path = write(tmp_path, SEED)
    _, problems = check_manifests([path], registry())
    found = located(problems)
    tool_lines = [number for number, line in enumerate(SEED.splitlines(), start=1)
                  if (match := re.search(r"- tool: (\w+)", line)) and match[1] in SEED_TOOLS]
    assert len(tool_lines) == 8  # data_processor twice: the onError example and the template
    assert [int(m["line"]) for m in found] == tool_lines
    for match in found:
        assert match["path"].endswith(".tool"), match[0]
        tool = SEED.splitlines()[int(match["line"]) - 1].split("tool: ")[1].split()[0]
        assert f"no tool {tool!r}" in match["message"]
        assert match["file"] == str(path)


def test_the_seed_template_resolves_with_its_options(tmp_path):
    manifest = parse_manifest(SEED)
    resolved = resolve_workflow(manifest.workflows, "acme_customer")
    assert resolved.extends is None
    assert resolved.options == {"customerId": "acme-42"}
    assert [t.name for t in resolved.transitions] == ["process_input"]
    arguments = resolved.transitions[0].call[0].arguments
    scope = {"options": resolved.options, "context": {"custom": {"customerId": "c-7"}, "variables": {}}}
    assert render(arguments, scope) == {"customer_id": "acme-42", "custom": "c-7"}
    # What a run carries names the merged graph; the template itself pins to another one.
    definition, digest = pinned_definition(resolved)
    assert definition["name"] == "acme_customer" and "extends" not in definition
    assert digest != pinned_definition(resolve_workflow(manifest.workflows, "customer_template"))[1]


def test_seed_tools_resolve_by_skill_name_and_document_tools_are_built_in():
    found = registry(*SEED_TOOLS)
    for tool in SEED_TOOLS:
        assert resolve_tool_problem(found, tool) is None
    for tool in ("create_document", "load_document", "update_document"):
        assert resolve_tool_problem(registry(), tool) is None
    assert "no tool 'data_processor'" in resolve_tool_problem(registry(), "data_processor")
    assert "has 4 tools" in resolve_tool_problem(registry(), "kv")
    assert resolve_tool_problem(registry(), "kv.get") is None


def test_the_documents_example_needs_its_documents_declared(tmp_path):
    text = SEED.replace("documents:\n  - name: approval_form\n  - name: customer_profile\n", "")
    text = text.replace("              document: customer_profile", "              document: customer_profile #!doc")
    text = text.replace("                name: customer_profile", "                name: customer_profile #!where")
    text = text.replace("              document: approval_form", "              document: approval_form #!form")
    found = check(tmp_path, text)
    assert [(int(m["line"]), m["path"]) for m in found] == [
        (marked(text, "#!form"), "workflows[2].transitions[1].call[0].arguments.document"),
        (marked(text, "#!doc"), "workflows[3].transitions[0].call[0].arguments.document"),
        (marked(text, "#!where"), "workflows[4].transitions[0].call[0].arguments.where.name"),
    ]
    assert all("is declared under documents: (declared: none)" in m["message"] for m in found)


# --- the static checks, each at its file:line ----------------------------------------------------

GRAPH = [
    ("unknown-place-in-from", workflow("""
        - {name: a, from: start, to: end}
        - name: b
          from: nowhere #!
          to: end
        """), "workflows[0].transitions[1].from", "unknown place 'nowhere' in b.from"),
    ("places-unknown-to", workflow("""
        - name: a
          from: start
          to: [mid, nope] #!
        - {name: b, from: mid, to: end}
        """, places="[mid]"), "workflows[0].transitions[0].to[1]", "unknown place 'nope' in a.to: not in the places: list"),
    ("places-unknown-to-single", workflow("""
        - name: a
          from: start
          to: nope #!
        """, places="[mid]"), "workflows[0].transitions[0].to", "unknown place 'nope' in a.to"),
    ("places-unknown-onError", workflow("""
        - name: a
          from: start
          to: end
          onError: oops #!
        """, places="[]"), "workflows[0].transitions[0].onError", "unknown place 'oops' in a.onError"),
    ("places-unknown-on_deadline", workflow("""
        - name: a
          from: start
          to: end
          when: manual
          payload_schema: {type: object}
          deadline: 48h
          on_deadline: too_late #!
        """, places="[]"), "workflows[0].transitions[0].on_deadline", "unknown place 'too_late' in a.on_deadline"),
    ("unreachable-place", workflow("""
        - {name: a, from: start, to: end}
        - name: b
          from: island #!
          to: end
        - {name: c, from: island, to: island}
        """, places="[island]"), "workflows[0].transitions[1].from", "place 'island' cannot be reached from start"),
    ("declared-place-no-transition-names", workflow("""
        - {name: a, from: start, to: end}
        """, places="""
          - spare #!"""), "workflows[0].places[0]", "place 'spare' cannot be reached from start"),
    ("end-unreachable", workflow("""
        - name: a
          from: start
          to: [end, trap] #!
        - {name: spin, from: trap, to: trap}
        """), "workflows[0].transitions[0].to", "end cannot be reached from place 'trap'"),
    ("end-unreachable-via-onError", workflow("""
        - name: a
          from: start
          to: end
          onError: broken #!
        """), "workflows[0].transitions[0].onError", "end cannot be reached from place 'broken'"),
    ("duplicate-transition", workflow("""
        - {name: a, from: start, to: mid}
        - name: a #!
          from: mid
          to: end
        """), "workflows[0].transitions[1].name", "duplicate transition name 'a'"),
    ("transition-leaves-end", workflow("""
        - {name: a, from: start, to: end}
        - name: again
          from: [end] #!
          to: start
        """), "workflows[0].transitions[1].from", "transition 'again' leaves end: end is final"),
    ("expression-does-not-parse", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: work
              arguments:
                fine: ${ context.variables.X }
                broken: ${ 1 + } #!
        """), "workflows[0].transitions[0].call[0].arguments.broken", "`${ 1 + }` does not parse as CEL"),
    ("expression-unclosed", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: work
              arguments:
                list: ["ok", "${ context.variables.X"] #!
        """), "workflows[0].transitions[0].call[0].arguments.list[1]", "is never closed"),
    ("guard-does-not-parse", workflow("""
        - name: a
          from: start
          to: end
          when: ${ size( } #!
        """), "workflows[0].transitions[0].when", "does not parse as CEL"),
    ("prompt-does-not-parse", workflow("""
        - name: a
          from: start
          to: end
          call:
            - agent:
                id: writer
                prompt: "Summarise ${ 1 + }" #!
        """, extra="agents:\n  - id: writer\n"), "workflows[0].transitions[0].call[0].agent.prompt",
     "does not parse as CEL"),
    ("variable-set-on-one-branch-only", workflow("""
        - {name: split, from: start, to: [left, right]}
        - name: l
          from: left
          to: join
          call:
            - {tool: work, as: ONLY_LEFT}
        - {name: r, from: right, to: join}
        - name: j
          from: join
          to: end
          call:
            - tool: work
              arguments:
                value: ${ ONLY_LEFT } #!
        """), "workflows[0].transitions[3].call[0].arguments.value",
     "reads ONLY_LEFT, which is not set on every path to here"),
    ("variable-set-only-on-the-error-path", workflow("""
        - name: try
          from: start
          to: done
          onError: done
          call:
            - {tool: work, as: RESULT}
        - name: finish
          from: done
          to: end
          when: ${ RESULT.ok } #!
        """), "workflows[0].transitions[1].when", "reads RESULT, which is not set on every path"),
    ("variable-never-set", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: work
              arguments: {value: "${ NEVER_SET }"} #!
        """), "workflows[0].transitions[0].call[0].arguments.value", "reads NEVER_SET"),
    ("variable-set-by-a-later-call", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: work
              arguments: {value: "${ LATER }"} #!
            - {tool: work, as: LATER}
        """), "workflows[0].transitions[0].call[0].arguments.value", "reads LATER"),
    ("foreach-item-outside-the-foreach", workflow("""
        - name: a
          from: start
          to: end
          call:
            - {tool: work, as: FILES}
            - foreach: ${ FILES }
              item: FILE
              tool: work
              arguments: {file: "${ FILE }"}
            - tool: work
              arguments: {file: "${ FILE }"} #!
        """), "workflows[0].transitions[0].call[2].arguments.file", "reads FILE"),
    ("macro-variable-also-read-outside-the-macro", workflow("""
        - name: a
          from: start
          to: end
          call:
            - {tool: work, as: ITEMS}
            - tool: work
              arguments: {n: "${ x + size(ITEMS.map(x, x.name)) }"} #!
        """), "workflows[0].transitions[0].call[1].arguments.n", "reads x,"),
    ("compensate-reads-an-unset-variable", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: work
              compensate:
                tool: work
                arguments: {id: "${ NOPE.id }"} #!
        """), "workflows[0].transitions[0].call[0].compensate.arguments.id", "reads NOPE"),
    ("agent-not-in-the-app", workflow("""
        - name: a
          from: start
          to: end
          call:
            - agent:
                id: ghost #!
                prompt: Say hi
        """, extra="agents:\n  - id: writer\n"), "workflows[0].transitions[0].call[0].agent.id",
     "no agent 'ghost' in this app (agents: writer)"),
    ("agent-in-a-parallel-group-not-in-the-app", workflow("""
        - name: a
          from: start
          to: end
          call:
            - parallel:
                - tool: work
                - agent: {id: ghost, prompt: Say hi} #!
        """), "workflows[0].transitions[0].call[0].parallel[1].agent.id", "no agent 'ghost' in this app (agents: none)"),
    ("document-not-declared", workflow("""
        - name: a
          from: start
          to: end
          call:
            - tool: update_document
              arguments:
                document: invoice #!
                update: {paid: true}
        """, extra="documents:\n  - name: receipt\n"), "workflows[0].transitions[0].call[0].arguments.document",
     "no document 'invoice' is declared under documents: (declared: receipt)"),
]


@pytest.mark.parametrize(("text", "path", "fragment"), [case[1:] for case in GRAPH], ids=[case[0] for case in GRAPH])
def test_a_static_check_reports_its_problem_at_the_line(tmp_path, text, path, fragment):
    the_problem(tmp_path, text, path, fragment)


def test_a_workflow_where_nothing_reaches_end(tmp_path):
    text = workflow("""
        - name: a
          from: start #!start
          to: middle #!middle
        """).replace("  - name: w", "  - name: w #!end")
    found = check(tmp_path, text)
    assert [(int(m["line"]), m["path"], m["message"].split(": ", 1)[1]) for m in found] == [
        (marked(text, "#!end"), "workflows[0].name", "place 'end' cannot be reached from start"),
        (marked(text, "#!middle"), "workflows[0].transitions[0].to",
         "end cannot be reached from place 'middle': a run there never completes"),
        (marked(text, "#!start"), "workflows[0].transitions[0].from",
         "end cannot be reached from place 'start': a run there never completes"),
    ]


TEMPLATE = """\
id: app
workflows:
  - name: base
    type: stateMachine
    transitions:
      - name: go
        from: start
        to: end
        call:
          - tool: work
            arguments: {customer: "${ options.customerId }"}
"""


def test_extends_of_an_unknown_workflow(tmp_path):
    text = TEMPLATE + "  - name: child\n    type: stateMachine\n    extends: bsae #!\n"
    the_problem(tmp_path, text, "workflows[1].extends", "extends unknown workflow 'bsae' (workflows: base, child)")


def test_an_extends_cycle_is_reported_for_each_workflow_in_it(tmp_path):
    text = TEMPLATE + more("""\
          - name: one
            type: stateMachine
            extends: two #!one
          - name: two
            type: stateMachine
            extends: one #!two
          - name: three
            type: stateMachine
            extends: three #!three
        """)
    found = check(tmp_path, text)
    assert [(int(m["line"]), m["path"]) for m in found] == [
        (marked(text, "#!one"), "workflows[1].extends"), (marked(text, "#!two"), "workflows[2].extends"),
        (marked(text, "#!three"), "workflows[3].extends")]
    assert [m["message"] for m in found] == ["extends makes a cycle: one → two → one",
                                              "extends makes a cycle: two → one → two",
                                              "extends makes a cycle: three → three"]


def test_an_override_of_a_transition_the_template_lacks(tmp_path):
    text = TEMPLATE + more("""\
          - name: child
            type: stateMachine
            extends: base
            transitions:
              - name: go
                title: Go on
              - name: gone #!
                to: end
        """)
    the_problem(tmp_path, text, "workflows[1].transitions[1].name",
                "template 'base' has no transition 'gone' to override (its transitions: go)")


def test_two_overrides_of_one_transition_are_duplicates_not_merged(tmp_path):
    text = TEMPLATE + more("""\
          - name: child
            type: stateMachine
            extends: base
            transitions:
              - name: go
                title: Go on
              - name: go #!
                title: Go further
        """)
    the_problem(tmp_path, text, "workflows[1].transitions[1].name", "workflow 'child': duplicate transition name 'go'")


def test_a_problem_of_a_template_field_is_reported_where_the_template_writes_it(tmp_path):
    text = TEMPLATE.replace('{customer: "${ options.customerId }"}', '{customer: "${ CUSTOMER }"} #!') + more("""\
          - name: child
            type: stateMachine
            extends: base
            transitions:
              - name: go
                title: Overrides the title only
        """)
    found = check(tmp_path, text)
    # Once for the template, once for the workflow built on it: both at the line the template writes.
    assert [(int(m["line"]), m["path"]) for m in found] == [
        (marked(text), "workflows[0].transitions[0].call[0].arguments.customer")] * 2
    assert [m["message"].split(":")[0] for m in found] == ["workflow 'base'", "workflow 'child'"]


def test_an_override_is_checked_where_it_is_written(tmp_path):
    text = TEMPLATE + more("""\
          - name: child
            type: stateMachine
            extends: base
            places: [mid]
            transitions:
              - name: go
                to: nowhere #!
        """)
    the_problem(tmp_path, text, "workflows[1].transitions[0].to", "workflow 'child': unknown place 'nowhere' in go.to")


def test_duplicate_workflow_names(tmp_path):
    text = TEMPLATE + "  - name: base #!\n    type: stateMachine\n    transitions: [{name: go, from: start, to: end}]\n"
    the_problem(tmp_path, text, "workflows[1].name", "duplicate name 'base'")


def test_a_variable_set_on_every_branch_is_defined_after_they_meet(tmp_path):
    text = workflow("""
        - {name: split, from: start, to: [left, right]}
        - name: l
          from: left
          to: join
          call: [{tool: work, as: BOTH}]
        - name: r
          from: right
          to: join
          call: [{tool: work, as: BOTH}]
        - name: j
          from: join
          to: end
          when: ${ BOTH.ok }
          call:
            - tool: work
              arguments: {value: "${ BOTH }", note: "both: ${ BOTH.note }"}
        """)
    assert check(tmp_path, text) == []


def test_a_variable_set_before_a_loop_stays_defined_around_it(tmp_path):
    text = workflow("""
        - name: begin
          from: start
          to: loop
          call: [{tool: work, as: COUNT}]
        - name: again
          from: loop
          to: loop
          when: ${ COUNT.n < 3 }
          call: [{tool: work, arguments: {n: "${ COUNT.n }"}, as: COUNT}]
        - {name: stop, from: loop, to: end}
        """)
    assert check(tmp_path, text) == []


def test_scope_names_are_always_readable_and_the_foreach_item_inside_its_foreach(tmp_path):
    text = workflow("""
        - name: a
          from: start
          to: waiting
          call:
            - tool: work
              arguments:
                source: ${ context.variables.SOURCE_DOCUMENT }
                custom: ${ context.custom.customerId }
                option: ${ options.y }
                failure: ${ error }
              as: FILES
            - foreach: ${ FILES.filter(f, f.size > 0) }
              item: FILE
              limit: 4
              tool: work
              arguments: {file: "${ FILE.name }", all: "${ FILES }"}
              as: CONVERTED
            - parallel:
                - {tool: work, arguments: {n: "${ size(CONVERTED) }"}}
                - {agent: {id: writer, prompt: "Summarise ${ CONVERTED.map(c, c.name) }"}}
              as: BOTH
            - tool: work
              as: BOOKED
              compensate: {tool: work, arguments: {id: "${ result.id }", same: "${ BOOKED.id }", all: "${ BOTH }"}}
        - name: decide
          from: waiting
          to: end
          when: manual
          payload_schema: {type: object}
          call:
            - tool: work
              arguments: {payload: "${ transition.payload }", note: "${ transition.payload.note }"}
        """, extra="agents:\n  - id: writer\n")
    assert check(tmp_path, text) == []


def test_a_manual_transition_without_payload_schema_is_a_warning_only(tmp_path):
    text = workflow("""
        - name: approve
          from: start
          to: end
          when: manual #!
        """)
    path = write(tmp_path, text)
    loaded, problems = check_manifests([path], registry())
    assert problems == []
    findings = machine_findings(loaded, registry())
    assert len(findings) == 1 and findings[0][1] is True
    (warning,) = located([findings[0][0]])
    assert (int(warning["line"]), warning["path"]) == (marked(text), "workflows[0].transitions[0].when")
    assert "manual transition 'approve' has no payload_schema: its payload is taken unchecked" in warning["message"]


def test_a_manifest_with_hundreds_of_problems_is_located_in_seconds(tmp_path):
    """Each problem's line was found by reading and parsing the whole file again: 200 problems in a
    20 KB file took minutes."""
    body = "\n".join(f"- name: t{i}\n  from: {'start' if i == 0 else f'p{i}'}\n  to: {'end' if i == 99 else f'p{i + 1}'}\n"
                     f"  call: [{{tool: missing_a}}, {{tool: missing_b}}]" for i in range(100))
    path = write(tmp_path, workflow(body))
    started = time.perf_counter()
    _, problems = check_manifests([path], registry())
    elapsed = time.perf_counter() - started
    assert len(problems) == 200
    assert elapsed < 10, f"{elapsed:.1f}s"


# --- field rules of the models -------------------------------------------------------------------

FIELDS = [
    ("deadline-without-on_deadline", """
        - name: a
          from: start
          to: end
          when: manual
          payload_schema: {type: object}
          deadline: 48h #!
        """, "workflows[0].transitions[0].deadline", "deadline and on_deadline go together: give on_deadline too"),
    ("on_deadline-without-deadline", """
        - name: a
          from: start
          to: end
          when: manual
          on_deadline: end #!
        """, "workflows[0].transitions[0].on_deadline", "give deadline too"),
    ("deadline-on-a-non-manual-transition", """
        - name: a
          from: start
          to: end
          deadline: 48h #!
          on_deadline: end
        """, "workflows[0].transitions[0].deadline", "deadline applies to manual transitions (when: manual) only"),
    ("payload_schema-on-a-non-manual-transition", """
        - name: a
          from: start
          to: end
          payload_schema: {type: object} #!
        """, "workflows[0].transitions[0].payload_schema", "applies to manual transitions"),
    ("payload_schema-not-a-json-schema", """
        - name: a
          from: start
          to: end
          when: manual
          payload_schema: {type: objekt} #!
        """, "workflows[0].transitions[0].payload_schema", "is not a valid JSON Schema at type"),
    ("payload_schema-a-list", """
        - name: a
          from: start
          to: end
          when: manual
          payload_schema: [approved] #!
        """, "workflows[0].transitions[0].payload_schema", "must be a mapping"),
    ("limit-on-a-plain-call", """
        - name: a
          from: start
          to: end
          call:
            - tool: work
              limit: 3 #!
        """, "workflows[0].transitions[0].call[0].limit", "limit applies to parallel and foreach groups only"),
    ("settle-on-a-plain-call", """
        - name: a
          from: start
          to: end
          call:
            - tool: work
              settle: settled #!
        """, "workflows[0].transitions[0].call[0].settle", "settle applies to parallel and foreach groups only"),
    ("compensate-on-a-group", """
        - name: a
          from: start
          to: end
          call:
            - parallel: [{tool: work}]
              compensate: {tool: work} #!
        """, "workflows[0].transitions[0].call[0].compensate", "compensate applies to a single tool call"),
    ("compensate-on-an-agent-call", """
        - name: a
          from: start
          to: end
          call:
            - agent: {id: writer, prompt: hi}
              compensate: {tool: work} #!
        """, "workflows[0].transitions[0].call[0].compensate", "compensate applies to a single tool call"),
    ("tool-and-agent", """
        - name: a
          from: start
          to: end
          call:
            - tool: work #!
              agent: {id: writer, prompt: hi}
        """, "workflows[0].transitions[0].call[0]", "give exactly one of tool, agent or parallel (got tool, agent)"),
    ("neither-tool-nor-agent", """
        - name: a
          from: start
          to: end
          call:
            - arguments: {x: 1} #!
        """, "workflows[0].transitions[0].call[0]", "give exactly one of tool, agent or parallel"),
    ("as-context", """
        - name: a
          from: start
          to: end
          call:
            - tool: work
              as: context #!
        """, "workflows[0].transitions[0].call[0].as", "'context' is taken"),
    ("as-inside-a-parallel-group", """
        - name: a
          from: start
          to: end
          call:
            - parallel:
                - tool: work
                  as: LOST #!
              as: BOTH
        """, "workflows[0].transitions[0].call[0].parallel[0].as", "give `as` to the group"),
    ("foreach-over-a-parallel-group", """
        - name: a
          from: start
          to: end
          call:
            - parallel: [{tool: work}]
              foreach: ${ [1, 2] } #!
        """, "workflows[0].transitions[0].call[0].foreach", "a parallel group cannot repeat"),
    ("groups-do-not-nest", """
        - name: a
          from: start
          to: end
          call:
            - parallel:
                - parallel: [{tool: work}] #!
        """, "workflows[0].transitions[0].call[0].parallel[0]", "groups do not nest"),
    ("duration-in-words", """
        - name: a
          from: start
          to: end
          timeout: 5 minutes #!
        """, "workflows[0].transitions[0].timeout", "must be a whole number and a unit s, m, h, d or w"),
    ("duration-out-of-range", """
        - name: a
          from: start
          to: end
          when: manual
          deadline: 400d #!
          on_deadline: end
        """, "workflows[0].transitions[0].deadline", "must be between 1s and 365d (got 400d)"),
    ("retry-interval-in-words", """
        - name: a
          from: start
          to: end
          retry: {max_attempts: 2, initial_interval: soon} #!
        """, "workflows[0].transitions[0].retry.initial_interval", "must be a whole number and a unit"),
    ("when-neither-keyword-nor-guard", """
        - name: a
          from: start
          to: end
          when: always #!
        """, "workflows[0].transitions[0].when", "must be onEntry, manual, or a guard"),
    ("to-listed-twice", """
        - name: a
          from: start
          to: [end, end] #!
        """, "workflows[0].transitions[0].to[1]", "place 'end' is listed twice"),
    ("transition-without-from", """
        - name: a #!
          to: end
        """, "workflows[0].transitions[0]", "transition 'a' needs from"),
    ("place-name-with-a-space", """
        - name: a
          from: start
          to: "data extracted" #!
        """, "workflows[0].transitions[0].to", "must be a name of letters, digits"),
    ("to-a-number", """
        - name: a
          from: start
          to: 5 #!
        """, "workflows[0].transitions[0].to", "must be a place name or a list of place names (got 5)"),
    ("from-a-list-holding-a-mapping", """
        - name: a
          from: [start, {b: 1}] #!
          to: end
        """, "workflows[0].transitions[0].from[1]", "must be a place name (got {'b': 1})"),
    ("expression-nested-too-deeply", """
        - name: a
          from: start
          to: end
          call:
            - tool: work
              arguments: {n: "${ """ + "(" * 40 + "1" + ")" * 40 + """ }"} #!
        """, "workflows[0].transitions[0].call[0].arguments.n", "is nested too deeply"),
]


@pytest.mark.parametrize(("body", "path", "fragment"), [case[1:] for case in FIELDS], ids=[case[0] for case in FIELDS])
def test_a_field_rule_is_refused_at_its_line(body, path, fragment):
    text = workflow(body)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, filename="app.yaml")
    problems = caught.value.problems
    assert [(p.path, p.line) for p in problems] == [(path, marked(text))], str(caught.value)
    assert fragment in problems[0].message


def test_an_unknown_workflow_type_and_too_many_transitions(tmp_path):
    text = workflow("- {name: a, from: start, to: end}").replace("type: stateMachine", "type: flowChart #!")
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert [(p.path, p.line, p.message) for p in caught.value.problems] == [
        ("workflows[0].type", marked(text), "must be 'stateMachine' (got 'flowChart')")]
    body = "\n".join(f"- {{name: t{i}, from: start, to: end}}" for i in range(201))
    with pytest.raises(ManifestError, match=r"workflows\[0\].transitions: list should have at most 200 items"):
        parse_manifest(workflow(body))
    parse_manifest(workflow(body.rsplit("\n", 1)[0]))  # 200 is the limit


# --- apps with workflows only ------------------------------------------------------------------


def test_an_app_with_only_workflows_validates(tmp_path):
    text = "id: flows\nversion: 1.0.0\n" + workflow("- {name: a, from: start, to: end}").removeprefix("id: app\n")
    loaded, problems = check_manifests([write(tmp_path, text)], registry())
    assert problems == []
    assert loaded[0].manifest.agents == [] and [w.name for w in loaded[0].manifest.workflows] == ["w"]


def test_an_app_with_neither_agents_nor_workflows_is_refused(tmp_path):
    for text in ("id: empty #!\nname: Nothing here\n", "id: empty\nagents: [] #!\nworkflows: []\n"):
        with pytest.raises(ManifestError) as caught:
            parse_manifest(text)
        assert [(p.path, p.line, p.message) for p in caught.value.problems] == [
            ("agents", marked(text), "an app needs agents, workflows, or both")]


# --- expressions --------------------------------------------------------------------------------

SCOPE = {
    "context": {"variables": {"DOC": "contract.pdf", "N": 3}, "custom": {}},
    "ITEMS": [{"name": "a", "size": 2}, {"name": "b", "size": 0}],
    "FLAG": True,
    "COUNTS": {"pages": 3},
}


@pytest.mark.parametrize(("value", "expected"), [
    ("${ ITEMS }", SCOPE["ITEMS"]),
    ("  ${ context.variables.N }  ", 3),
    ("${ FLAG }", True),
    ("${ COUNTS }", {"pages": 3}),
    ("${ ITEMS.map(x, x.name) }", ["a", "b"]),
    ("${ size(ITEMS.filter(x, x.size > 0)) }", 1),
    ("${ null }", None),
    ("${ 2.5 }", 2.5),
    ("${ {'a': {'b': context.variables.N}} }", {"a": {"b": 3}}),
    ('${ {"closing": "}"} }', {"closing": "}"}),
])
def test_render_of_a_whole_expression_keeps_its_json_type(value, expected):
    result = render(value, SCOPE)
    assert result == expected and type(result) is type(expected)


def test_render_interpolates_inside_strings_and_walks_lists_and_mappings():
    assert render("file ${ context.variables.DOC } of ${ context.variables.N } pages", SCOPE) == \
        "file contract.pdf of 3 pages"
    assert render("flag=${ FLAG} counts=${COUNTS } names=${ ITEMS.map(x, x.name) }", SCOPE) == \
        'flag=true counts={"pages":3} names=["a","b"]'
    assert render("${ FLAG } and ${ FLAG }", SCOPE) == "true and true"  # two expressions: a string
    assert render({"a": ["${ context.variables.N }", {"b": "n=${ context.variables.N }"}], "c": 7, "d": "plain"},
                  SCOPE) == {"a": [3, {"b": "n=3"}], "c": 7, "d": "plain"}
    assert truthy("${ size(ITEMS) > 1 }", SCOPE) is True
    with pytest.raises(ExpressionError, match="must be true or false"):
        truthy("${ size(ITEMS) }", SCOPE)


def test_free_names_ignores_what_macros_bind_and_what_functions_are_called():
    assert free_names("ITEMS.map(x, x.name)") == {"ITEMS"}
    assert free_names("ITEMS.all(a, OTHER.exists(b, a == b))") == {"ITEMS", "OTHER"}
    assert free_names("size(ITEMS) > LIMIT && has(context.variables.X)") == {"ITEMS", "LIMIT", "context"}
    assert free_names("{'k': V}[K]") == {"V", "K"}
    # A name a macro binds is free where it is read outside the macro.
    assert free_names("x + size(ITEMS.map(x, x))") == {"x", "ITEMS"}
    assert free_names("ITEMS.map(x, x + y)") == {"ITEMS", "y"}
    assert free_names(".ROOT.field") == {"ROOT"}


def test_evaluate_errors_are_expression_errors_naming_the_variable():
    with pytest.raises(ExpressionError, match=r"no variable 'MISSING' \(defined: COUNTS, FLAG, ITEMS, context\)"):
        evaluate("MISSING + 1", SCOPE)
    with pytest.raises(ExpressionError, match="no such member in mapping: 'NOPE'"):
        evaluate("context.variables.NOPE", SCOPE)
    with pytest.raises(ExpressionError, match="divide by zero"):
        evaluate("1 / 0", SCOPE)
    with pytest.raises(ExpressionError, match="no variable 'GONE'"):
        render({"deep": ["${ GONE }"]}, SCOPE)


def test_templates_skip_braces_of_map_literals_and_strings():
    assert templates("a ${ {'x': {'y': 1}} } b ${ \"}\" + '}' } c") == [" {'x': {'y': 1}} ", ' "}" + \'}\' ']
    assert sources_in({"a": ["${ A }", {"b": "x ${ B } ${ C }"}], "n": 1}) == [" A ", " B ", " C "]
    assert strings_in({"a": ["plain", "${ A }"], "b": {"c": "${ C }"}}) == [(("a", 1), "${ A }"), (("b", "c"), "${ C }")]
    for text in ("${ context.variables.X", "ok ${ A } then ${ {'unclosed': 1 }", "${ 'quote } never closes }"):
        with pytest.raises(ExpressionError, match="is never closed"):
            templates(text)


def test_an_expression_too_long_or_too_deep_is_refused():
    long = "1" + " + 1" * ((MAX_EXPRESSION_CHARS + 10) // 4)
    with pytest.raises(ExpressionError, match=f"at most {MAX_EXPRESSION_CHARS} characters"):
        evaluate(long, {})
    # Short enough, but celpy evaluates by recursion: once accepted, it failed on every evaluation.
    for deep in ("(" * 60 + "1" + ")" * 60, "[" * 60 + "1" + "]" * 60, "-" * 400 + "1", "1" + " * 1" * 300):
        assert len(deep) <= MAX_EXPRESSION_CHARS
        with pytest.raises(ExpressionError, match="nested too deeply"):
            evaluate(deep, {})
    assert evaluate("(" * 10 + "1" + ")" * 10, {}) == 1
    assert evaluate("1" + " + 1" * 80, {}) == 81
    with pytest.raises(ExpressionError, match="is empty"):
        evaluate("  ", {})


# --- mermaid ----------------------------------------------------------------------------------


def test_mermaid_draws_every_edge_and_marks_manual_error_and_deadline_edges():
    manifest = parse_manifest(workflow("""
        - name: extract
          from: start
          to: [extracted, failed]
          onError: failed
        - name: review
          from: extracted
          to: approved
          when: manual
          payload_schema: {type: object}
          deadline: 48h
          on_deadline: failed
        - name: skip_review
          from: extracted
          to: approved
          when: ${ size(context.variables.PAGES) < 2 }
        - {name: done, from: [approved, failed], to: end}
        """))
    diagram = mermaid(manifest.workflows[0], current="extracted")
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert f"    [*] --> {START}" in lines and f"    {END} --> [*]" in lines
    for edge in ("start --> extracted: extract", "start --> failed: extract", "start --> failed: extract fails",
                 "extracted --> approved: review (manual)", "extracted --> failed: review after 48h",
                 "extracted --> approved: skip_review [size(context.variables.PAGES) < 2]",
                 "approved --> end: done", "failed --> end: done"):
        assert f"    {edge}" in lines, diagram
    assert len([line for line in lines if "-->" in line]) == 2 + 8
    assert "    class extracted current" in lines


# --- heartbeats validate -------------------------------------------------------------------------

GOOD = """\
id: flows
version: 2.0.0
documents:
  - name: receipt
workflows:
  - name: file_receipt
    type: stateMachine
    transitions:
      - name: file
        from: start
        to: filed
        call:
          - tool: create_document
            arguments: {document: receipt, update: {amount: "${ context.variables.AMOUNT }"}}
            as: FILED
      - name: approve
        from: filed
        to: end
        when: manual #!
"""

BAD = """\
id: flows
workflows:
  - name: file_receipt
    type: stateMachine
    transitions:
      - name: file
        from: start
        to: filed
        call:
          - tool: kv.get #!tool
            arguments: {key: "${ FILED.id }"} #!var
      - name: park
        from: filed
        to: parked #!stuck
      - {name: finish, from: filed, to: end}
"""


def test_validate_a_good_workflow_manifest_exits_0_and_prints_the_warning_to_stderr(tmp_path):
    path = write(tmp_path, GOOD)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: ok, app flows 2.0.0: 0 agents, 0 heartbeats, 1 workflow\n"
    line = marked(GOOD)
    assert result.stderr == (f"{path}:{line}:15: workflows[0].transitions[1].when: workflow 'file_receipt': manual"
                             " transition 'approve' has no payload_schema: its payload is taken unchecked (warning)\n")


def test_validate_a_bad_workflow_manifest_exits_1_with_one_located_line_per_problem(tmp_path):
    path = write(tmp_path, BAD.replace("kv.get", "kv.fetch"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and ": ok," not in result.output
    lines = result.stdout.splitlines()
    assert [(int(m["line"]), m["path"]) for m in located(lines)] == [
        (marked(BAD, "#!stuck"), "workflows[0].transitions[1].to"),
        (marked(BAD, "#!var"), "workflows[0].transitions[0].call[0].arguments.key"),
        (marked(BAD, "#!tool"), "workflows[0].transitions[0].call[0].tool"),
    ]
    assert "end cannot be reached from place 'parked'" in lines[0]
    assert "`${ FILED.id }` reads FILED, which is not set on every path to here" in lines[1]
    assert "skill 'kv' has no tool 'fetch'" in lines[2]
    assert result.stderr == ""


def test_mermaid_keeps_places_apart_whose_names_differ_only_by_hyphen_or_underscore() -> None:
    manifest = parse_manifest(workflow("""
        - {name: a, from: start, to: [in-review, in_review]}
        - {name: b, from: [in-review, in_review], to: end}
        """))
    lines = mermaid(manifest.workflows[0], current="in-review").splitlines()
    assert '    state "in-review" as in_review' in lines  # the first keeps the readable id, labelled
    assert "    start --> in_review: a" in lines and "    start --> in_review_2: a" in lines
    assert "    in_review --> end: b" in lines and "    in_review_2 --> end: b" in lines
    assert "    class in_review current" in lines
