"""The host side of DJL's Python protocol and the server's parts, without HTTP:
serving.properties, artifacts, batch building/splitting, the batcher."""

from __future__ import annotations

import json
import tarfile
import threading

import pytest

from djl_operator_kit.serving.artifact import ArtifactError, open_artifact, parse_properties
from djl_operator_kit.serving.batching import Batcher
from djl_operator_kit.serving.loader import HandlerError, load_handler
from djl_operator_kit.serving.protocol import Response, build_batch, invoke, new_input, split_batch_output
from tests.plugins.models import MODEL_TEMPLATE, render_properties, write_artifact


@pytest.fixture(scope="module")
def compat():
    load_handler(MODEL_TEMPLATE)  # puts the template folder, hence djl_compat, on sys.path
    import djl_compat

    return djl_compat


PROPERTIES = [
    ("engine=Python\noption.model_id=org/m\n", {"engine": "Python", "option.model_id": "org/m"}),
    # java.util.Properties keeps a value's trailing blanks (tests/unit/test_javaprops.py has the rest).
    ("# comment\n! other\n\n  batch_size = 4  \n", {"batch_size": "4  "}),
    ("option.model_id: s3://b/p/\n", {"option.model_id": "s3://b/p/"}),
    ("a=b=c\n", {"a": "b=c"}),
]


@pytest.mark.parametrize(("text", "expected"), PROPERTIES)
def test_parse_properties(text, expected):
    assert parse_properties(text) == expected


def test_parse_properties_refuses_what_java_refuses():
    # A bare "just words" line is the key "just" to Java; only a malformed \uXXXX fails.
    assert parse_properties("just words\n") == {"just": "words"}
    with pytest.raises(ArtifactError, match=r"serving\.properties"):
        parse_properties("engine=Python\nkey=\\u00zz\n")


def test_artifact_folder_and_tarball(tmp_path):
    folder = write_artifact(tmp_path / "a", render_properties("org/m", "fill-mask", batch_size=8, max_batch_delay=5))
    artifact = open_artifact(folder, tmp_path / "unused")
    assert (artifact.batch_size, artifact.max_batch_delay_ms, artifact.entry_point) == (8, 5, "model.py")
    handed = artifact.handler_properties()
    assert (
        handed["model_id"] == "org/m" and handed["task"] == "fill-mask" and handed["model_dir"] == str(folder.resolve())
    )
    assert "batch_size" not in handed and "engine" not in handed  # DJL keeps top-level keys to itself
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for path in folder.iterdir():
            archive.add(path, arcname=path.name)
    unpacked = open_artifact(tarball, tmp_path / "scratch")
    assert unpacked.root == (tmp_path / "scratch").resolve() and unpacked.properties == artifact.properties


ARTIFACT_BAD = [
    ("engine=Python\nbatch_size=0\n", "batch_size must be an integer >= 1"),
    ("engine=Python\nmax_batch_delay=soon\n", "max_batch_delay must be an integer >= 0"),
    ("engine=PyTorch\n", "engine 'PyTorch'"),
    ("engine=Python\noption.entryPoint=other.py\n", "option.entryPoint 'other.py' not found"),
]


@pytest.mark.parametrize(("properties", "error"), ARTIFACT_BAD)
def test_artifact_errors_name_the_key(tmp_path, properties, error):
    folder = write_artifact(tmp_path, properties)
    with pytest.raises(ArtifactError, match=error):
        open_artifact(folder, tmp_path)


def test_artifact_without_properties(tmp_path):
    with pytest.raises(ArtifactError, match=r"no serving\.properties"):
        open_artifact(tmp_path, tmp_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        open_artifact(tmp_path / "nope.tar.gz", tmp_path)


def test_loader_reports_a_missing_handler(tmp_path):
    (tmp_path / "model.py").write_text("x = 1\n")
    with pytest.raises(HandlerError, match="no function 'handle'"):
        load_handler(tmp_path)
    (tmp_path / "broken.py").write_text("raise RuntimeError('bad import')\n")
    with pytest.raises(HandlerError, match="bad import"):
        load_handler(tmp_path, "broken.py")


def test_build_batch_round_trips_through_get_batches(compat):
    requests = [
        new_input(compat.Input, [("Content-Type", "text/plain"), ("X-Id", str(i))], f"body {i}".encode())
        for i in range(12)
    ]
    batch = build_batch(compat.Input, requests)
    assert batch.properties["batch_size"] == "12" and batch.content.key_at(11) == "batch_011.data"
    items = batch.get_batches()
    assert [item.get_as_string() for item in items] == [f"body {i}" for i in range(12)]
    assert [item.get_property("x-id") for item in items] == [str(i) for i in range(12)]


def _batched_output(compat, code=200, keys=("batch_000.data", "batch_001.data"), properties=None):
    output = compat.Output(code=code)
    output.add_property("content-type", "application/json")
    for name, value in (properties or {}).items():
        output.add_property(name, value)
    for i, key in enumerate(keys):
        output.add_as_json({"item": i}, key=key)
    return output


def test_split_batch_output(compat):
    first, second = split_batch_output(_batched_output(compat, keys=("batch_001.data", "batch_000.data")), 2)
    assert json.loads(first.body) == {"item": 1} and json.loads(second.body) == {"item": 0}
    assert first.status == 200 and first.content_type == "application/json"
    flagged = split_batch_output(_batched_output(compat, properties={"batch_001.code": "400"}), 2)
    assert [r.status for r in flagged] == [200, 400]


def test_split_batch_output_failures(compat):
    failed = compat.Output().error("model broke", code=500)
    assert [r.status for r in split_batch_output(failed, 3)] == [500, 500, 500]
    assert all(b"model broke" in r.body for r in split_batch_output(failed, 3))
    short = split_batch_output(_batched_output(compat), 3)
    assert {r.status for r in short} == {500} and b"Batch output size mismatch, expected: 3" in short[0].body
    wrong = split_batch_output(_batched_output(compat, keys=("data", "batch_001.data")), 2)
    assert {r.status for r in wrong} == {500} and b"Unexpected batch output key: data" in wrong[0].body
    assert split_batch_output(None, 2)[0].status == 500


def test_invoke_survives_a_raising_handler(compat):
    def handle(_inputs):
        raise RuntimeError("kaboom")

    responses = invoke(handle, compat.Input, [compat.Input(), compat.Input()])
    assert [r.status for r in responses] == [500, 500] and b"kaboom" in responses[0].body


def test_batcher_groups_concurrent_requests():
    calls: list[int] = []
    lock = threading.Lock()

    def call(requests):
        with lock:
            calls.append(len(requests))
        return [Response(200, str(r).encode(), "text/plain") for r in requests]

    batcher = Batcher(call, batch_size=3, max_batch_delay_s=2.0)
    answers: dict[int, bytes] = {}

    def client(i: int) -> None:
        answers[i] = batcher.submit(i, timeout_s=10).body

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    batcher.close()
    assert calls == [3]  # a full batch goes at once, before the delay runs out
    assert answers == {0: b"0", 1: b"1", 2: b"2"}
    assert batcher.submit(9, timeout_s=1).status == 503  # closed


def test_batcher_without_batching_calls_one_by_one():
    calls: list[int] = []
    batcher = Batcher(lambda rs: calls.append(len(rs)) or [Response(200, b"", None)] * len(rs), 1, 1.0)
    assert [batcher.submit(i, timeout_s=5).status for i in range(3)] == [200, 200, 200]
    batcher.close()
    assert calls == [1, 1, 1]


def test_batcher_survives_a_broken_call():
    batcher = Batcher(lambda rs: [], batch_size=1, max_batch_delay_s=0)
    first = batcher.submit("x", timeout_s=5)
    assert first.status == 500 and b"0 answers for 1 requests" in first.body
    assert batcher.submit("y", timeout_s=5).status == 500  # still answering
    batcher.close()
