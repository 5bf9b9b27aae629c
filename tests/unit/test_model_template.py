"""The model template's pure parts: request parsing, parameter checks, properties,
and the djl_python-compatible Input/Output."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from djl_operator_kit.serving.loader import load_handler
from tests.plugins.models import MODEL_TEMPLATE


@pytest.fixture(scope="module")
def template() -> ModuleType:
    return load_handler(MODEL_TEMPLATE).module


@pytest.fixture(scope="module")
def compat(template: ModuleType) -> ModuleType:
    import djl_compat  # on sys.path once the template is loaded

    return djl_compat


PARSE_OK = [
    # content type, body, texts, parameters, single
    ("text/plain", b"hello world", ("hello world",), {}, True),
    (None, b"hello", ("hello",), {}, True),
    ("text/plain; charset=utf-8", "h\u00e9llo".encode(), ("h\u00e9llo",), {}, True),
    ("application/json", b'{"inputs": "a b"}', ("a b",), {}, True),
    ("application/json", b'{"inputs": ["a", "b"]}', ("a", "b"), {}, False),
    ("application/json", b'{"inputs": ["a"], "parameters": {"pooling": "cls"}}', ("a",), {"pooling": "cls"}, False),
    ("application/json; charset=utf-8", b'{"inputs": "x", "parameters": {}}', ("x",), {}, True),
]


@pytest.mark.parametrize(("content_type", "body", "texts", "parameters", "single"), PARSE_OK)
def test_parse_request_accepts(template, content_type, body, texts, parameters, single):
    request = template.parse_request("feature-extraction", content_type, body)
    assert (request.texts, request.parameters, request.single) == (texts, parameters, single)


PARSE_BAD = [
    # content type, body, status, words the message must contain
    ("text/plain", b"", 400, "empty text"),
    ("text/plain", b"   \n", 400, "empty text"),
    ("application/json", b"", 400, "empty text"),
    ("application/json", b'{"inputs": ""}', 400, 'empty text: "inputs" is empty'),
    ("application/json", b'{"inputs": ["a", " "]}', 400, '"inputs[1]" is empty'),
    ("application/json", b"[1, 2]", 400, "wrong JSON shape"),
    ("application/json", b'{"text": "a"}', 400, "unknown field(s) text"),
    ("application/json", b'{"parameters": {}}', 400, '"inputs" is required'),
    ("application/json", b'{"inputs": []}', 400, "non-empty list"),
    ("application/json", b'{"inputs": 3}', 400, "non-empty list"),
    ("application/json", b'{"inputs": ["a", 3]}', 400, '"inputs[1]" must be a string'),
    ("application/json", b'{"inputs": "a", "parameters": []}', 400, '"parameters" must be a JSON object'),
    ("application/json", b'{"inputs": "a", "parameters": {"top_k": 3}}', 400, "unsupported parameter(s)"),
    ("application/json", b'{"inputs": "a", "parameters": {"pooling": "max"}}', 400, "'pooling' must be one of"),
    ("application/json", b"{not json", 400, "not valid JSON"),
    ("text/plain", b"\xff\xfe", 400, "not valid UTF-8"),
    ("image/png", b"\x89PNG", 415, "unsupported content type 'image/png'"),
    ("application/json", json.dumps({"inputs": ["a"] * 257}).encode(), 400, "at most 256"),
]


@pytest.mark.parametrize(("content_type", "body", "status", "words"), PARSE_BAD)
def test_parse_request_refuses_naming_the_problem(template, content_type, body, status, words):
    with pytest.raises(template.BadRequest) as caught:
        template.parse_request("feature-extraction", content_type, body)
    assert caught.value.code == status
    assert words in str(caught.value)


PARAMETERS = [
    ("text-generation", {"max_new_tokens": 5, "do_sample": False}, None),
    ("text-generation", {"max_new_tokens": 0}, "'max_new_tokens' must be an integer from 1"),
    ("text-generation", {"max_new_tokens": True}, "'max_new_tokens' must be an integer"),
    ("text-generation", {"temperature": 0}, "'temperature' must be a number above 0"),
    ("text-generation", {"top_p": 1.5}, "'top_p'"),
    ("text-generation", {"return_full_text": "yes"}, "'return_full_text' must be true or false"),
    ("summarization", {"return_full_text": False}, "unsupported parameter(s) for task summarization: return_full_text"),
    ("fill-mask", {"top_k": 3}, None),
    ("fill-mask", {"top_k": 0}, "'top_k'"),
    ("text-classification", {"top_k": 2}, None),
    ("token-classification", {"ignore_labels": []}, None),
    ("token-classification", {"ignore_labels": "O"}, "'ignore_labels' must be a list"),
    ("feature-extraction", {"normalize": True, "pooling": "mean"}, None),
    ("feature-extraction", {"max_new_tokens": 3}, "unsupported parameter(s) for task feature-extraction"),
]


@pytest.mark.parametrize(("task", "parameters", "error"), PARAMETERS)
def test_validate_parameters(template, task, parameters, error):
    if error is None:
        assert template.validate_parameters(task, parameters) == parameters
    else:
        with pytest.raises(template.BadRequest, match=error.replace("(", r"\(").replace(")", r"\)")):
            template.validate_parameters(task, parameters)


def test_config_reads_option_keys_with_or_without_prefix(template):
    with_prefix = {
        "option.model_id": "org/model",
        "option.task": "fill-mask",
        "option.dtype": "bf16",
        "option.revision": "main",
        "option.trust_remote_code": "TRUE",
        "option.pooling": "mean",
        "option.tensor_parallel_degree": "2",
    }
    stripped = {key.removeprefix("option."): value for key, value in with_prefix.items()}
    for properties in (with_prefix, stripped):
        config = template.Config.from_properties(properties)
        assert (config.model_id, config.task, config.dtype, config.revision) == (
            "org/model",
            "fill-mask",
            "bf16",
            "main",
        )
        assert (config.trust_remote_code, config.pooling, config.tensor_parallel_degree) == (True, "mean", 2)


def test_config_defaults_and_model_dir(template, tmp_path):
    (tmp_path / "weights").mkdir()
    config = template.Config.from_properties({"model_dir": str(tmp_path)})
    assert (config.model_id, config.task, config.pooling, config.trust_remote_code) == (
        str(tmp_path),
        "feature-extraction",
        "none",
        False,
    )
    # A relative model_id naming a folder inside the artifact resolves against model_dir.
    relative = template.Config.from_properties({"model_dir": str(tmp_path), "model_id": "weights"})
    assert relative.model_id == str(tmp_path / "weights") and relative.is_local


CONFIG_BAD = [
    ({}, "option.model_id is required"),
    ({"model_id": "m", "task": "translation"}, "option.task must be one of"),
    ({"model_id": "m", "dtype": "fp8"}, "option.dtype must be one of"),
    ({"model_id": "m", "pooling": "max"}, "option.pooling must be one of mean, cls, none"),
    ({"model_id": "m", "trust_remote_code": "yes"}, "option.trust_remote_code must be true or false"),
    ({"model_id": "m", "tensor_parallel_degree": "0"}, "option.tensor_parallel_degree must be a positive integer"),
    ({"model_id": "s3://bucket/prefix/"}, "S3 prefix"),
    # Both spellings, different values: neither may silently win.
    ({"model_id": "m", "option.tensor_parallel_degree": "1", "tensor_parallel_degree": "8"}, "disagree"),
    ({"option.model_id": "a/b", "model_id": "c/d"}, "disagree"),
]


@pytest.mark.parametrize(("properties", "error"), CONFIG_BAD)
def test_config_refuses_bad_properties(template, properties, error):
    with pytest.raises(template.ConfigError, match=error):
        template.Config.from_properties(properties)


def test_input_batches_split_properties_and_content(compat):
    batch = compat.Input()
    batch.properties.update(
        {"batch_size": "2", "batch_000.Content-Type": "text/plain", "batch_001.Content-Type": "application/json"}
    )
    batch.content.add("batch_000.data", bytearray(b"first"))
    batch.content.add("batch_001.data", bytearray(b'{"inputs": "second"}'))
    first, second = batch.get_batches()
    assert batch.is_batch() and batch.get_batch_size() == 2
    assert first.get_property("content-type") == "text/plain" and first.get_as_string() == "first"
    assert second.get_as_json() == {"inputs": "second"} and second.get_data() == {"inputs": "second"}
    assert not first.is_batch() and first.get_batches() == [first]


def test_input_content_access(compat):
    request = compat.Input()
    assert request.is_empty() and request.get_as_bytes() is None and request.get_data() is None
    request.content.add("other", bytearray(b"x"))
    request.content.add("data", bytearray(b"y"))
    assert request.get_as_bytes() == b"y"  # "data" wins over position
    assert request.get_as_string("other") == "x" and request.contains_key("other")
    with pytest.raises(KeyError, match="missing"):
        request.get_as_bytes("missing")


def test_output_error_and_add(compat):
    output = compat.Output().error("boom", code=400, message="bad request")
    assert output.code == 400 and output.message == "bad request"
    assert output.properties["content-type"] == "application/json"
    assert json.loads(bytes(output.content.value_at(0))) == {"code": 400, "message": "bad request", "error": "boom"}
    added = compat.Output().add("text").add(b"raw", key="k").add({"a": 1}).add_as_json([1], batch_index=2)
    assert [bytes(v) for v in added.content.get_values()] == [b"text", b"raw", b'{"a":1}', b"[1]"]
    assert added.content.get_keys() == [None, "k", None, "batch_2."]
    assert compat.Output().set_code(503).set_message("busy").code == 503
