"""The hostile corpus (tests/hostile_corpus.py) against the real API server.

For every case the API server and the typed models agree: both accept, or
both refuse naming the field. That is what makes the patterns engine-neutral
(RE2 in the API server, Rust's regex in pydantic). Also: the oversized
resources of issue 11 are refused, and spec.aws.region cannot change.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from djl_operator import api
from tests import hostile_corpus as corpus
from tests.plugins.controlplane import Kubectl

IMMUTABLE_REGION = "spec.aws.region is immutable: create a new DjlEndpoint in the other region"


def _model_verdict(manifest: dict[str, Any]) -> str | None:
    """None when the typed models accept the spec, else the path of the first error."""
    try:
        api.DjlEndpointSpec.model_validate(manifest["spec"])
    except ValidationError as exc:
        path = "spec"
        for part in exc.errors()[0]["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        return path
    return None


def _server_dry_run(
    kubectl: Kubectl, namespace: str, manifests: list[dict[str, Any]]
) -> tuple[set[str], dict[str, str]]:
    """Server-side create (dry run: nothing is stored) of every manifest in one request list.

    Returns the names created and, per refused name, the API server's error line.
    """
    body = {"apiVersion": "v1", "kind": "List", "items": manifests}
    result = kubectl.run("create", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    created = set(re.findall(r"/(\S+) created \(server dry run\)", result.stdout))
    refused = {}
    # One "Error from server" block per refused object (a block may span lines).
    for block in re.split(r"^(?=Error from server)", result.stderr, flags=re.MULTILINE):
        found = re.search(r'"(\S+)" is invalid: (.*)', block, flags=re.DOTALL)
        if found:
            refused[found.group(1)] = found.group(2)
    return created, refused


def test_api_server_and_typed_models_agree_on_every_case(kubectl: Kubectl, namespace: str) -> None:
    names = {f"c-{i:03d}": case for i, case in enumerate(corpus.CASES)}
    created, refused = _server_dry_run(kubectl, namespace, [case.manifest(name) for name, case in names.items()])
    assert created | set(refused) == set(names), "every case must get an answer"
    disagreements = []
    for name, case in names.items():
        by_model = _model_verdict(case.manifest())
        server_refused = name in refused
        if server_refused != (case.expect == corpus.API) or (by_model is not None) != server_refused:
            disagreements.append(f"{case.id}: {case.value!r} server={refused.get(name)} model={by_model}")
            continue
        if server_refused:
            assert case.field in refused[name], f"{case.id}: the API server's error names {refused[name]!r}"
            assert by_model is not None and by_model.startswith(case.field), f"{case.id}: model names {by_model}"
    assert not disagreements, "\n".join(disagreements)
    # The corpus covers what the issue asks: every separator, for every patterned string field.
    assert len(corpus.CASES) >= 40 and len(refused) >= 100


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("model.properties", {f"option.key_{i:05d}": "v" * 90 for i in range(10_000)}, "spec.model.properties"),
        ("model.requirements", [f"package-{i}" for i in range(5000)], "spec.model.requirements"),
        ("aws.tags", {f"tag-{i}": "v" for i in range(500)}, "spec.aws.tags"),
    ],
    ids=["10000-properties-1MB", "5000-requirements", "500-tags"],
)
def test_oversized_resources_are_refused(kubectl: Kubectl, namespace: str, path: str, value: Any, field: str) -> None:
    manifest = copy.deepcopy(corpus.VALID)
    section, leaf = path.split(".")
    manifest["spec"][section][leaf] = value
    created, refused = _server_dry_run(kubectl, namespace, [manifest])
    assert not created
    assert field in refused["valid"], refused


def test_region_is_immutable_other_updates_pass(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(corpus.VALID, "-n", namespace)
    moved = copy.deepcopy(corpus.VALID)
    moved["spec"]["aws"]["region"] = "eu-west-1"
    result = kubectl.apply(moved, "-n", namespace, check=False)
    assert result.returncode != 0
    assert IMMUTABLE_REGION in result.stderr and "spec.aws.region" in result.stderr

    # Everything else may still change, including the rest of spec.aws.
    changed = copy.deepcopy(corpus.VALID)
    changed["spec"]["instance"]["count"] = 2
    changed["spec"]["aws"]["artifactBucket"] = "other-artifacts"
    changed["spec"]["aws"]["tags"] = {"team": "ml"}
    kubectl.apply(changed, "-n", namespace)
    stored = kubectl.get_json("djle", "valid", "-n", namespace)
    assert stored["spec"]["aws"]["region"] == "us-east-1"
    assert stored["spec"]["instance"]["count"] == 2 and stored["spec"]["aws"]["artifactBucket"] == "other-artifacts"

    # Omitting the region means its default, which is what was stored: no change.
    defaulted = copy.deepcopy(changed)
    del defaulted["spec"]["aws"]["region"]
    kubectl.apply(defaulted, "-n", namespace)
