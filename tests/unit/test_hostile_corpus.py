"""The hostile corpus (tests/hostile_corpus.py) through the typed models and the reconciler.

What the API server lets through (tests/integration/test_hostile_corpus.py
proves it refuses the rest) either stalls with InvalidSpec / PolicyViolation
before any AWS call, or renders a serving.properties whose keys are exactly the
intended ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from djl_operator import api, javaprops, policy
from djl_operator.artifacts import render
from djl_operator.conditions import STALLED
from djl_operator.desired import desired_deployment
from djl_operator.errors import PolicyError
from djl_operator.reconcile import Context, Next, finalize, reconcile
from djl_operator.settings import Settings
from djl_operator_kit.emulator import Emulator
from tests import hostile_corpus as corpus
from tests.plugins.emulator import aws_clients


def _resource(case: corpus.Case, namespace: str = "team-a") -> api.DjlEndpointResource:
    body = case.manifest()
    body["metadata"].update(namespace=namespace, uid="0b7f6a52-hostile", generation=1)
    return api.DjlEndpointResource.from_body(body)


@pytest.mark.parametrize("case", corpus.by_expectation(corpus.API), ids=lambda c: c.id)
def test_typed_models_refuse_naming_the_field(case: corpus.Case) -> None:
    with pytest.raises(ValidationError) as info:
        api.DjlEndpointSpec.model_validate(case.manifest()["spec"])
    path = "spec"
    for part in info.value.errors()[0]["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    assert path.startswith(case.field)


@pytest.fixture
def context(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Context]:
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)

    def make(rules: policy.Policy | None = None) -> Context:
        return Context(settings=Settings(policy=rules or policy.Policy()), clients=aws_clients())

    return make


@pytest.mark.parametrize("case", corpus.by_expectation(corpus.INVALID, corpus.POLICY), ids=lambda c: c.id)
def test_operator_stalls_with_zero_aws_calls(case: corpus.Case, emulator: Emulator, context: Any) -> None:
    outcome = reconcile(_resource(case), context())
    assert outcome.next is Next.STALLED, outcome.message
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == STALLED)
    assert (stalled["status"], stalled["reason"]) == ("True", case.expect)
    assert outcome.message.startswith(f"{case.field}: "), outcome.message
    assert outcome.events == [("Warning", case.expect, outcome.message)]
    assert emulator.calls() == []


@pytest.mark.parametrize("case", corpus.by_expectation(corpus.OK), ids=lambda c: c.id)
def test_accepted_input_never_changes_the_keys_djl_reads(case: corpus.Case) -> None:
    resource = _resource(case)
    policy.check(resource, policy.Policy())
    spec = resource.spec
    props = render.serving_properties(spec)
    intended = set(render._first_class(spec)) | set(render._defaults(spec)) | set(spec.model.properties)
    assert set(props) == intended
    text = render.format_properties(props)
    assert javaprops.loads(text) == props  # same keys, same values, as java.util.Properties reads them
    assert len(text.splitlines()) == len(props) + 1  # one line each, plus the header comment
    # requirements.txt: one line per entry, as pip reads lines (str.splitlines is the widest notion).
    requirements = render.merge_requirements("", spec.model.requirements)
    assert requirements.splitlines() == [r.strip() for r in spec.model.requirements]


def test_corpus_covers_every_string_field() -> None:
    def strings(node: dict[str, Any], path: str) -> set[str]:
        found = set()
        for name, sub in node.get("properties", {}).items():
            if sub["type"] == "string" and "enum" not in sub:
                found.add(f"{path}.{name}")
            elif sub["type"] in ("object", "array"):
                found |= strings(sub, f"{path}.{name}") if "properties" in sub else {f"{path}.{name}"}
        return found

    from djl_operator import crd

    covered = {c.field.split("[")[0] for c in corpus.CASES}
    assert strings(crd.spec_schema(), "spec") <= covered
    assert len(corpus.CASES) >= 40


def test_role_policy_per_namespace(emulator: Emulator, context: Any) -> None:
    rules = policy.Policy(
        allowed_execution_roles={"team-a": ("arn:aws:iam::123456789012:role/team-a-*",), "*": ()},
    )
    case = corpus.Case("role", "spec.aws.executionRoleArn", "arn:aws:iam::123456789012:role/team-b-admin", "", "")
    outcome = reconcile(_resource(case, "team-a"), context(rules))
    assert outcome.next is Next.STALLED and "allowedExecutionRoles" in outcome.message
    assert outcome.message.startswith("spec.aws.executionRoleArn: ")
    # The same role from another namespace matches "*", which allows none.
    assert reconcile(_resource(case, "team-b"), context(rules)).next is Next.STALLED
    assert emulator.calls() == []
    # A role matching the namespace's pattern passes the policy (and nothing else is wrong).
    ok = corpus.Case("role", "spec.aws.executionRoleArn", "arn:aws:iam::123456789012:role/team-a-serving", "", "")
    policy.check(_resource(ok, "team-a"), rules)
    with pytest.raises(PolicyError):
        policy.check(_resource(ok, "team-c"), rules)


def test_a_permissive_policy_lets_index_options_and_remote_code_through() -> None:
    rules = policy.Policy(
        allow_pip_index_options=True, allow_trust_remote_code=True, allowed_images=("evil.example.com/**",)
    )
    for case in corpus.by_expectation(corpus.POLICY):
        if case.id == "instance-count-over-policy":
            continue
        deployment = desired_deployment(_resource(case), rules=rules)
        if case.path == "spec.model.requirements":
            assert case.value[0].encode() + b"\n" in deployment.package.files["requirements.txt"]


def test_control_a_valid_spec_does_reach_aws(emulator: Emulator, context: Any) -> None:
    """Without it, "zero AWS calls" above could pass with a recorder that records nothing."""
    case = corpus.Case("valid", "spec.model.task", "feature-extraction", corpus.OK, "")
    outcome = reconcile(_resource(case), context())
    assert outcome.next is not Next.STALLED or "PolicyViolation" not in outcome.message
    assert emulator.calls()


def test_one_event_per_transition(emulator: Emulator, context: Any) -> None:
    case = next(c for c in corpus.CASES if c.id == "trust-remote-code")
    resource = _resource(case)
    first = reconcile(resource, context())
    assert [e[1] for e in first.events] == ["PolicyViolation"]
    # The resync timer reconciles the same generation again: still stalled, no second event.
    again = resource.model_copy(update={"status": api.DjlEndpointStatus.model_validate(first.status)})
    second = reconcile(again, context())
    assert second.next is Next.STALLED and second.events == []
    # A new generation is a new transition, even when it is refused the same way.
    edited = again.model_copy(update={"generation": 2})
    assert [e[1] for e in reconcile(edited, context()).events] == ["PolicyViolation"]
    assert emulator.calls() == []


@pytest.mark.parametrize("case", corpus.by_expectation(corpus.INVALID, corpus.POLICY), ids=lambda c: c.id)
def test_deleting_a_refused_resource_releases_its_finalizer(case: corpus.Case, context: Any) -> None:
    """Nothing was created, and deletion does not depend on the spec passing render or policy."""
    assert finalize(_resource(case), context()).next is Next.DONE
