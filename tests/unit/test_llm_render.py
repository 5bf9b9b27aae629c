"""Today's DJL: the default image, the seed case unchanged, the LLM path on LMI's built-in
handler, deprecation notes, and image pinning across operator upgrades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from djl_operator import api, desired, instance_types, pinning
from djl_operator.artifacts import images, render
from djl_operator.errors import SpecError
from djl_operator.planner import ObservedEndpoint

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "bart-large-feature-extraction"
SEED = REPO / "manifests" / "examples" / "bart-large-feature-extraction.yaml"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
REGISTRY = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference"


def spec_of(
    model: dict[str, Any] | None = None, instance: str = "ml.g5.12xlarge", **sections: Any
) -> api.DjlEndpointSpec:
    body: dict[str, Any] = {
        "model": {"id": "mistralai/Mistral-7B-Instruct-v0.3", **(model or {})},
        "instance": {"type": instance},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts"},
        **sections,
    }
    return api.DjlEndpointSpec.model_validate(body)


# --- the seed case, byte for byte ---------------------------------------------------------------


def test_seed_case_renders_what_it_always_did():
    spec = api.DjlEndpointSpec.model_validate(yaml.safe_load(SEED.read_text())["spec"])
    files = render.render_files(spec)
    assert sorted(files) == ["djl_compat.py", "model.py", "requirements.txt", "serving.properties"]
    assert files["serving.properties"] == (GOLDEN / "serving.properties").read_bytes()
    assert files["requirements.txt"] == (GOLDEN / "requirements.txt").read_bytes()
    assert images.resolve_image_uri(spec) == (GOLDEN / "image_uri.txt").read_text().strip()
    assert images.deprecation_notice(spec) is not None  # djl-deepspeed: a note, never a failure


# --- every family x task ---------------------------------------------------------------------------

T, L = "template", "lmi"  # our model.py serves / LMI's built-in handler serves
FAMILY_TASK = {
    # task:                   djl-lmi  djl-tensorrtllm  djl-deepspeed  djl-neuronx
    "feature-extraction": (T, T, T, T),
    "text-generation": (L, L, T, T),
    "text2text-generation": (L, L, T, T),
    "summarization": (T, T, T, T),
    "fill-mask": (T, T, T, T),
    "text-classification": (T, T, T, T),
    "token-classification": (T, T, T, T),
}
FAMILIES = ("djl-lmi", "djl-tensorrtllm", "djl-deepspeed", "djl-neuronx")
FAMILY_TASK_CASES = [
    pytest.param(family, task, served[i], id=f"{family}-{task}")
    for task, served in FAMILY_TASK.items()
    for i, family in enumerate(FAMILIES)
]


@pytest.mark.parametrize(("family", "task", "served"), FAMILY_TASK_CASES)
def test_family_by_task(family: str, task: str, served: str):
    spec = spec_of({"task": task}, image={"framework": family})
    props = render.serving_properties(spec)
    files = render.render_files(spec)
    expected = {
        "engine": "Python",
        "option.model_id": "mistralai/Mistral-7B-Instruct-v0.3",
        "option.task": task,
        "option.model_loading_timeout": "1800",
    }
    if served == T:
        expected["option.entryPoint"] = "model.py"
        if task == "feature-extraction":
            expected["option.pooling"] = "none"
        assert {"model.py", "djl_compat.py"} <= set(files)
    else:
        assert sorted(files) == ["requirements.txt", "serving.properties"]  # no model.py to become the entry point
    assert props == expected
    assert render.is_llm(spec) is (served == L)


def test_llm_fields_render_through_the_one_writer():
    spec = spec_of(
        {
            "task": "text-generation",
            "rollingBatch": "vllm",
            "maxRollingBatchSize": 64,
            "maxModelLen": 8192,
            "quantize": "fp8",
            "tensorParallelDegree": 4,
            "dtype": "bf16",
        }
    )
    text = render.render_files(spec)["serving.properties"].decode()
    assert text.splitlines()[1:] == [
        "engine=Python",
        "option.model_id=mistralai/Mistral-7B-Instruct-v0.3",
        "option.task=text-generation",
        "option.dtype=bf16",
        "option.tensor_parallel_degree=4",
        "option.rolling_batch=vllm",
        "option.max_rolling_batch_size=64",
        "option.max_model_len=8192",
        "option.quantize=fp8",
        "option.model_loading_timeout=1800",
    ]


def test_tensorrtllm_defaults_and_properties_override_within_policy():
    spec = spec_of(
        {
            "task": "text2text-generation",
            "rollingBatch": "trtllm",
            "properties": {"option.gpu_memory_utilization": "0.9"},
        },
        image={"framework": "djl-tensorrtllm"},
    )
    props = render.serving_properties(spec)
    assert props["option.rolling_batch"] == "trtllm"
    assert props["option.gpu_memory_utilization"] == "0.9"
    assert "option.entryPoint" not in props


LLM_REFUSALS = [
    pytest.param(
        {"rollingBatch": "trtllm"},
        {},
        "ml.g5.12xlarge",
        "spec.model.rollingBatch",
        "djl-lmi images accept auto, disable, vllm",
        id="trtllm-on-lmi",
    ),
    pytest.param(
        {"rollingBatch": "vllm"},
        {"image": {"framework": "djl-tensorrtllm"}},
        "ml.g5.12xlarge",
        "spec.model.rollingBatch",
        "djl-tensorrtllm images accept auto, disable, trtllm",
        id="vllm-on-trtllm",
    ),
    pytest.param(
        {"quantize": "bitsandbytes"},
        {"image": {"framework": "djl-tensorrtllm"}},
        "ml.g5.12xlarge",
        "spec.model.quantize",
        "accept awq, fp8, smoothquant",
        id="bnb-on-trtllm",
    ),
    pytest.param(
        {"tensorParallelDegree": 8},
        {},
        "ml.g5.12xlarge",
        "spec.model.tensorParallelDegree",
        "more than the 4 GPU(s) of ml.g5.12xlarge",
        id="tp-above-gpus",
    ),
    pytest.param(
        {"properties": {"option.tensor_parallel_degree": "2"}},
        {},
        "ml.g5.2xlarge",
        "spec.model.properties[option.tensor_parallel_degree]",
        "more than the 1 GPU(s)",
        id="tp-property",
    ),
    pytest.param({}, {}, "ml.m5.xlarge", "spec.instance.type", "has no GPU", id="cpu-instance"),
    pytest.param(
        {"properties": {"option.entryPoint": "model.py"}},
        {},
        "ml.g5.12xlarge",
        "spec.model.properties[option.entryPoint]",
        "the artifact has no model.py",
        id="model-py-on-llm",
    ),
    pytest.param(
        {"properties": {"option.rolling_batch": "disable"}, "rollingBatch": "vllm"},
        {},
        "ml.g5.12xlarge",
        "spec.model.properties[option.rolling_batch]",
        "contradicts spec.model.rollingBatch",
        id="contradiction",
    ),
]


@pytest.mark.parametrize(("model", "sections", "instance", "field", "words"), LLM_REFUSALS)
def test_llm_refusals_name_the_field(model, sections, instance, field, words):
    with pytest.raises(SpecError) as caught:
        render.serving_properties(spec_of({"task": "text-generation", **model}, instance, **sections))
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize("field", ["rollingBatch", "maxRollingBatchSize", "maxModelLen", "quantize"])
def test_llm_fields_refused_off_the_llm_path(field: str):
    value = {"rollingBatch": "vllm", "maxRollingBatchSize": 8, "maxModelLen": 512, "quantize": "fp8"}[field]
    with pytest.raises(SpecError) as caught:
        render.serving_properties(spec_of({"task": "feature-extraction", field: value}))
    assert caught.value.field == f"spec.model.{field}"
    assert "applies only to LMI's built-in handler" in caught.value.message


def test_llm_path_allows_tp_max_and_a_builtin_entry_point():
    spec = spec_of(
        {
            "task": "text-generation",
            "properties": {
                "option.tensor_parallel_degree": "max",
                "option.entryPoint": "djl_python.lmi_vllm.vllm_async_service",
            },
        }
    )
    props = render.serving_properties(spec)
    assert props["option.tensor_parallel_degree"] == "max"
    assert props["option.entryPoint"] == "djl_python.lmi_vllm.vllm_async_service"


# --- the GPU table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "gpus"),
    [
        ("ml.g5.xlarge", 1), ("ml.g5.12xlarge", 4), ("ml.g5.48xlarge", 8), ("ml.g6.2xlarge", 1),
        ("ml.g6e.24xlarge", 4), ("ml.p4d.24xlarge", 8), ("ml.p5.4xlarge", 1), ("ml.p3.8xlarge", 4),
        ("ml.m5.xlarge", 0), ("ml.c6gn.large", 0), ("ml.t2.medium", 0),
        ("ml.inf2.xlarge", None), ("ml.trn1.2xlarge", None),
    ],
)  # fmt: skip
def test_gpu_count(instance: str, gpus: int | None):
    assert instance_types.gpu_count(instance) == gpus


def test_every_tabled_family_is_a_hosting_family():
    families = {t.rsplit(".", 1)[0] for t in instance_types.hosting_instance_types()}
    assert set(instance_types._GPU_FAMILIES) <= families


# --- defaults, deprecation, pinning ----------------------------------------------------------------


def test_no_image_resolves_the_newest_lmi():
    spec = spec_of({"task": "text-generation"})
    assert spec.image.framework is api.ImageFramework.DJL_LMI and spec.framework_defaulted
    assert images.resolve_image_uri(spec) == images.table_images("djl-lmi", "us-east-1")[0]
    assert images.deprecation_notice(spec) is None


def test_engine_deepspeed_without_a_family_keeps_its_only_family():
    spec = spec_of({"task": "text-generation", "engine": "DeepSpeed", "tensorParallelDegree": 4})
    assert spec.image.framework is api.ImageFramework.DJL_DEEPSPEED
    notice = images.deprecation_notice(spec)
    assert notice is not None and "djl-deepspeed" in notice and "engine DeepSpeed" in notice


def test_neuronx_is_frozen_not_refused():
    spec = spec_of({"task": "feature-extraction"}, "ml.inf2.xlarge", image={"framework": "djl-neuronx"})
    render.serving_properties(spec)
    assert "frozen at 0.29.0" in (images.deprecation_notice(spec) or "")


OLD_LMI = f"{REGISTRY}:0.35.0-lmi17.0.0-cu128"
OLD_DEEPSPEED = f"{REGISTRY}:0.27.0-deepspeed0.12.6-cu121"


@pytest.mark.parametrize(
    ("image", "live", "kept"),
    [
        pytest.param(None, OLD_LMI, OLD_LMI, id="defaulted-keeps-old-lmi"),
        pytest.param(None, OLD_DEEPSPEED, OLD_DEEPSPEED, id="defaulted-keeps-the-family-of-its-day"),
        pytest.param({"framework": "djl-lmi"}, OLD_LMI, OLD_LMI, id="named-family-keeps-its-version"),
        pytest.param({"framework": "djl-lmi"}, OLD_DEEPSPEED, None, id="family-changed-re-resolves"),
        pytest.param({"framework": "djl-lmi", "version": "0.36.0"}, OLD_LMI, None, id="version-named"),
        pytest.param({"uri": f"{REGISTRY}:mine"}, OLD_LMI, None, id="uri-named"),
        pytest.param(None, "123456789012.dkr.ecr.us-east-1.amazonaws.com/other:1", None, id="not-a-table-image"),
        pytest.param(None, None, None, id="not-deployed"),
    ],
)
def test_pinned_image(image, live, kept):
    spec = spec_of({"task": "text-generation"}, **({"image": image} if image else {}))
    assert images.pinned_image_uri(spec, live) == kept


def test_newer_image_is_reported_not_deployed():
    spec = spec_of({"task": "text-generation"})
    newest = images.table_images("djl-lmi", "us-east-1")[0]
    assert images.newer_image_uri(spec, OLD_LMI) == newest
    assert images.newer_image_uri(spec, newest) is None


class _FakeSageMaker:
    """DescribeEndpointConfig / DescribeModel answers and the owner tags AWS holds."""

    def __init__(self, owner: str, image: str) -> None:
        self.owner, self.image = owner, image
        self.model_arn = "arn:aws:sagemaker:us-east-1:123456789012:model/m-1"

    reads = 0

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        self.reads += 1
        return {"EndpointConfigName": name, "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-1"}]}

    def describe_model(self, name: str) -> dict[str, Any]:
        return {"ModelName": name, "ModelArn": self.model_arn, "PrimaryContainer": {"Image": self.image}}

    def is_owned(self, arn: str, owner_uid: str) -> bool:
        return arn == self.model_arn and owner_uid == self.owner


def _observed(config: str, owned: bool = True) -> ObservedEndpoint:
    return ObservedEndpoint(name="e", arn="arn:e", status="InService", config_name=config, owned=owned)


def test_live_image_comes_from_an_owned_model_only():
    assert pinning.live_image(_FakeSageMaker("someone-else", OLD_LMI), _observed("c-foreign-model"), "uid-1") is None
    foreign = _observed("c-foreign-endpoint", owned=False)
    assert pinning.live_image(_FakeSageMaker("uid-1", OLD_LMI), foreign, "uid-1") is None
    assert pinning.live_image(_FakeSageMaker("uid-1", OLD_LMI), None, "uid-1") is None


def test_live_image_is_read_once_per_config():
    sagemaker = _FakeSageMaker("uid-2", OLD_LMI)
    for _ in range(3):
        assert pinning.live_image(sagemaker, _observed("c-owned"), "uid-2") == OLD_LMI
    assert sagemaker.reads == 1  # config names are content-addressed: what one serves never changes


def test_only_a_spec_without_version_or_uri_reads_the_live_image():
    assert pinning.needs_live_image(spec_of({"task": "text-generation"}))
    assert not pinning.needs_live_image(spec_of({"task": "text-generation"}, image={"version": "0.36.0"}))


def _resource(image: dict[str, Any] | None = None) -> api.DjlEndpointResource:
    spec: dict[str, Any] = {
        "model": {"id": "facebook/bart-large", "task": "feature-extraction"},
        "instance": {"type": "ml.g5.xlarge"},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts"},
    }
    if image:
        spec["image"] = image
    body = {"metadata": {"name": "r", "namespace": "ns", "uid": "uid-pin", "generation": 1}, "spec": spec}
    return api.DjlEndpointResource.from_body(body)


def test_an_upgrade_keeps_the_deployed_image_and_reports_the_newer_one():
    resource = _resource()
    fresh = desired.desired_deployment(resource)
    newest = images.table_images("djl-lmi", "us-east-1")[0]
    assert fresh.image_uri == newest and fresh.newer_image_uri is None

    kept = desired.keep_live_image(fresh, resource, _FakeSageMaker("uid-pin", OLD_LMI), _observed("c-pin"))
    assert kept.image_uri == OLD_LMI
    assert kept.newer_image_uri == newest
    assert kept.model_request["PrimaryContainer"]["Image"] == OLD_LMI
    assert kept.target.model_name != fresh.target.model_name  # the names follow the image kept


def test_a_named_version_is_not_pinned_and_reads_nothing():
    resource = _resource({"framework": "djl-lmi", "version": "0.36.0"})
    fresh = desired.desired_deployment(resource)
    sagemaker = _FakeSageMaker("uid-pin", OLD_LMI)
    assert desired.keep_live_image(fresh, resource, sagemaker, _observed("c-named")) is fresh
    assert sagemaker.reads == 0
