"""Generates the DjlEndpoint CustomResourceDefinition from the typed models.

Kubernetes wants a *structural* OpenAPI v3 schema: no ``$ref``, no ``anyOf``
around a type, ``type`` on every node. Pydantic's JSON schema is close; this
module inlines references, drops ``null`` alternatives (an omitted field is how
Kubernetes spells "none") and keeps the validation keywords the API server
enforces.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from djl_operator import api

# JSON-schema keywords the API server understands and we keep.
_KEPT_KEYWORDS = (
    "description",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "maxProperties",
    "default",
)
# Every status string the operator writes gets a bound too (the typed status model stays
# lenient: reading a status must never fail).
_STATUS_MAX_LENGTH = 2048
_STATUS_LONG_TEXT = {"message": 32768, "failureReason": 32768}
_STATUS_MAX_CONDITIONS = 8


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        alternatives = [alt for alt in node["anyOf"] if alt.get("type") != "null"]
        if len(alternatives) != 1:
            raise ValueError(f"cannot express a union of {alternatives} structurally")
        merged = {**alternatives[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        if merged.get("default", "missing") is None:
            merged.pop("default")
        return _structural(merged, defs)

    out: dict[str, Any] = {}
    json_type = node.get("type")
    if json_type is None and "enum" in node:
        json_type = "string"
    if json_type is None:
        raise ValueError(f"schema node without a type: {node}")
    out["type"] = json_type
    for key in _KEPT_KEYWORDS:
        if key in node:
            out[key] = node[key]
    if json_type == "object":
        properties = node.get("properties")
        if properties:
            out["properties"] = {name: _structural(sub, defs) for name, sub in properties.items()}
            if node.get("required"):
                out["required"] = sorted(node["required"])
        extra = node.get("additionalProperties")
        patterned = node.get("patternProperties")
        if patterned:
            # A map whose keys have a pattern: the values' schema, plus the key
            # constraints as JSON schema's propertyNames (turned into CEL for the CRD).
            ((key_pattern, extra),) = patterned.items()
            out["propertyNames"] = {**node.get("propertyNames", {}), "pattern": key_pattern}
        if isinstance(extra, dict):
            out["additionalProperties"] = _structural(extra, defs)
    elif json_type == "array":
        out["items"] = _structural(node["items"], defs)
    # Mutable defaults ({} and []) are noise in a CRD; omitted is equivalent.
    if out.get("default") in ({}, []):
        out.pop("default")
    return out


def _schema_for(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def _key_rule(names: dict[str, Any]) -> dict[str, str]:
    """propertyNames as CEL: structural schemas cannot constrain map keys otherwise."""
    pattern = names["pattern"]
    if "'" in pattern:
        raise ValueError(f"key pattern {pattern!r} cannot be a raw CEL string")
    low, high = names.get("minLength", 0), names["maxLength"]
    return {
        "rule": f"self.all(k, size(k) >= {low} && size(k) <= {high} && k.matches(r'{pattern}'))",
        "message": f"every key must be {low}-{high} characters matching {pattern}",
    }


def _strategy_is(strategy: str) -> str:
    return f"(has(self.strategy) ? self.strategy : 'AllAtOnce') == '{strategy}'"


# spec.rollout: the combinations SageMaker refuses, as api.rollout_problems words them.
ROLLOUT_RULES: list[dict[str, str]] = [
    *(
        {
            "rule": f"!has(self.{name}) || {_strategy_is(strategy)}",
            "message": f"{name} is only valid with strategy {strategy}",
            "fieldPath": f".{name}",
        }
        for name, strategy in (
            ("canaryPercent", "Canary"),
            ("linearStepPercent", "Linear"),
            ("rollingBatchPercent", "Rolling"),
            ("rollbackBatchPercent", "Rolling"),
        )
    ),
    *(
        {"rule": f"!({_strategy_is(strategy)}) || has(self.{name})", "message": f"strategy {strategy} requires {name}"}
        for name, strategy in (
            ("canaryPercent", "Canary"),
            ("linearStepPercent", "Linear"),
            ("rollingBatchPercent", "Rolling"),
        )
    ),
    {
        "rule": f"!({_strategy_is('Rolling')}) || !has(self.terminationWaitSeconds)",
        "message": "terminationWaitSeconds is only valid with blue/green strategies (not Rolling)",
        "fieldPath": ".terminationWaitSeconds",
    },
    {
        "rule": "!has(self.maximumExecutionTimeoutSeconds) || self.maximumExecutionTimeoutSeconds > "
        "(has(self.waitIntervalSeconds) ? self.waitIntervalSeconds : 0) + "
        "(has(self.terminationWaitSeconds) ? self.terminationWaitSeconds : 0)",
        "message": "maximumExecutionTimeoutSeconds must be larger than waitIntervalSeconds plus terminationWaitSeconds",
        "fieldPath": ".maximumExecutionTimeoutSeconds",
    },
]


def _spec_schema(*, json_schema: bool) -> dict[str, Any]:
    schema = _schema_for(api.DjlEndpointSpec)
    props = schema["properties"]
    # The API server rejects an image that names both an explicit URI and a framework version.
    props["image"]["x-kubernetes-validations"] = [
        {
            "rule": "!(has(self.uri) && has(self.version))",
            "message": "set either image.uri or image.version, not both",
            "fieldPath": ".uri",
        }
    ]
    props["rollout"]["x-kubernetes-validations"] = list(ROLLOUT_RULES)
    # Moving an endpoint between regions would strand the old one: refused at the API server.
    props["aws"]["x-kubernetes-validations"] = [
        {
            "rule": "self.region == oldSelf.region",
            "message": "spec.aws.region is immutable: create a new DjlEndpoint in the other region",
            "fieldPath": ".region",
        }
    ]
    _autoscaling_rules(schema)
    # spec.model.snapshot and tokenSecretRef: the same rules as ModelSpec._snapshot_needs_hub_id.
    props["model"]["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.snapshot) || !self.snapshot || !self.id.startsWith('s3://')",
            "message": "snapshot copies a Hugging Face model id; an s3:// model id is served as it is",
            "fieldPath": ".snapshot",
        },
        {
            "rule": "!has(self.tokenSecretRef) || (has(self.snapshot) && self.snapshot)",
            "message": "tokenSecretRef needs snapshot: true (the token is only ever used by the operator)",
            "fieldPath": ".tokenSecretRef",
        },
        {
            "rule": "!has(self.networkIsolation) || !self.networkIsolation || (has(self.snapshot) && self.snapshot)",
            "message": api.NETWORK_ISOLATION_NEEDS_SNAPSHOT,
            "fieldPath": ".networkIsolation",
        },
        {
            "rule": "!has(self.networkIsolation) || !self.networkIsolation || !has(self.requirements)"
            " || size(self.requirements) == 0",
            "message": api.NETWORK_ISOLATION_NO_REQUIREMENTS,
            "fieldPath": ".requirements",
        },
    ]
    extra_rules = {
        ("model", "properties"): [
            {
                "rule": f"self.map(k, size(k) + size(self[k])).sum() <= {api.MAX_PROPERTIES_TOTAL}",
                "message": f"keys and values may hold at most {api.MAX_PROPERTIES_TOTAL} characters in all",
            }
        ],
        ("aws", "tags"): [
            {
                "rule": "self.all(k, " + " && ".join(f"!k.startsWith('{p}')" for p in api.RESERVED_TAG_PREFIXES) + ")",
                "message": f"tag keys starting with {' or '.join(api.RESERVED_TAG_PREFIXES)} are reserved",
            }
        ],
    }
    for (section, name), rules in extra_rules.items():
        node = props[section]["properties"][name]
        names = node.pop("propertyNames")
        if json_schema:
            # kubeconform ignores CEL; patternProperties (the key pattern carries its length bound)
            # makes a bad key an "additional property" reported at the map's own path.
            node["patternProperties"] = {names["pattern"]: node.pop("additionalProperties")}
            node["additionalProperties"] = False
        else:
            node["x-kubernetes-validations"] = [_key_rule(names), *rules]
    return schema


def _autoscaling_rules(schema: dict[str, Any]) -> None:
    """The API server's half of the checks api.AutoscalingSpec and DjlEndpointSpec make (same messages)."""
    scaling = schema["properties"]["autoscaling"]
    scaling["x-kubernetes-validations"] = [
        {
            "rule": "self.minInstances <= self.maxInstances",
            "message": "minInstances must not exceed maxInstances",
            "fieldPath": ".minInstances",
        },
        {
            "rule": "has(self.invocationsPerInstance) != has(self.concurrentRequestsPerModel)",
            "message": "set exactly one target: invocationsPerInstance or concurrentRequestsPerModel",
        },
    ]
    schedules = scaling["properties"]["schedules"]
    # One scheduled action per name: the API server refuses duplicates as it does for any map-list.
    schedules["x-kubernetes-list-type"] = "map"
    schedules["x-kubernetes-list-map-keys"] = ["name"]
    schedules["items"]["x-kubernetes-validations"] = [
        {
            "rule": "has(self.minInstances) || has(self.maxInstances)",
            "message": "set minInstances, maxInstances or both",
        },
        {
            "rule": "!has(self.minInstances) || !has(self.maxInstances) || self.minInstances <= self.maxInstances",
            "message": "minInstances must not exceed maxInstances",
            "fieldPath": ".minInstances",
        },
    ]
    # kubectl scale writes spec.instance.count: with autoscaling on it must lie within the bounds.
    schema["x-kubernetes-validations"] = [
        {
            "rule": "!has(self.autoscaling) || (self.instance.count >= self.autoscaling.minInstances"
            " && self.instance.count <= self.autoscaling.maxInstances)",
            "message": "instance.count must lie within autoscaling.minInstances and autoscaling.maxInstances",
            "fieldPath": ".instance.count",
        }
    ]


def spec_schema() -> dict[str, Any]:
    return _spec_schema(json_schema=False)


def _bound_strings(node: dict[str, Any], name: str = "") -> None:
    if node["type"] == "string" and "maxLength" not in node and "enum" not in node:
        node["maxLength"] = _STATUS_LONG_TEXT.get(name, _STATUS_MAX_LENGTH)
    for child, sub in node.get("properties", {}).items():
        _bound_strings(sub, child)
    if "items" in node:
        _bound_strings(node["items"])


def status_schema() -> dict[str, Any]:
    schema = _schema_for(api.DjlEndpointStatus)
    _bound_strings(schema)
    conditions = schema["properties"]["conditions"]
    conditions["maxItems"] = _STATUS_MAX_CONDITIONS
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["items"]["required"] = ["lastTransitionTime", "reason", "status", "type"]
    # What a new object reads as before the operator's first write: the API server applies this
    # default on every read of an object without status, so kstatus (Flux, kpt, cli-utils) sees
    # generation 1 not yet observed (InProgress) from the first read after apply, and the STATUS
    # column says Pending instead of nothing.
    schema["default"] = dict(INITIAL_STATUS)
    return schema


INITIAL_STATUS: dict[str, Any] = {"observedGeneration": 0, "phase": api.Phase.PENDING.value}


# `kubectl scale` sets spec.instance.count (see the README's Autoscaling section).
SCALE_SUBRESOURCE = {
    "specReplicasPath": ".spec.instance.count",
    "statusReplicasPath": ".status.instances.current",
    "labelSelectorPath": ".status.instances.selector",
}


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Status", "type": "string", "jsonPath": ".status.phase", "description": "Lifecycle phase"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Ready condition",
    },
    {
        "name": "Instances",
        "type": "string",
        "jsonPath": ".status.instances.summary",
        "description": "Current/desired instance count",
    },
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpointName", "description": "SageMaker endpoint"},
    {"name": "Instance", "type": "string", "jsonPath": ".spec.instance.type", "description": "Instance type"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.id", "description": "Model id"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "URL",
        "type": "string",
        "jsonPath": ".status.endpointUrl",
        "priority": 1,
        "description": "InvokeEndpoint URL",
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
        "description": "Reason of the Ready condition",
    },
    {
        "name": "Snapshot",
        "type": "string",
        "jsonPath": ".status.snapshot.progress",
        "priority": 1,
        "description": "Bytes of the Hub snapshot copied to S3 (spec.model.snapshot)",
    },
    {
        "name": "Rollout",
        "type": "string",
        "jsonPath": ".status.rollout.summary",
        "priority": 1,
        "description": "The update in progress: strategy, share of the traffic on the new config, stage",
    },
]


def custom_resource_definition() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{api.PLURAL}.{api.GROUP}"},
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": ["djl", "sagemaker"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": SCALE_SUBRESOURCE},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "DjlEndpoint serves a Hugging Face model with DJL Serving "
                            "on an Amazon SageMaker real-time endpoint.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


JSON_SCHEMA_PATH = f"schemas/{api.GROUP}/{api.KIND.lower()}_{api.VERSION}.json"


def _closed(node: dict[str, Any]) -> dict[str, Any]:
    """openapi2jsonschema's strict form: objects with declared fields refuse others."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {name: _closed(sub) for name, sub in node["properties"].items()}
        out.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _closed(node["additionalProperties"])
    if "patternProperties" in node:
        out["patternProperties"] = {key: _closed(sub) for key, sub in node["patternProperties"].items()}
    if "items" in node:
        out["items"] = _closed(node["items"])
    return out


def json_schema() -> dict[str, Any]:
    """The resource's JSON schema in the CRDs-catalog layout kubeconform reads
    (``-schema-location 'schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'``).

    Generated from the typed models rather than converted from the CRD: map key
    rules stay JSON schema's propertyNames (the CRD can only say them in CEL,
    which kubeconform does not run), and no converter trips over the field
    named ``properties``.
    """
    version = custom_resource_definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema = _closed({**version, "properties": {**version["properties"], "spec": _spec_schema(json_schema=True)}})
    # metadata is Kubernetes' own; kubeconform checks it against nothing here.
    schema["properties"]["metadata"] = {"type": "object"}
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{api.GROUP}/{api.VERSION}"]}
    schema["properties"]["kind"] = {"type": "string", "enum": [api.KIND]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def render_yaml() -> str:
    header = "# Generated by `djl-operator crd` from operator/djl_operator/api.py. Do not edit.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=120)


# The CRD as shipped: package data written by `make crd`, so what the image installs never
# depends on the botocore it happens to run with (the instance-type enum comes from botocore).
SHIPPED_CRD = "crds/djlendpoint.yaml"


def shipped_yaml() -> str:
    """The CRD shipped with this package (``djl_operator/crds/djlendpoint.yaml``)."""
    return importlib.resources.files("djl_operator").joinpath(SHIPPED_CRD).read_text()


def shipped_paths() -> list[Path]:
    """The shipped CRD files, for callers that apply files (an installed package, not a zip)."""
    return [Path(str(importlib.resources.files("djl_operator").joinpath(SHIPPED_CRD)))]


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        values = node["enum"]
        parts.append(f"one of {len(values)} botocore instance types" if len(values) > 20 else " \\| ".join(values))
    if "minimum" in node or "maximum" in node:
        parts.append(f"{node.get('minimum', '')}..{node.get('maximum', '')}")
    if "pattern" in node and "enum" not in node:
        parts.append(f"pattern `{node['pattern']}`".replace("|", "\\|"))
    if "maxLength" in node and "pattern" not in node:
        parts.append(f"max {node['maxLength']} chars")
    if "maxItems" in node:
        length = node["items"].get("maxLength")
        parts.append(f"max {node['maxItems']} entries" + (f" of {length} chars" if length else ""))
    if "maxProperties" in node:
        value = node.get("additionalProperties", {})
        parts.append(f"max {node['maxProperties']} entries; values max {value.get('maxLength', '?')} chars")
    return "; ".join(parts)


def reference_markdown() -> str:
    """A Markdown table of every spec field, for the README's configuration reference."""
    rows = ["| Field | Type | Default | Constraints | Description |", "|---|---|---|---|---|"]

    def walk(node: dict[str, Any], path: str, required: set[str]) -> None:
        for name, sub in node.get("properties", {}).items():
            field_path = f"{path}.{name}"
            json_type = sub["type"] if sub["type"] != "object" or "properties" in sub else "map[string]string"
            if json_type == "array":
                json_type = f"[]{sub['items']['type']}"
            default = f"`{sub['default']}`" if "default" in sub else ("**required**" if name in required else "")
            description = sub.get("description", "").replace("|", "\\|")
            rows.append(f"| `{field_path}` | {json_type} | {default} | {_constraints(sub)} | {description} |")
            if "properties" in sub:
                walk(sub, field_path, set(sub.get("required", [])))
            elif json_type == "[]object" and "properties" in sub["items"]:
                walk(sub["items"], f"{field_path}[]", set(sub["items"].get("required", [])))

    schema = spec_schema()
    walk(schema, "spec", set(schema.get("required", [])))
    return "\n".join(rows) + "\n"
