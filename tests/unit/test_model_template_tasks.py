"""The model template end to end on tiny random models (one per task) and on the
real all-MiniLM-L6-v2: outputs by shape and type, errors as 4xx, one load."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from djl_operator_kit.serving.artifact import open_artifact
from djl_operator_kit.serving.loader import LoadedHandler, load_handler
from djl_operator_kit.serving.protocol import Response, invoke, new_input
from tests.plugins.models import HIDDEN


class Served:
    """A handler loaded from an artifact, after DJL's empty load call."""

    def __init__(self, artifact_dir: Path) -> None:
        artifact = open_artifact(artifact_dir, artifact_dir)
        self.loaded: LoadedHandler = load_handler(artifact.root)
        init = self.loaded.input_cls()
        init.properties.update(artifact.handler_properties())
        self.load_output = self.loaded.handle(init)

    def request(self, body: Any, content_type: str = "application/json") -> Any:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return new_input(self.loaded.input_cls, [("Content-Type", content_type)], raw)

    def call(self, *requests: Any) -> list[Response]:
        return invoke(self.loaded.handle, self.loaded.input_cls, list(requests))

    def one(self, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
        (response,) = self.call(self.request(body, content_type))
        return response.status, json.loads(response.body)

    @property
    def load_count(self) -> int:
        return int(self.loaded.module.load_count())


@pytest.fixture(scope="module")
def served(tiny_artifact: Callable[..., Path]) -> Callable[..., Served]:
    cache: dict[str, Served] = {}

    def get(task: str) -> Served:
        if task not in cache:
            cache[task] = Served(tiny_artifact(task))
            assert cache[task].load_output is None  # the load call answers nothing, as DJL expects
        return cache[task]

    return get


def test_feature_extraction_pooling(served):
    model = served("feature-extraction")
    status, tokens = model.one({"inputs": "the quick brown fox"})
    assert status == 200
    assert len(tokens) == 6 and all(len(vector) == HIDDEN for vector in tokens)  # [CLS] 4 words [SEP]
    status, pooled = model.one({"inputs": ["the fox", "a cat sat on the mat"], "parameters": {"pooling": "mean"}})
    assert status == 200 and [len(v) for v in pooled] == [HIDDEN, HIDDEN]
    status, cls = model.one({"inputs": "the fox", "parameters": {"pooling": "cls", "normalize": True}})
    assert status == 200 and abs(sum(x * x for x in cls) - 1.0) < 1e-4
    # Padding must not leak into a text's result: alone or batched with a longer text, same vector.
    _, alone = model.one({"inputs": "the fox", "parameters": {"pooling": "mean"}})
    assert pooled[0] == pytest.approx(alone, abs=1e-5)


def test_text_generation_returns_text(served):
    model = served("text-generation")
    status, result = model.one({"inputs": "the quick brown fox", "parameters": {"max_new_tokens": 5}})
    assert status == 200 and result["generated_text"].startswith("the quick brown fox")
    assert len(result["generated_text"].split()) > 4
    status, results = model.one(
        {"inputs": ["hello", "the cat sat"], "parameters": {"max_new_tokens": 3, "return_full_text": False}}
    )
    assert status == 200 and len(results) == 2
    assert all(isinstance(r["generated_text"], str) and r["generated_text"].strip() for r in results)


@pytest.mark.parametrize(
    ("task", "key"), [("text2text-generation", "generated_text"), ("summarization", "summary_text")]
)
def test_seq2seq_returns_text(served, task, key):
    status, results = served(task).one(
        {"inputs": ["the quick brown fox", "hello"], "parameters": {"max_new_tokens": 4}}
    )
    assert status == 200 and len(results) == 2
    assert all(set(r) == {key} and 1 <= len(r[key].split()) <= 4 for r in results)


def test_fill_mask(served):
    status, candidates = served("fill-mask").one({"inputs": "the quick [MASK] fox", "parameters": {"top_k": 3}})
    assert status == 200 and len(candidates) == 3
    assert [set(c) for c in candidates] == [{"score", "token", "token_str", "sequence"}] * 3
    assert candidates[0]["score"] >= candidates[1]["score"] >= candidates[2]["score"]
    assert all(c["sequence"] == f"the quick {c['token_str']} fox" for c in candidates)


def test_text_classification(served):
    model = served("text-classification")
    status, best = model.one("the quick brown fox", content_type="text/plain")
    assert status == 200 and best["label"] in {"negative", "neutral", "positive"} and 0 < best["score"] < 1
    status, ranked = model.one({"inputs": ["hello world"], "parameters": {"top_k": 3}})
    assert status == 200 and len(ranked[0]) == 3 and sum(r["score"] for r in ranked[0]) == pytest.approx(1.0)


def test_token_classification(served):
    status, entities = served("token-classification").one(
        {"inputs": "the quick brown fox", "parameters": {"ignore_labels": []}}
    )
    assert status == 200
    assert [e["word"] for e in entities] == ["the", "quick", "brown", "fox"]
    assert [(e["start"], e["end"]) for e in entities] == [(0, 3), (4, 9), (10, 15), (16, 19)]
    assert all(e["entity"] in {"O", "B-THING", "I-THING"} for e in entities)
    _, default = served("token-classification").one({"inputs": "the quick brown fox"})
    assert all(e["entity"] != "O" for e in default)  # "O" is left out unless asked for


BAD_REQUESTS = [
    ("", "text/plain", "empty text"),
    ({"inputs": ""}, "application/json", "empty text"),
    (["just", "a", "list"], "application/json", "wrong JSON shape"),
    ({"inputs": "a", "parameters": {"temperature": 0.5}}, "application/json", "unsupported parameter(s)"),
]


@pytest.mark.parametrize(("body", "content_type", "words"), BAD_REQUESTS)
def test_bad_requests_get_4xx_and_the_worker_survives(served, body, content_type, words):
    model = served("feature-extraction")
    status, error = model.one(body, content_type)
    assert status == 400 and words in error["error"] and error["code"] == 400
    assert model.one({"inputs": "the fox"})[0] == 200
    assert model.load_count == 1


def test_fill_mask_without_mask_token_is_a_bad_request(served):
    status, error = served("fill-mask").one({"inputs": ["a [MASK] b", "no mask here"]})
    assert status == 400 and "must contain the mask token '[MASK]'; \"inputs[1]\" has none" in error["error"]


def test_batch_answers_each_request_and_flags_only_the_bad_one(served):
    model = served("feature-extraction")
    responses = model.call(
        model.request({"inputs": "the fox", "parameters": {"pooling": "mean"}}),
        model.request({"inputs": ""}),
        model.request("a cat sat", content_type="text/plain"),
        model.request({"inputs": ["hello", "world"], "parameters": {"pooling": "cls"}}),
    )
    assert [r.status for r in responses] == [200, 400, 200, 200]
    assert len(json.loads(responses[0].body)) == HIDDEN
    assert "empty text" in json.loads(responses[1].body)["error"]
    assert len(json.loads(responses[2].body)) == 5  # per-token: [CLS] a cat sat [SEP]
    assert [len(v) for v in json.loads(responses[3].body)] == [HIDDEN, HIDDEN]
    assert model.load_count == 1


def test_model_loads_once(served):
    model = served("text-classification")
    for _ in range(3):
        assert model.one({"inputs": "hello"})[0] == 200
    empty = model.loaded.input_cls()  # DJL may repeat the empty call (warm-up): still no reload
    assert model.loaded.handle(empty) is None
    assert model.load_count == 1


def test_model_failure_is_a_5xx_with_the_message(tiny_artifact, tmp_path):
    broken = Served(tiny_artifact("feature-extraction", model_id=tmp_path / "missing"))
    assert broken.load_output.code == 500
    status, error = broken.one({"inputs": "hello"})
    assert status == 500 and "model failed to load" in error["error"] and "missing" in error["error"]
    assert broken.load_count == 1  # a failed load is reported, not retried per request


def test_trust_remote_code_only_when_allowed(tiny_artifact, tiny_model_dir):
    config = json.loads((tiny_model_dir("feature-extraction") / "config.json").read_text())
    assert "auto_map" not in config  # the tiny model has no remote code: loads either way
    allowed = Served(tiny_artifact("feature-extraction", trust_remote_code=True))
    assert allowed.load_output is None and allowed.loaded.module._service.config.trust_remote_code is True
    refused = Served(tiny_artifact("feature-extraction", trust_remote_code="maybe"))
    assert refused.load_output.code == 500
    assert (
        "option.trust_remote_code must be true or false"
        in json.loads(bytes(refused.load_output.content.value_at(0)))["error"]
    )


def test_minilm_mean_pooling_matches_sentence_transformers(tiny_artifact, minilm_model_dir):
    from sentence_transformers import SentenceTransformer

    texts = ["A man is eating food.", "The new movie is awesome, I loved every minute of it!"]
    model = Served(tiny_artifact("feature-extraction", model_id=minilm_model_dir, pooling="mean"))
    status, ours = model.one({"inputs": texts})
    assert status == 200 and [len(v) for v in ours] == [384, 384]
    # The sentence-transformers pipeline is Transformer -> mean Pooling -> Normalize;
    # normalise ours the same way (cosine does not care, the magnitude check does).
    reference = SentenceTransformer(str(minilm_model_dir), device="cpu").encode(texts, normalize_embeddings=False)
    for mine, theirs in zip(ours, reference, strict=True):
        dot = sum(a * float(b) for a, b in zip(mine, theirs, strict=True))
        norms = sum(a * a for a in mine) ** 0.5 * sum(float(b) ** 2 for b in theirs) ** 0.5
        assert dot / norms >= 0.999
