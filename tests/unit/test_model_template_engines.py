"""The model template under both of DJL's Python-engine modes.

Two small harnesses call ``handle`` the way djl-serving's engines do
(``engines/python/setup/djl_python``):

* ``sync_engine``: ``python_sync_engine.py`` calls ``handle(inputs)`` on its one
  thread and sends what comes back; ``None`` becomes a 204, anything that is not
  an ``Output`` an error.
* ``AsyncEngine``: ``python_async_engine.py`` runs an asyncio loop; a receiver
  thread submits each request with ``run_coroutine_threadsafe``, the coroutine
  does ``outputs = await handle(inputs)`` (``ModelService.invoke_handler_async``
  in ``service_loader.py``), accepts an ``Output``, an async generator of them
  or ``None`` (204), and tags every output with the request's
  ``request_tracking_id``.

The template's Input/Output stand in for djl_python's (the engine checks
``isinstance(outputs, Output)`` against the class the handler imported).
"""

from __future__ import annotations

import asyncio
import json
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from djl_operator_kit.serving.artifact import open_artifact
from djl_operator_kit.serving.loader import LoadedHandler, load_handler
from djl_operator_kit.serving.protocol import new_input

TRACKING_KEY = "request_tracking_id"


def _output_cls(loaded: LoadedHandler) -> type:
    cls: type = loaded.module.Output
    return cls


def _model_dir(loaded: LoadedHandler) -> str:
    return str(Path(str(loaded.module.__file__)).parent)


def sync_engine(loaded: LoadedHandler, inputs: Any) -> Any:
    """One call as PythonSyncEngine.run_server makes it."""
    output_cls = _output_cls(loaded)
    try:
        inputs.properties["model_dir"] = _model_dir(loaded)  # ModelService.invoke_handler does
        outputs = loaded.handle(inputs)
        if outputs is None:
            outputs = output_cls(code=204, message="No content")
        elif not isinstance(outputs, output_cls):
            outputs = output_cls().error(f"Invalid output type: {type(outputs)}")
    except Exception as exc:  # the engine turns any exception into an error Output
        outputs = output_cls().error(str(exc))
    return outputs


class AsyncEngine:
    """PythonAsyncEngine's loop, receiver thread and output queue, minus the socket."""

    def __init__(self, loaded: LoadedHandler) -> None:
        self.loaded = loaded
        self.output_cls = _output_cls(loaded)
        self.outputs: dict[str, list[Any]] = {}
        self.errors: list[BaseException] = []

    async def _invoke_handler(self, inputs: Any) -> None:
        tracking = inputs.get_property(TRACKING_KEY)
        try:
            inputs.properties["model_dir"] = _model_dir(self.loaded)  # ModelService.invoke_handler_async does
            outputs = await self.loaded.handle(inputs)
        except Exception as exc:  # as the engine does: logged, answered with an error Output
            self.errors.append(exc)
            outputs = self.output_cls().error(str(exc), message="service.invoke_handler_async() failure")
        if outputs is None:
            outputs = self.output_cls(code=204, message="No content")
        elif not isinstance(outputs, self.output_cls | types.AsyncGeneratorType):
            outputs = self.output_cls().error(f"Invalid type returned: {type(outputs)}")
        if isinstance(outputs, types.AsyncGeneratorType):
            async for output in outputs:
                output.add_property(TRACKING_KEY, tracking)
                self.outputs.setdefault(tracking, []).append(output)
            return
        outputs.add_property(TRACKING_KEY, tracking)
        self.outputs.setdefault(tracking, []).append(outputs)

    def run(self, requests: list[Any], after_submit: Callable[[], Any] | None = None) -> dict[str, list[Any]]:
        """Submit every request from a receiver thread, as they 'arrive', and wait for all answers."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            futures: list[Any] = []

            def receive() -> None:
                for index, request in enumerate(requests):
                    request.properties[TRACKING_KEY] = f"req-{index}"
                    futures.append(asyncio.run_coroutine_threadsafe(self._invoke_handler(request), loop))
                if after_submit is not None:
                    after_submit()

            receiver = threading.Thread(target=receive)
            receiver.start()
            await loop.run_in_executor(None, receiver.join)
            await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))

        asyncio.run(main())
        return self.outputs


def _load(artifact_dir: Path) -> tuple[LoadedHandler, Any]:
    artifact = open_artifact(artifact_dir, artifact_dir)
    loaded = load_handler(artifact.root)
    init = loaded.input_cls()
    init.properties.update(artifact.handler_properties())
    return loaded, init


def _request(loaded: LoadedHandler, body: dict[str, Any]) -> Any:
    return new_input(loaded.input_cls, [("Content-Type", "application/json")], json.dumps(body).encode())


def _body(output: Any) -> Any:
    return json.loads(bytes(output.content.value_at(0)))


@pytest.fixture(scope="module")
def generation_artifact(tiny_artifact: Callable[..., Path]) -> Path:
    return tiny_artifact("text-generation")


def test_sync_engine_loads_then_answers(generation_artifact):
    loaded, init = _load(generation_artifact)
    load_answer = sync_engine(loaded, init)
    assert load_answer.code == 204  # the load call answers nothing
    output = sync_engine(loaded, _request(loaded, {"inputs": "the quick", "parameters": {"max_new_tokens": 3}}))
    assert output.code == 200
    assert _body(output)["generated_text"].startswith("the quick")


def test_async_engine_awaits_the_handler(generation_artifact):
    loaded, init = _load(generation_artifact)
    engine = AsyncEngine(loaded)
    prompts = ["the quick", "a cat sat", "hello world", "red blue"]
    requests = [init] + [_request(loaded, {"inputs": p, "parameters": {"max_new_tokens": 3}}) for p in prompts]
    answers = engine.run(requests)
    assert engine.errors == []
    assert answers["req-0"][0].code == 204  # load call
    for index, prompt in enumerate(prompts, start=1):
        (output,) = answers[f"req-{index}"]
        assert output.code == 200, output.content.value_at(0)
        assert output.properties[TRACKING_KEY] == f"req-{index}"
        assert _body(output)["generated_text"].startswith(prompt)


def test_async_engine_batches_what_arrives_together(tiny_artifact):
    loaded, init = _load(tiny_artifact("feature-extraction", pooling="mean"))
    AsyncEngine(loaded).run([init])  # the load call
    before = loaded.module.model_runs()
    texts = ["the quick brown fox", "a cat sat", "hello world", "red blue green"] * 4
    engine = AsyncEngine(loaded)
    busy = threading.Event()  # the worker thread is busy until every request has arrived
    loaded.module._worker().submit(busy.wait, 30)
    answers = engine.run([_request(loaded, {"inputs": t}) for t in texts], after_submit=busy.set)
    assert engine.errors == []
    runs = loaded.module.model_runs() - before
    # The first drain may have taken the first request alone; the rest waited and went together.
    assert runs in (1, 2)
    alone = [_body(sync_engine(loaded, _request(loaded, {"inputs": t}))) for t in texts[:4]]
    for index in range(len(texts)):
        (output,) = answers[f"req-{index}"]
        assert output.code == 200
        assert _body(output) == pytest.approx(alone[index % 4], abs=1e-5)  # batching changes no answer


def test_async_engine_bad_request_is_a_4xx_not_a_crash(generation_artifact):
    loaded, init = _load(generation_artifact)
    engine = AsyncEngine(loaded)
    answers = engine.run([init, _request(loaded, {"inputs": "x", "parameters": {"nope": 1}})])
    assert engine.errors == []
    (output,) = answers["req-1"]
    assert output.code == 400
    assert "unsupported parameter(s)" in _body(output)["error"]


def test_the_async_harness_reproduces_the_sync_only_defect(tmp_path, tiny_artifact):
    """A handler written for the sync engine alone (returns an Output) fails when awaited:
    the harness sees the TypeError DJL's async engine reports."""
    artifact = tiny_artifact(
        "feature-extraction",
        extra_files={
            "sync_only.py": (
                "from djl_compat import Output\ndef handle(inputs):\n    return Output().add_as_json({'ok': True})\n"
            )
        },
    )
    loaded = load_handler(artifact, "sync_only.py")
    engine = AsyncEngine(loaded)
    answers = engine.run([_request(loaded, {"inputs": "a"})])
    assert [type(e) for e in engine.errors] == [TypeError]
    assert "can't be used in 'await' expression" in str(engine.errors[0])
    assert answers["req-0"][0].code == 424
