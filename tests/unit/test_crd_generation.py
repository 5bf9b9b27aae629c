"""The committed CRD is exactly what the typed models generate."""

import json
from pathlib import Path

import botocore.session

from djl_operator import api, crd

REPO = Path(__file__).resolve().parents[2]


def test_committed_crd_is_current() -> None:
    assert crd.shipped_yaml() == crd.render_yaml(), "run `make crd`"


def test_every_crd_copy_is_the_shipped_one() -> None:
    """kustomize, Helm and kubeconform each read their own copy; `make crd` writes them all."""
    copies = [
        REPO / "crds" / "djlendpoint.yaml",
        REPO / "manifests" / "crds" / "djlendpoint.yaml",
        REPO / "charts" / "djl-operator-crds" / "files" / "djlendpoint.yaml",
    ]
    for copy in copies:
        assert copy.read_text() == crd.shipped_yaml(), f"{copy.relative_to(REPO)} is stale: run `make crd`"


def test_instance_type_enum_is_botocores() -> None:
    schema = crd.spec_schema()
    enum = schema["properties"]["instance"]["properties"]["type"]["enum"]
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert enum == list(model.shape_for("ProductionVariantInstanceType").enum)
    assert "ml.g5.12xlarge" in enum and "ml.g5.12xlarg" not in enum


def _walk(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    nodes = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes += _walk(sub, f"{path}.{name}")
    if "items" in schema:
        nodes += _walk(schema["items"], f"{path}[]")
    return nodes


def test_every_field_is_described_and_typed() -> None:
    for path, node in _walk(crd.spec_schema(), "spec") + _walk(crd.status_schema(), "status"):
        assert "type" in node, path
        if path not in ("spec", "status") and not path.endswith("[]"):
            assert node.get("description"), f"{path} has no description"


def test_spec_fields_are_camel_case_and_match_models() -> None:
    spec = crd.spec_schema()["properties"]
    assert set(spec) == {f.alias or n for n, f in api.DjlEndpointSpec.model_fields.items()}
    assert "tensorParallelDegree" in spec["model"]["properties"]
    assert "volumeSizeGB" in spec["instance"]["properties"]
    assert "executionRoleArn" in spec["aws"]["properties"]
    assert spec["deletionPolicy"]["enum"] == ["Delete", "Retain"]


def test_status_declares_every_field_the_operator_writes() -> None:
    status = crd.status_schema()["properties"]
    assert set(status) == {f.alias or n for n, f in api.DjlEndpointStatus.model_fields.items()}
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["properties"]) >= {"type", "status", "reason", "message", "lastTransitionTime"}


def test_printer_columns() -> None:
    version = crd.custom_resource_definition()["spec"]["versions"][0]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns)[:7] == ["Status", "Ready", "Instances", "Endpoint", "Instance", "Model", "Age"]
    assert columns["Instances"]["jsonPath"] == ".status.instances.summary"
    assert columns["URL"]["priority"] == 1 and columns["Reason"]["priority"] == 1
    assert api.PLURAL == "djlendpoints" and crd.custom_resource_definition()["spec"]["names"]["shortNames"] == ["djle"]


def test_readme_reference_is_current() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- reference:start -->\n")[1].split("<!-- reference:end -->")[0]
    assert section == crd.reference_markdown(), "refresh the README section from `djl-operator crd --reference`"
    assert "`spec.instance.type`" in section and "`spec.aws.executionRoleArn`" in section


def test_committed_json_schema_is_current() -> None:
    committed = (REPO / crd.JSON_SCHEMA_PATH).read_text()
    assert committed == crd.render_json_schema(), "run `make crd` (djl-operator crd --json-schema -o ...)"
    assert crd.JSON_SCHEMA_PATH == "schemas/serving.djl-operator.io/djlendpoint_v1alpha1.json"


def _strings(schema: dict, path: str = "spec") -> list[tuple[str, dict]]:
    found = []
    for name, sub in schema.get("properties", {}).items():
        found += _strings(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += _strings(schema[key], f"{path}[]")
    if schema.get("type") in ("string", "array", "object") and path:
        found.append((path, schema))
    return found


def test_every_string_list_and_map_is_bounded() -> None:
    for path, node in _strings(crd.spec_schema()) + _strings(crd.status_schema(), "status"):
        if node["type"] == "string":
            assert "maxLength" in node or "enum" in node, path
        elif node["type"] == "array":
            assert "maxItems" in node, path
        elif "properties" not in node and path not in ("spec", "status"):  # a map
            assert "maxProperties" in node and node.get("x-kubernetes-validations"), path


def test_spec_patterns_use_no_engine_specific_classes() -> None:
    """RE2 and Rust's regex read \\s, \\d, \\w and Unicode classes differently: explicit ASCII only."""
    for path, node in _strings(crd.spec_schema()):
        pattern = node.get("pattern", "")
        for token in ("\\s", "\\S", "\\d", "\\D", "\\w", "\\W", "\\p", "\\b", "\\z", "\\Z", "\\A"):
            assert token not in pattern, f"{path}: {pattern}"


def test_largest_spec_fits_the_annotations_kubectl_and_kopf_keep() -> None:
    """kubectl apply keeps the spec in last-applied-configuration (Go JSON, raw UTF-8) and kopf
    in last-handled-configuration (Python JSON, \\u escapes); annotations share 256 KiB."""
    emoji = "\U0001f600"  # the costliest character: 4 bytes of UTF-8, 12 of escaped JSON
    properties: dict[str, str] = {}
    left = api.MAX_PROPERTIES_TOTAL
    while left > 0 and len(properties) < api.MAX_PROPERTIES:
        key = f"option.k{len(properties):03d}"
        size = max(0, min(api.MAX_PROPERTY_VALUE, left - len(key)))
        properties[key] = emoji * size
        left -= len(key) + size
    quoted = 'x; python_version == "3"' + '"' * (api.MAX_REQUIREMENT - 24)  # '"' doubles in JSON
    spec = {
        "model": {
            "id": "s3://" + "b" * 63 + "/" + "k" * (1024 - 69),
            "revision": "r" * 128,
            "properties": properties,
            "requirements": [quoted[: api.MAX_REQUIREMENT]] * api.MAX_REQUIREMENTS,
        },
        "image": {"uri": "x" * 255},
        "instance": {"type": "ml.g5.48xlarge", "count": 1000, "volumeSizeGB": 512},
        "aws": {
            "region": "us-gov-west-1",
            "executionRoleArn": "r" * 2048,
            "artifactBucket": "b" * 63,
            "artifactPrefix": "p" * 512,
            "kmsKeyId": "k" * 2048,
            "tags": {f"{i:03d}".ljust(api.MAX_TAG_KEY, "t"): "v" * api.MAX_TAG_VALUE for i in range(api.MAX_TAGS)},
        },
        "endpointName": "e" * 63,
    }

    kopf = len(json.dumps({"spec": spec}, separators=(",", ":")))
    kubectl = len(json.dumps({"spec": spec}, separators=(",", ":"), ensure_ascii=False).encode())
    assert kopf + kubectl < 240 * 1024, (kopf, kubectl)
    assert kopf < 160 * 1024
