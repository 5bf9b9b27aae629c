"""One closed vocabulary of condition reasons: every reason written is a member, and the README lists them all."""

from __future__ import annotations

import ast
from pathlib import Path

from djl_operator import conditions
from djl_operator.conditions import REASON_DOCS, Reason

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "djl_operator"


def test_readme_reason_table_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- reasons:start -->\n")[1].split("<!-- reasons:end -->")[0]
    assert section == conditions.reasons_markdown(), "refresh the README from conditions.reasons_markdown()"


def test_every_reason_is_documented() -> None:
    assert set(REASON_DOCS) == set(Reason)


def test_conditions_are_built_from_the_vocabulary_only() -> None:
    """No condition is made from a bare string: every ConditionState/_progress/_stalled/_failed call names a Reason."""
    builders = {"ConditionState": 1, "_progress": 0, "_stalled": 0, "_failure": 1, "_failed": 2}
    loose = []
    for module in ("planner.py", "reconcile.py"):
        for node in ast.walk(ast.parse((PACKAGE / module).read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in builders:
                index = builders[node.func.id]
                if index < len(node.args) and isinstance(node.args[index], ast.Constant):
                    loose.append(f"{module}:{node.lineno} {node.func.id}({node.args[index].value!r})")
    assert loose == []


def test_spec_error_reasons_are_members() -> None:
    from djl_operator.errors import PolicyError, SpecError

    assert Reason(SpecError("spec.x", "bad").reason) is Reason.INVALID_SPEC
    assert Reason(PolicyError("spec.x", "rule", "denied").reason) is Reason.POLICY_VIOLATION
