"""The operator policy: the file format, its safe defaults and each rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from djl_operator import api, policy
from djl_operator.errors import PolicyError, SpecError
from djl_operator.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
DLC = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.29.0-lmi11.0.0-cu124"


def spec(model: dict[str, Any] | None = None, **sections: Any) -> api.DjlEndpointSpec:
    body: dict[str, Any] = {
        "model": {"id": "facebook/bart-large", **(model or {})},
        "instance": {"type": "ml.g5.12xlarge"},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-artifacts"},
    }
    body.update(sections)
    return api.DjlEndpointSpec.model_validate(body)


def test_defaults_are_safe() -> None:
    rules = policy.Policy()
    assert rules.allow_sdk_images and rules.allowed_images == ()
    assert not rules.allow_trust_remote_code and not rules.allow_pip_index_options
    assert rules.allowed_execution_roles is None and rules.max_instance_count == 10


def test_policy_file_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "allowSdkImages: false\n"
        "allowedImages: ['111111111111.dkr.ecr.*.amazonaws.com/team-*:*']\n"
        "allowTrustRemoteCode: true\n"
        "allowPipIndexOptions: true\n"
        "allowedExecutionRoles:\n  team-a: ['arn:aws:iam::111111111111:role/team-a-*']\n"
        "maxInstanceCount: 4\n"
    )
    monkeypatch.setenv(policy.POLICY_FILE_ENV, str(path))
    rules = Settings.from_env().policy
    assert rules == policy.Policy(
        allow_sdk_images=False,
        allowed_images=("111111111111.dkr.ecr.*.amazonaws.com/team-*:*",),
        allow_trust_remote_code=True,
        allow_pip_index_options=True,
        allowed_execution_roles={"team-a": ("arn:aws:iam::111111111111:role/team-a-*",)},
        max_instance_count=4,
    )
    (tmp_path / "empty.yaml").write_text("")
    assert policy.Policy.from_file(tmp_path / "empty.yaml") == policy.Policy()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("allowTrustRemoteCod: true\n", "allowTrustRemoteCod"),
        ("maxInstanceCount: 0\n", "maxInstanceCount"),
        ("allowedImages: 3\n", "allowedImages"),
        ("- a list\n", "expected a mapping"),
        ("{unclosed\n", "policy"),
    ],
)
def test_bad_policy_file_names_the_key(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=words) as info:
        policy.Policy.from_file(path)
    assert str(path) in str(info.value)


def test_missing_policy_file_stops_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(policy.POLICY_FILE_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(ValueError, match=r"absent\.yaml"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("pattern", "text", "matched"),
    [
        ("example.com/**", "example.com/a/b:1", True),
        ("example.com/*", "example.com/a/b:1", False),
        ("763104351884.dkr.ecr.*.amazonaws.com/**", "763104351884.dkr.ecr.us-east-1.amazonaws.com/x:1", True),
        ("763104351884.dkr.ecr.*.amazonaws.com/**", "763104351884.dkr.ecr.evil.com/x.amazonaws.com/y", False),
        ("arn:aws:iam::1:role/team-a-*", "arn:aws:iam::1:role/team-a-x", True),
        ("arn:aws:iam::1:role/team-a-*", "arn:aws:iam::1:role/team-a-x/../admin", False),
        ("a?c", "abc", True),
        ("a.c", "abc", False),
    ],
)
def test_glob(pattern: str, text: str, matched: bool) -> None:
    assert policy.matches(pattern, text) is matched


def test_sdk_registries_are_the_djl_ones() -> None:
    registries = policy.sdk_registries()
    assert "763104351884.dkr.ecr.us-east-1.amazonaws.com" in registries
    assert all(".dkr.ecr." in host for host in registries)


DENIALS = [
    pytest.param(spec(image={"uri": "evil.example.com/djl:1"}), policy.Policy(), "spec.image.uri", "allowedImages",
                 id="image"),
    pytest.param(spec(image={"uri": DLC}), policy.Policy(allow_sdk_images=False), "spec.image.uri", "allowedImages",
                 id="sdk-images-off"),
    pytest.param(spec({"properties": {"option.trust_remote_code": "true"}}), policy.Policy(),
                 "spec.model.properties[option.trust_remote_code]", "allowTrustRemoteCode", id="trust-remote-code"),
    pytest.param(spec({"properties": {"Option.Trust_Remote_Code": " True "}}), policy.Policy(),
                 "spec.model.properties[Option.Trust_Remote_Code]", "allowTrustRemoteCode", id="case-variant"),
    pytest.param(spec({"requirements": ["numpy", "--extra-index-url https://evil.invalid/simple"]}),
                 policy.Policy(), "spec.model.requirements[1]", "allowPipIndexOptions", id="index"),
    pytest.param(spec({"requirements": ["x @ https://evil.invalid/x.whl"]}), policy.Policy(),
                 "spec.model.requirements[0]", "allowPipIndexOptions", id="url-requirement"),
    pytest.param(spec(instance={"type": "ml.g5.12xlarge", "count": 3}), policy.Policy(max_instance_count=2),
                 "spec.instance.count", "maxInstanceCount", id="count"),
    pytest.param(spec(), policy.Policy(allowed_execution_roles={"other": ("*",)}), "spec.aws.executionRoleArn",
                 "allowedExecutionRoles", id="no-entry-for-namespace"),
]  # fmt: skip


@pytest.mark.parametrize(("the_spec", "rules", "field", "rule"), DENIALS)
def test_denials_name_field_and_rule(the_spec: api.DjlEndpointSpec, rules: policy.Policy, field: str, rule: str):
    with pytest.raises(PolicyError) as info:
        policy.check(the_spec, rules)
    assert (info.value.field, info.value.rule, info.value.reason) == (field, rule, "PolicyViolation")
    assert str(info.value).startswith(f"{field}: denied by the operator policy ({rule})")


ALLOWED = [
    pytest.param(spec(), policy.Policy(), id="defaults"),
    pytest.param(spec(image={"uri": DLC}), policy.Policy(), id="sdk-registry"),
    pytest.param(spec(image={"uri": "example.com/a/b:1"}), policy.Policy(allowed_images=("example.com/**",)),
                 id="glob"),
    pytest.param(spec({"properties": {"option.trust_remote_code": "false"}}), policy.Policy(), id="remote-code-off"),
    pytest.param(spec({"properties": {"trust_remote_code": "true"}}), policy.Policy(allow_trust_remote_code=True),
                 id="remote-code-allowed"),
    pytest.param(spec({"requirements": ["--index-url https://pypi.internal/simple", "x @ https://e.invalid/x.whl"]}),
                 policy.Policy(allow_pip_index_options=True), id="index-allowed"),
    pytest.param(spec(instance={"type": "ml.g5.12xlarge", "count": 10}), policy.Policy(), id="count-at-limit"),
    pytest.param(spec(), policy.Policy(allowed_execution_roles={"*": ("arn:aws:iam::123456789012:role/*",)}),
                 id="role-star"),
]  # fmt: skip


@pytest.mark.parametrize(("the_spec", "rules"), ALLOWED)
def test_allowed(the_spec: api.DjlEndpointSpec, rules: policy.Policy) -> None:
    policy.check(the_spec, rules)


def test_malformed_requirement_is_invalid_spec_not_policy() -> None:
    with pytest.raises(SpecError) as info:
        policy.check(spec({"requirements": ["-r /etc/shadow"]}), policy.Policy(allow_pip_index_options=True))
    assert not isinstance(info.value, PolicyError) and info.value.reason == "InvalidSpec"
