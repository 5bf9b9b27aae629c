"""spec.rollout end to end: the operator, SageMaker's deployment guardrails in the emulator, and a
background invoker counting which model answered.

The endpoint serves a tiny feature-extraction model; version 1 pools its embeddings by mean, version 2
by the CLS token, so every answer tells which fleet gave it. The emulator routes the new fleet's share
of the calls evenly (every tenth call for 10 %); the windows in which each share applied are read from
DescribeEndpoint's VariantStatus (the emulator's own clock), never guessed from sleeps.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from djl_operator import naming
from djl_operator.invoke import kubectl_path
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.emulator import error_alarm
from tests.plugins.models import needs_torch
from tests.plugins.operator import BUCKET, OPERATOR_ACCESS_KEY, Cluster, endpoint_manifest, wait_for

pytestmark = needs_torch

MODEL_PREFIX = "models/tiny-rollout/"
ALARM = "rollout-5xx"


@dataclass
class Answer:
    started: float
    ended: float
    vector: tuple[float, ...] | None
    error: str | None = None


# Between a thread's calls, outside a window that counts them: the traffic stays continuous (three
# threads, each calling ten times a second) without back-to-back calls taking the machine's cores
# from the model server being started and from the tests running beside this one.
PACE = 0.1


@dataclass
class Invoker:
    """Threads calling InvokeEndpoint until stopped, each pausing ``pause`` seconds between its calls
    (0: back to back); every answer kept with its times."""

    runtime: Any
    endpoint: str
    pause: float = PACE
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                body = self.runtime.invoke_endpoint(
                    EndpointName=self.endpoint, Body=b'{"inputs": "hello world"}', ContentType="application/json"
                )["Body"].read()
                answer = Answer(started, time.time(), tuple(json.loads(body)))
            except Exception as exc:  # every failure is counted, none may happen
                answer = Answer(started, time.time(), None, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.answers.append(answer)
            if self.pause:
                self._stop.wait(self.pause)

    def start(self, threads: int = 3) -> Invoker:
        for i in range(threads):
            thread = threading.Thread(target=self._run, name=f"invoker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=70)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def within(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.snapshot() if start <= a.started and a.ended <= end]


@dataclass
class StageWatcher:
    """Records every (stage message, StartTime) DescribeEndpoint's pending variant reports, polling fast."""

    sagemaker: Any
    endpoint: str
    seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    error: BaseException | None = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.1):
                pending = self.sagemaker.describe_endpoint(EndpointName=self.endpoint).get("PendingDeploymentSummary")
                for status in (pending or {}).get("ProductionVariants", [{}])[0].get("VariantStatus", []):
                    key = f"{status['Status']}: {status.get('StatusMessage', '')}"
                    self.seen.setdefault(key, status["StartTime"].timestamp())
        except BaseException as exc:  # a dead watcher must fail the wait on it, not time it out
            self.error = exc
            raise

    def start(self) -> StageWatcher:
        self._thread = threading.Thread(target=self._run, name="stage-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def started(self, stage: str, percent: int) -> float | None:
        if self.error is not None:
            raise AssertionError(f"the stage watcher stopped: {self.error!r}")
        wanted = f"{stage}: " if stage != "Baking" else "Baking: Baking for"
        return next(
            (t for key, t in self.seen.items() if key.startswith(wanted) and key.endswith(f"on {percent}% capacity")),
            None,
        )


@pytest.fixture
def rollout_world(cluster: Cluster, tiny_model_dir: Callable[[str], Path]) -> Iterator[Callable[..., Any]]:
    """apply(name, pooling, rollout): the tiny model from S3, pooled as asked, rolled out as asked."""
    weights = tiny_model_dir("feature-extraction")
    for path in sorted(p for p in weights.rglob("*") if p.is_file()):
        cluster.s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.relative_to(weights).as_posix())
    error_alarm(cluster.emulator.client("cloudwatch"), ALARM)
    started: list[Any] = []

    def apply(name: str, pooling: str, rollout: dict[str, Any]) -> None:
        cluster.apply(
            endpoint_manifest(
                name,
                model__id=f"s3://{BUCKET}/{MODEL_PREFIX}",
                model__properties={"option.pooling": pooling},
                rollout=rollout,
            )
        )

    def invoker(name: str) -> Invoker:
        runtime = cluster.emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
        started.append(Invoker(runtime, naming.endpoint_name(cluster.namespace, name)).start())
        return started[-1]  # type: ignore[no-any-return]

    def watcher(name: str) -> StageWatcher:
        started.append(
            StageWatcher(cluster.emulator.client("sagemaker"), naming.endpoint_name(cluster.namespace, name))
        )
        return started[-1].start()  # type: ignore[no-any-return]

    apply.invoker = invoker  # type: ignore[attr-defined]
    apply.watcher = watcher  # type: ignore[attr-defined]
    yield apply
    for thing in started:
        thing.stop()


def _first_vector(invoker: Invoker) -> tuple[float, ...]:
    answer = wait_for(lambda: next((a for a in invoker.snapshot() if a.vector), None), timeout=120, what="an answer")
    assert answer.vector is not None
    return answer.vector


def _operator_calls(cluster: Cluster, operation: str, endpoint: str, after: int = 0) -> list[Any]:
    return [
        c
        for c in cluster.emulator.calls()[after:]
        if c.principal == OPERATOR_ACCESS_KEY and c.operation == operation and c.resource == endpoint
    ]


# The share is measured over at least this many calls during the canary's bake.
CANARY_CALLS = 400


@pytest.mark.slow  # a unit of its own under make test's xdist (tests/conftest.py)
def test_canary_sends_its_share_while_baking_then_everything(cluster: Cluster, rollout_world: Any) -> None:
    canary = {"strategy": "Canary", "canaryPercent": 10, "waitIntervalSeconds": 300, "rollbackAlarms": [ALARM]}
    rollout_world("canary", "mean", canary)
    cluster.wait_ready("canary", timeout=120)
    endpoint = naming.endpoint_name(cluster.namespace, "canary")
    invoker = rollout_world.invoker("canary")
    old = _first_vector(invoker)
    watcher = rollout_world.watcher("canary")

    rollout_world("canary", "cls", canary)
    # The status shows the canary baking at 10 % (the operator's poll, not the emulator's word).
    baking = wait_for(
        lambda: (r := cluster.status("canary").get("rollout")) and r.get("trafficPercent") == 10 and r,
        timeout=120,
        what="status.rollout at 10%",
    )
    assert baking["stage"] == "Baking" and baking["strategy"] == "Canary" and baking["summary"] == "Canary 10% Baking"
    assert baking["nextStepTime"]
    bake_start = wait_for(lambda: watcher.started("Baking", 10), what="the 10% bake's StartTime")
    invoker.pause = 0  # back to back while the share is measured (this bake lasts until they are made)
    # The 300 s bake (what DescribeEndpoint says) lasts as long as CANARY_CALLS take, whatever the
    # machine's load: then a smaller guardrail time scale ends it (the emulator counts the change from
    # the bake's start and ends it when it sees the change), and the final bake lasts 3 s.
    wait_for(
        lambda: sum(1 for a in invoker.snapshot() if a.started >= bake_start) >= CANARY_CALLS + 20,
        timeout=240,
        interval=0.2,
        what=f"{CANARY_CALLS} calls while baking",
    )
    cluster.emulator.faults.set(guardrail_time_scale=0.01)
    invoker.pause = PACE
    # Then the rest of the traffic moves (traffic is activated and the final bake starts in one instant).
    full_start = wait_for(lambda: watcher.started("Baking", 100), timeout=60, what="the 100% step")
    status = cluster.wait_ready("canary", timeout=120)
    assert "rollout" not in status
    after_ready = len(invoker.snapshot())
    wait_for(lambda: len(invoker.snapshot()) >= after_ready + 20, what="calls after the rollout")
    invoker.stop()

    answers = invoker.snapshot()
    assert [a.error for a in answers if a.error] == []  # zero failed invocations
    during = [a for a in answers if bake_start <= a.started and a.ended <= full_start]
    new = [a for a in during if a.vector != old]
    assert len(during) >= CANARY_CALLS
    share = 100 * len(new) / len(during)
    assert 5 <= share <= 15, f"{len(new)} of {len(during)} calls answered by the new model while baking"
    assert len({a.vector for a in new}) == 1  # one new model
    after = [a for a in answers if a.started >= full_start]
    assert after and {a.vector for a in after} == {new[0].vector}  # then 100 %
    # Only the configured shift: one UpdateEndpoint, carrying the canary.
    [update] = _operator_calls(cluster, "UpdateEndpoint", endpoint)
    assert update.ok

    def progress() -> list[str] | None:  # the last one may still be in the operator's event queue
        messages = [e["message"] for e in cluster.events("canary") if e["reason"] == "RolloutProgress"]
        return messages if any("100% of the traffic" in m for m in messages) else None

    messages = wait_for(progress, timeout=15, what="the rollout's 100% event")
    assert len(messages) >= 2
    assert any("Baking, 10% of the traffic" in m for m in messages)
    assert any("100% of the traffic" in m for m in messages)


@pytest.mark.slow  # a unit of its own under make test's xdist (tests/conftest.py)
def test_linear_steps_through_its_percentages_in_kubectl_get_wide_watch(
    control_plane: ControlPlane, cluster: Cluster, rollout_world: Any
) -> None:
    linear = {"strategy": "Linear", "linearStepPercent": 50, "waitIntervalSeconds": 3}
    rollout_world("linear", "mean", linear)
    cluster.wait_ready("linear", timeout=120)
    invoker = rollout_world.invoker("linear")
    _first_vector(invoker)
    watch = subprocess.Popen(
        [
            kubectl_path(),
            f"--kubeconfig={control_plane.admin_kubeconfig}",
            "get",
            "djlendpoints",
            "linear",
            "-n",
            cluster.namespace,
            "-o",
            "wide",
            "-w",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watch.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: lines, what="the watch's header")
        rollout_world("linear", "cls", linear)
        wait_for(lambda: any("Linear 100% Baking" in line for line in lines), timeout=120, what="the 100% step")
        cluster.wait_ready("linear", timeout=60)
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=10)
        invoker.stop()
    assert lines[0].split()[-1] == "ROLLOUT"
    steps = [line.split("Linear ", 1)[1].split()[0] for line in lines if "Linear " in line]
    shares = list(dict.fromkeys(steps))  # each share once, in the order seen
    assert shares[-2:] == ["50%", "100%"] and shares.index("50%") < shares.index("100%")
    assert [a.error for a in invoker.snapshot() if a.error] == []


@pytest.mark.slow  # a unit of its own under make test's xdist (tests/conftest.py)
def test_an_alarm_while_baking_rolls_back_stalls_naming_it_and_leaks_nothing(
    cluster: Cluster, rollout_world: Any
) -> None:
    canary = {"strategy": "Canary", "canaryPercent": 10, "waitIntervalSeconds": 600, "rollbackAlarms": [ALARM]}
    rollout_world("guarded", "mean", canary)
    cluster.apply(endpoint_manifest("witness"))  # its resyncs show the operator kept looking
    first = cluster.wait_ready("guarded", timeout=120)
    cluster.wait_ready("witness", timeout=120)
    endpoint = naming.endpoint_name(cluster.namespace, "guarded")
    live_model, live_config = first["modelName"], first["endpointConfigName"]
    invoker = rollout_world.invoker("guarded")
    old = _first_vector(invoker)

    rollout_world("guarded", "cls", canary)
    wait_for(lambda: (r := cluster.status("guarded").get("rollout")) and r.get("stage") == "Baking", timeout=120)
    wait_for(lambda: any(a.vector not in (None, old) for a in invoker.snapshot()), what="the canary answering")
    looked = len(cluster.emulator.calls())
    cluster.emulator.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx")

    stalled = cluster.wait_condition("guarded", "Stalled", "RolledBackByAlarm", timeout=30)
    # Within one poll: a stalled resource makes no more calls, so these are all the looks it took; at most
    # the one in flight when the alarm fired, and the one that saw the rollback.
    assert 1 <= len(_operator_calls(cluster, "DescribeEndpoint", endpoint, after=looked)) <= 2
    assert ALARM in stalled["message"] and live_config in stalled["message"]
    status = cluster.status("guarded")
    ready = cluster.condition("guarded", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolledBackByAlarm")
    assert status["phase"] == "RolledBack" and status["endpointConfigName"] == live_config
    assert "rollout" not in status
    # The old config still serves, and every call was answered.
    after = len(invoker.snapshot())
    wait_for(lambda: len(invoker.snapshot()) >= after + 20, what="calls after the rollback")
    assert {a.vector for a in invoker.snapshot()[after:]} == {old}
    # No retry loop: while the witness is resynced twice, the stalled resource makes no AWS call at all.
    seen = len(cluster.emulator.calls())
    witness = naming.endpoint_name(cluster.namespace, "witness")
    wait_for(lambda: len(_operator_calls(cluster, "DescribeEndpoint", witness, after=seen)) >= 2, timeout=30)
    assert [
        c for c in cluster.emulator.calls()[seen:] if c.principal == OPERATOR_ACCESS_KEY and c.resource == endpoint
    ] == []
    assert len(_operator_calls(cluster, "UpdateEndpoint", endpoint)) == 1
    invoker.stop()
    assert [a.error for a in invoker.snapshot() if a.error] == []
    # Nothing of the rolled-back version is left: the model, config and artifact that serve, only.
    assert [m for m in cluster.model_names() if m.startswith("guarded-")] == [live_model]
    assert [c for c in cluster.config_names() if c.startswith("guarded-")] == [live_config]
    [artifact] = [k for k in cluster.artifact_keys() if f"/{cluster.namespace}/guarded/" in k]
    live = cluster.sagemaker.describe_model(ModelName=live_model)["PrimaryContainer"]["ModelDataUrl"]
    assert live == f"s3://{BUCKET}/{artifact}"
    events = [e for e in cluster.wait_events("guarded", "RolledBackByAlarm") if e["reason"] == "RolledBackByAlarm"]
    assert len(events) == 1 and ALARM in events[0]["message"]

    # Stalled until the spec changes, and any change counts: dropping the alarm guard (the config
    # itself is unchanged) tries the update again, and this time it goes through.
    cluster.emulator.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="fixed")
    rollout_world("guarded", "cls", {"strategy": "AllAtOnce"})
    retried = cluster.wait_ready("guarded", timeout=120)
    assert retried["endpointConfigName"] == status["desiredEndpointConfigName"] != live_config
    assert len(_operator_calls(cluster, "UpdateEndpoint", endpoint)) == 2
