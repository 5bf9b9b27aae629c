"""Operator benchmark: latency, load, AWS calls, artifact work and start-up of ``djl-operator run``.

Runs everything against the real local kube-apiserver + etcd
(``djl_operator_kit.controlplane``) and the SageMaker/S3 emulator (in this process),
with the operator as a separate process started exactly like the e2e tests
start it (``python -m djl_operator.cli run --standalone -n NS``). Each phase
gets its own namespace and its own operator process, so call counts and
/proc readings belong to that phase alone. AWS calls are counted from the
emulator's call log; readiness is timed from a watch on the API server.

Phases (operator settings in brackets; unlisted ones are the defaults):

1. latency [poll 1 s]: N resources created one at a time, apply -> Ready, with
   the emulator's creation delay 0 s and 5 s. The default poll interval (30 s)
   would dominate any non-instant creation, so a 1 s poll is used.
2. calls [poll 1 s]: one resource created (delay 0), updated (a model property,
   so a new artifact, model and config), deleted; AWS calls by operation.
3. steady [poll 0.5 s, resync 5 s]: the defaults (poll 30 s, resync 300 s)
   scaled down 60x; calls over several resync intervals, scaled back to an hour
   at the defaults; then an endpoint deleted out of band, to make the operator
   re-run its upload step for an artifact that is already there.
4. artifacts (in this process): packaging time of the sample spec.
5. load [poll 1 s, delay --load-delay]: M resources in one ``kubectl apply``;
   time to all Ready, operator peak RSS and CPU seconds.
6. start-up [all defaults]: spawn -> first AWS call and first status write on a
   pre-existing Ready resource (resume), then RSS once idle; then a few creates
   at delay 0 with the default poll interval, to show what it costs in latency.
7. storm [all defaults]: every SageMaker call throttled while N resources are created;
   SageMaker calls per minute per resource (botocore's retries included) over the
   window and in its last minute, and how long until each resource's first status write.
8. snapshot [poll 1 s, default 8 MiB parts]: spec.model.snapshot of a repo on the local Hub
   holding one synthetic file of --snapshot-gib GiB (generated on the fly, never on disk):
   copy throughput into the emulator's S3 and the operator's RSS while it copies (sampled
   every 0.2 s, against the RSS before the apply), then a new generation of the same commit
   (bytes copied again: none).
9. events (issue 17), side by side with polling in the same run: InService -> Ready p95 with
   the default 30 s poll vs with endpoint events (an EventBridge rule -> SQS queue in the
   emulator); steady-state SageMaker calls per endpoint per hour with events and the batched
   status read (defaults scaled down 240x, so each resource's 6 h resync happens once in the
   window; the polling mode's figure is the steady phase's); M resources in one apply at a 5 s
   creation delay with events: time to all Ready and operator peak RSS.

Add ``--profile`` to record the operator with py-spy during the load phase
(``pip install -e '.[bench]'``); the top functions are printed and kept in the JSON.

``python bench/operator.py`` (full, several minutes) or ``--quick``.
Prints a table; writes ``bench/results/operator-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._support import (  # noqa: E402
    KubeApi,
    PySpy,
    RssSampler,
    Tracked,
    Watch,
    percentile,
    proc_sample,
    profile_summary,
)
from tests.plugins.operator import BUCKET, OperatorProcess  # noqa: E402
from tests.plugins.operator import endpoint_manifest as test_manifest  # noqa: E402

from djl_operator.api import DjlEndpointResource, DjlEndpointSpec, DjlEndpointStatus  # noqa: E402
from djl_operator.artifacts import package  # noqa: E402
from djl_operator.artifacts.images import available_versions  # noqa: E402
from djl_operator.desired import desired_deployment  # noqa: E402
from djl_operator.settings import Settings  # noqa: E402
from djl_operator_kit.controlplane import ControlPlane  # noqa: E402
from djl_operator_kit.emulator import Call, Emulator  # noqa: E402
from djl_operator_kit.hub import LocalHub, Synthetic  # noqa: E402

RESULTS = REPO / "bench" / "results"
DEFAULTS = Settings()
# Minimum AWS calls for a create: PutObject, CreateModel, CreateEndpointConfig, CreateEndpoint,
# and one DescribeEndpoint that sees InService.
MIN_CREATE_CALLS = 5
READ_PREFIXES = ("Describe", "List", "Get", "Head")
STEADY_SCALE = 60.0  # steady-state phase runs the default intervals 60x faster
POLLING_RESYNC = 300.0  # the per-resource resync of the polling mode (the default before the batched read)
UPDATED_PROPERTIES = {"option.max_rolling_batch_size": "8"}


@dataclass
class Row:
    metric: str
    measured: float
    unit: str
    target: float | None = None  # pass when measured <= target
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.target is None:
            return None
        if self.target == 0:
            return 0.0 if self.measured == 0 else float("inf")
        return self.measured / self.target

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.measured <= self.target

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, metric: str, measured: float, unit: str, target: float | None = None, note: str = "") -> None:
        row = Row(metric, round(measured, 3), unit, target, note)
        self.rows.append(row)
        print(
            f"  {metric}: {row.measured:g} {unit}" + (f" (target <= {target:g})" if target is not None else ""),
            flush=True,
        )


def endpoint_manifest(name: str, **overrides: Any) -> dict[str, Any]:
    """The tests' sample resource on the newest LMI image the SageMaker SDK's tables name, pinned:
    what users deploy today. (The tests' djl-deepspeed 0.21.0 is deprecated, so each resource
    would also post a DeprecatedImage Warning; an unpinned version would read the live config.)"""
    overrides.setdefault("image", {"framework": "djl-lmi", "version": available_versions("djl-lmi")[0]})
    return test_manifest(name, **overrides)


# -- the local world ------------------------------------------------------------------


class World:
    def __init__(self, control_plane: ControlPlane, emulator: Emulator, logs: Path) -> None:
        self.cp, self.emu, self.logs = control_plane, emulator, logs
        self.kube = KubeApi(control_plane.admin_kubeconfig)

    def namespace(self, name: str) -> str:
        self.cp.kubectl("create", "namespace", name)
        return name

    @contextlib.contextmanager
    def operator(self, namespace: str, settings_env: dict[str, str]) -> Iterator[OperatorProcess]:
        proc = OperatorProcess(self.cp, {**self.emu.env, **settings_env}, namespace, self.logs / f"{namespace}.log")
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()

    def calls_since(self, mark: int) -> list[Call]:
        return self.emu.calls()[mark:]

    def mark(self) -> int:
        return len(self.emu.calls())


def pid(op: OperatorProcess) -> int:
    assert op.proc is not None
    return op.proc.pid


def by_operation(calls: list[Call]) -> dict[str, int]:
    return dict(sorted(collections.Counter(c.operation for c in calls).items()))


def writes(calls: list[Call]) -> list[Call]:
    return [c for c in calls if not c.operation.startswith(READ_PREFIXES)]


def uploaded_bytes(calls: list[Call]) -> int:
    return sum(c.bytes for c in calls if c.operation == "PutObject" and c.ok)


def ready_for(name: str, generation: int = 1) -> Any:
    return lambda resources: generation in resources.get(name, Tracked()).ready


def quiet(world: World, seconds: float = 1.5) -> None:
    """Wait until the emulator has seen no call for ``seconds`` (trailing calls of a finished step)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        calls = world.emu.calls()
        if not calls or time.time() - calls[-1].time >= seconds:
            return
        time.sleep(0.2)


def warm_up(world: World, watch: Watch, namespace: str) -> None:
    """One resource through to Ready, so first-call costs (imports, clients) stay out of the figures."""
    world.kube.create(namespace, endpoint_manifest("warmup"))
    watch.wait(ready_for("warmup"), 120, "warm-up resource Ready")
    quiet(world)


# -- phases -------------------------------------------------------------------------------


def phase_latency(world: World, report: Report, n: int) -> None:
    print(f"[latency] {n} resources one at a time, poll 1 s, creation delay 0 s and 5 s", flush=True)
    ns = world.namespace("bench-latency")
    results: dict[str, Any] = {}
    with world.operator(ns, {"DJL_OPERATOR_POLL_SECONDS": "1"}) as op, Watch(world.kube, ns) as watch:
        warm_up(world, watch, ns)
        for delay in (0.0, 5.0):
            world.emu.faults.set(create_delay=delay)
            cpu0, latencies = proc_sample(pid(op)).cpu_s, []
            for i in range(n):
                name = f"lat{int(delay)}-{i}"
                t0 = time.monotonic()
                world.kube.create(ns, endpoint_manifest(name))
                watch.wait(ready_for(name), 60 + delay, f"{name} Ready")
                latencies.append(watch.snapshot(name).ready[1] - t0)
            cpu = proc_sample(pid(op)).cpu_s - cpu0
            results[f"delay_{int(delay)}s"] = {
                "latencies_s": [round(x, 3) for x in latencies],
                "operator_cpu_s_per_create": round(cpu / n, 4),
            }
            p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
            if delay == 0:
                report.add("apply->Ready p50, delay 0 s (operator overhead)", p50, "s", 2.0, f"n={n}, poll 1 s")
                report.add("apply->Ready p95, delay 0 s", p95, "s", note=f"n={n}")
            else:
                report.add("apply->Ready p50, delay 5 s", p50, "s", note=f"n={n}, poll 1 s")
                report.add("apply->Ready p95, delay 5 s", p95, "s", note=f"n={n}")
                report.add(
                    "operator overhead at delay 5 s (p50 - 5 s)",
                    p50 - delay,
                    "s",
                    note="includes up to one 1 s poll interval",
                )
            report.add(f"operator CPU per create, delay {int(delay)} s", cpu / n, "s")
        world.emu.faults.set(create_delay=0.0)
    report.details["latency"] = results


def phase_calls(world: World, report: Report) -> None:
    print("[calls] one resource: create (delay 0), update, delete; then a create at delay 5 s", flush=True)
    ns = world.namespace("bench-calls")
    details: dict[str, Any] = {}
    with world.operator(ns, {"DJL_OPERATOR_POLL_SECONDS": "1"}), Watch(world.kube, ns) as watch:
        warm_up(world, watch, ns)

        mark = world.mark()
        world.kube.create(ns, endpoint_manifest("c1"))
        watch.wait(ready_for("c1"), 60, "c1 Ready")
        quiet(world)
        create = world.calls_since(mark)

        mark = world.mark()
        world.kube.merge_patch_spec(ns, "c1", {"model": {"properties": UPDATED_PROPERTIES}})
        watch.wait(ready_for("c1", 2), 60, "c1 Ready after the update")
        quiet(world)
        update = world.calls_since(mark)

        mark = world.mark()
        world.kube.delete(ns, "c1")
        watch.wait(lambda r: r.get("c1", Tracked()).deleted is not None, 60, "c1 deleted")
        quiet(world)
        delete = world.calls_since(mark)

        world.emu.faults.set(create_delay=5.0)
        mark = world.mark()
        world.kube.create(ns, endpoint_manifest("c2"))
        watch.wait(ready_for("c2"), 60, "c2 Ready")
        quiet(world)
        create_slow = world.calls_since(mark)
        world.emu.faults.set(create_delay=0.0)

        # Left Ready for the start-up phase, which resumes it with a fresh operator.
        world.kube.create(ns, endpoint_manifest("resume-me"))
        watch.wait(ready_for("resume-me"), 60, "resume-me Ready")
        for name in ("warmup", "c2"):  # so that the start-up phase resumes exactly one resource
            world.kube.delete(ns, name)
        watch.wait(lambda r: r["warmup"].deleted is not None and r["c2"].deleted is not None, 60, "clean-up")
        quiet(world)

    for label, calls in (("create", create), ("update", update), ("delete", delete), ("create_delay_5s", create_slow)):
        details[label] = {
            "total": len(calls),
            "by_operation": by_operation(calls),
            "errors": by_operation([c for c in calls if not c.ok]),
            "uploaded_bytes": uploaded_bytes(calls),
        }
    report.details["calls"] = details
    report.add(
        "AWS calls per create (delay 0 s)",
        len(create),
        "calls",
        1.5 * MIN_CREATE_CALLS,
        f"minimum {MIN_CREATE_CALLS}; ratio to minimum {len(create) / MIN_CREATE_CALLS:.2f}x",
    )
    report.add(
        "AWS calls per create (delay 5 s, poll 1 s)",
        len(create_slow),
        "calls",
        note="includes DescribeEndpoint polls while Creating",
    )
    report.add("AWS calls per update", len(update), "calls")
    report.add("AWS calls per delete", len(delete), "calls")
    report.add("bytes uploaded per create", uploaded_bytes(create), "B")


def phase_steady(world: World, report: Report, n: int, resyncs: int) -> None:
    poll, resync = DEFAULTS.poll_interval / STEADY_SCALE, POLLING_RESYNC / STEADY_SCALE
    window = resyncs * resync
    print(
        f"[steady] {n} Ready resources, poll {poll:g} s, resync {resync:g} s (defaults / {STEADY_SCALE:g}), "
        f"{window:g} s window",
        flush=True,
    )
    ns = world.namespace("bench-steady")
    # Polling mode as it was before the batched read: every settled resource described each resync.
    env = {
        "DJL_OPERATOR_POLL_SECONDS": f"{poll:g}",
        "DJL_OPERATOR_RESYNC_SECONDS": f"{resync:g}",
        "DJL_OPERATOR_STATUS_READ_SECONDS": "100000",
    }
    with world.operator(ns, env) as op, Watch(world.kube, ns) as watch:
        names = [f"s{i}" for i in range(n)]
        for name in names:
            world.kube.create(ns, endpoint_manifest(name))
        watch.wait(lambda r: all(1 in r.get(x, Tracked()).ready for x in names), 120, "steady resources Ready")
        time.sleep(1.0)
        mark, cpu0, t0 = world.mark(), proc_sample(pid(op)).cpu_s, time.monotonic()
        writes0 = {x: len(watch.snapshot(x).status_writes) for x in names}
        time.sleep(window)
        elapsed = time.monotonic() - t0
        calls = world.calls_since(mark)
        cpu = proc_sample(pid(op)).cpu_s - cpu0
        status_writes = sum(len(watch.snapshot(x).status_writes) - writes0[x] for x in names)

        # Scaled time: a second here is STEADY_SCALE seconds at the defaults. Every reconcile reads its
        # endpoint once (DescribeEndpoint), so the gaps between one endpoint's reads are its resync period;
        # measuring the period avoids counting an extra or a missing resync at the window's edges.
        reads: dict[str | None, list[float]] = collections.defaultdict(list)
        for c in calls:
            if c.operation == "DescribeEndpoint":
                reads[c.resource].append(c.time)
        gaps = [b - a for times in reads.values() for a, b in itertools.pairwise(times)]
        reconciles = sum(len(times) for times in reads.values())
        if not gaps:
            raise RuntimeError(f"no endpoint was resynced twice in {elapsed:.0f} s; use more --resyncs")
        period = statistics.mean(gaps)
        sagemaker_calls = [c for c in calls if c.service == "sagemaker"]
        per_resync = len(sagemaker_calls) / reconciles
        per_hour_window = 3600.0 / (elapsed * STEADY_SCALE) / n  # for counts that should be 0 anyway
        report.details["steady"] = {
            "resources": n,
            "poll_s": poll,
            "resync_s": resync,
            "window_s": round(elapsed, 2),
            "by_operation": by_operation(calls),
            "reconciles": reconciles,
            "resync_period_s": round(period, 3),
            "sagemaker_calls_per_resync": round(per_resync, 3),
            "operator_cpu_s": round(cpu, 3),
            "status_writes": status_writes,
            "extrapolation": (
                f"SageMaker calls per endpoint per hour = calls per resync ({per_resync:.2f}) x "
                f"3600 s / (measured resync period {period:.2f} s x {STEADY_SCALE:g})"
            ),
        }
        report.add(
            "steady: SageMaker calls per endpoint per hour",
            per_resync * 3600 / (period * STEADY_SCALE),
            "calls/h",
            12,
            f"{per_resync:.2f} calls/resync, period {period:.2f} s x {STEADY_SCALE:g}",
        )
        report.add(
            "steady: AWS writes per endpoint per hour",
            len(writes(calls)) * per_hour_window,
            "calls/h",
            0,
            f"{len(writes(calls))} writes in the window",
        )
        report.add(
            "steady: all AWS calls per endpoint per hour",
            len(calls) * per_hour_window,
            "calls/h",
            note=f"window count: {len(calls)} calls, {n} endpoints, {elapsed:.0f} s",
        )
        report.add(
            "steady: status writes per endpoint per hour",
            status_writes * per_hour_window,
            "writes/h",
            note="Kubernetes API",
        )
        report.add(
            "steady: operator CPU per resync", cpu / reconciles, "s", note="incl. kopf timer ticks every poll interval"
        )

        # Out-of-band delete: the next resync re-runs the whole create path, upload step included.
        victim = names[0]
        endpoint = watch.snapshot(victim).last["status"]["endpointName"]
        sm = world.emu.client("sagemaker")
        sm.delete_endpoint(EndpointName=endpoint)
        mark, seen = world.mark(), len(watch.snapshot(victim).phases)

        def recreated(resources: dict[str, Tracked]) -> bool:
            phases = resources[victim].phases[seen:]
            return any(p != "InService" for p in phases) and phases[-1] == "InService"

        watch.wait(recreated, 60, f"{victim} recreated and InService again")
        quiet(world)
        redo = world.calls_since(mark)
        report.details["steady"]["recreate_after_out_of_band_delete"] = {
            "by_operation": by_operation(redo),
            "uploaded_bytes": uploaded_bytes(redo),
        }
        report.add(
            "bytes uploaded by a re-reconcile (artifact exists)",
            uploaded_bytes(redo),
            "B",
            0,
            "endpoint deleted out of band; the resync re-runs the upload step",
        )


def phase_artifacts(world: World, report: Report, repeats: int) -> None:
    print(f"[artifacts] packaging the sample spec x{repeats}", flush=True)
    manifest = endpoint_manifest("pkg")
    spec = DjlEndpointSpec.model_validate(manifest["spec"])
    resource = DjlEndpointResource(
        name="pkg",
        namespace="bench",
        uid="00000000-0000-0000-0000-000000000000",
        generation=1,
        spec=spec,
        status=DjlEndpointStatus(),
    )
    package.build_package(spec)  # imports and template reads out of the timing
    build, desired = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        built = package.build_package(spec)
        t1 = time.perf_counter()
        desired_deployment(resource)
        t2 = time.perf_counter()
        build.append(t1 - t0)
        desired.append(t2 - t1)
    report.details["artifacts"] = {
        "repeats": repeats,
        "archive_bytes": len(built.data),
        "files": {k: len(v) for k, v in built.files.items()},
        "build_package_s": [round(x, 5) for x in build],
        "desired_deployment_s": [round(x, 5) for x in desired],
    }
    report.add("packaging time (build_package), median", statistics.median(build) * 1000, "ms")
    report.add(
        "desired_deployment time (every reconcile), median",
        statistics.median(desired) * 1000,
        "ms",
        note="render + package + image + requests",
    )
    report.add("artifact size", len(built.data), "B")


def phase_load(
    world: World,
    report: Report,
    n: int,
    delay: float,
    profile: Path | None,
    *,
    env: dict[str, str] | None = None,
    label: str = "",
    ready_target: float = 120.0,
    rss_target: float = 300.0,
) -> None:
    env = {"DJL_OPERATOR_POLL_SECONDS": "1"} if env is None else env
    mode = f", {label}" if label else ""
    print(f"[load] {n} resources in one kubectl apply{mode}, creation delay {delay:g} s, {env}", flush=True)
    ns = world.namespace(f"bench-load{'-' + label if label else ''}")
    names = [f"l{i:04d}" for i in range(n)]
    doc = {"apiVersion": "v1", "kind": "List", "items": [endpoint_manifest(x) for x in names]}
    with world.operator(ns, env) as op, Watch(world.kube, ns) as watch:
        warm_up(world, watch, ns)
        world.emu.faults.set(create_delay=delay)
        mark, before = world.mark(), proc_sample(pid(op))
        spy = PySpy(pid(op), profile) if profile else contextlib.nullcontext()
        with RssSampler(pid(op)) as rss, spy:
            t0 = time.monotonic()
            # kubectl's 120 s limit: a large load goes in lists of 250 (one apply each, back to back).
            # Server-side apply, as GitOps tools apply (Argo CD, Flux): one request per object, where
            # a client-side apply reads each object first.
            for start in range(0, n, 250):
                chunk = {**doc, "items": doc["items"][start : start + 250]}
                world.cp.kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=yaml.safe_dump(chunk))
            applied = time.monotonic() - t0
            watch.wait(lambda r: all(1 in r.get(x, Tracked()).ready for x in names), 600, f"{n} resources Ready")
            ready = sorted(watch.snapshot(x).ready[1] - t0 for x in names)
            after = proc_sample(pid(op))
        world.emu.faults.set(create_delay=0.0)
        quiet(world)
        calls = world.calls_since(mark)
        report.details[f"load{'-' + label if label else ''}"] = {
            "resources": n,
            "creation_delay_s": delay,
            "kubectl_apply_s": round(applied, 2),
            "ready_s": {
                "p50": round(percentile(ready, 50), 2),
                "p95": round(percentile(ready, 95), 2),
                "max": round(ready[-1], 2),
            },
            "rss_samples_mb": [round(x, 1) for _, x in rss.samples],
            "by_operation": by_operation(calls),
            "errors": by_operation([c for c in calls if not c.ok]),
        }
        report.add(
            f"{n} resources{mode}: all Ready after apply",
            ready[-1],
            "s",
            ready_target,
            f"creation delay {delay:g} s, {env or 'defaults'}; kubectl apply --server-side took {applied:.1f} s",
        )
        report.add(
            f"{n} resources{mode}: last Ready after kubectl apply returned",
            ready[-1] - applied,
            "s",
            note="the operator's own lag behind the API server's intake",
        )
        peak = max(after.peak_rss_mb, rss.peak_mb)
        report.add(f"{n} resources{mode}: operator peak RSS", peak, "MB", rss_target, "VmHWM")
        report.add(
            f"{n} resources{mode}: operator CPU seconds", after.cpu_s - before.cpu_s, "s", note="apply -> all Ready"
        )
        report.add(f"{n} resources{mode}: AWS calls per resource", len(calls) / n, "calls")
    if profile:
        summary = profile_summary(profile)
        report.details["load"]["profile"] = {"collapsed_stacks": str(profile.relative_to(REPO)), **summary}
        print(f"  py-spy: {summary['samples']} samples of the operator's busy threads; % of all samples")
        for title, key in (("self", "self"), ("inclusive, djl_operator", "inclusive_project")):
            print(f"    {title}:")
            for fn, share in summary[key]:
                print(f"      {share:5.1f}%  {fn}")


def phase_startup(world: World, report: Report, settle: float, default_poll_n: int) -> None:
    print(f"[start-up] default settings, resuming one Ready resource; idle RSS after {settle:g} s", flush=True)
    ns = "bench-calls"
    with Watch(world.kube, ns) as watch:
        writes0 = len(watch.snapshot("resume-me").status_writes)
        time.sleep(1.1)  # lastSyncTime has 1 s resolution: the resume's write must differ from the last one
        mark, wall0 = world.mark(), time.time()
        with world.operator(ns, {}) as op:
            t0 = time.monotonic()
            watch.wait(lambda r: len(r["resume-me"].status_writes) > writes0, 120, "status write on resume")
            first_write = watch.snapshot("resume-me").status_writes[writes0] - t0
            calls = world.calls_since(mark)
            first_call = min((c.time for c in calls), default=wall0) - wall0
            time.sleep(settle)
            idle = []
            for _ in range(5):  # a few readings a second apart: a GC or a timer tick may be in flight
                time.sleep(1.0)
                idle.append(proc_sample(pid(op)))
            idle_calls = world.calls_since(mark)
            # The same operator, default poll interval: how long a create that is instant on the AWS side takes.
            default_poll = []
            for i in range(default_poll_n):
                name = f"default-poll-{i}"
                t1 = time.monotonic()
                world.kube.create(ns, endpoint_manifest(name))
                watch.wait(ready_for(name), 3 * DEFAULTS.poll_interval + 30, f"{name} Ready")
                default_poll.append(watch.snapshot(name).ready[1] - t1)
    report.details["startup"] = {
        "first_aws_call_s": round(first_call, 3),
        "first_status_write_s": round(first_write, 3),
        "idle_rss_mb": [round(s.rss_mb, 1) for s in idle],
        "peak_rss_mb": round(idle[-1].peak_rss_mb, 1),
        "calls": by_operation(idle_calls),
        "latency_default_poll_s": [round(x, 3) for x in default_poll],
    }
    report.add("start-up: spawn -> first AWS call (resume)", first_call, "s")
    report.add("start-up: spawn -> first status write (resume)", first_write, "s")
    report.add("idle RSS (1 resource, after start-up)", idle[-1].rss_mb, "MB", 150.0)
    if default_poll:
        report.add(
            f"apply->Ready p50, delay 0 s, default poll {DEFAULTS.poll_interval:g} s",
            percentile(default_poll, 50),
            "s",
            note=f"n={len(default_poll)}",
        )


def phase_snapshot(world: World, report: Report, gib: float) -> None:
    size = int(gib * 2**30)
    print(f"[snapshot] one {size / 1e9:.2f} GB file from the local Hub into S3, 8 MiB parts", flush=True)
    ns = world.namespace("bench-snapshot")
    with LocalHub() as hub:
        hub.add_repo("bench/big")
        commit = hub.commit("bench/big", {"config.json": b"{}", "model.safetensors": Synthetic(size)})
        env = {"DJL_OPERATOR_POLL_SECONDS": "1", "HF_ENDPOINT": hub.url}
        with world.operator(ns, env) as op, Watch(world.kube, ns) as watch:
            warm_up(world, watch, ns)
            manifest = endpoint_manifest("big", model={"id": "bench/big", "snapshot": True})
            mark, before = world.mark(), proc_sample(pid(op))
            with RssSampler(pid(op), interval=0.2) as rss:
                world.kube.create(ns, manifest)
                watch.wait(ready_for("big"), 1800, "the snapshot copied and the endpoint Ready")
            after = proc_sample(pid(op))
            calls = world.calls_since(mark)
            parts = [c for c in calls if c.operation in ("CreateMultipartUpload", "UploadPart") and c.ok]
            done = next(c for c in calls if c.operation == "CompleteMultipartUpload" and c.ok)
            started = min(c.time for c in parts)
            copy_s = done.time - started
            sent = sum(c.bytes for c in parts)
            # A new generation of the same commit: the marker answers, nothing is copied.
            mark2 = world.mark()
            world.kube.merge_patch_spec(ns, "big", {"instance": {"count": 2}})
            watch.wait(ready_for("big", 2), 300, "generation 2 Ready")
            quiet(world)
            again = sum(
                c.bytes
                for c in world.calls_since(mark2)
                if c.operation in ("PutObject", "UploadPart") and "/snapshots/" in (c.resource or "")
            )
    growth = max(rss.peak_mb, after.peak_rss_mb) - before.rss_mb
    report.details["snapshot"] = {
        "bytes": size,
        "commit": commit,
        "copy_s": round(copy_s, 2),
        "parts": len(parts) - 1,
        "bytes_uploaded": sent,
        "rss_before_mb": round(before.rss_mb, 1),
        "rss_samples_mb": [round(x, 1) for _, x in rss.samples],
        "operator_cpu_s": round(after.cpu_s - before.cpu_s, 2),
    }
    report.add(f"snapshot: copy throughput ({size / 1e9:.2f} GB file)", sent / copy_s / 1e6, "MB/s")
    report.add("snapshot: copy time", copy_s, "s", note="first part to CompleteMultipartUpload")
    report.add(
        "snapshot: operator RSS growth while copying", growth, "MB", 64.0, "peak (0.2 s samples, VmHWM) - before"
    )
    report.add("snapshot: operator peak RSS", max(rss.peak_mb, after.peak_rss_mb), "MB")
    report.add("snapshot: operator CPU seconds", after.cpu_s - before.cpu_s, "s", note="apply -> Ready")
    report.add("snapshot: bytes copied again by a new generation", again, "B", 0.0)


# -- output -----------------------------------------------------------------------------


def phase_storm(world: World, report: Report, n: int, window: float) -> None:
    print(f"[storm] {n} resources under a 100% SageMaker throttling storm for {window:.0f} s (defaults)", flush=True)
    ns = world.namespace("bench-storm")
    with world.operator(ns, {}), Watch(world.kube, ns) as watch:
        world.emu.faults.throttle(rate=1.0)
        mark, started = world.mark(), time.monotonic()
        names = [f"s{i}" for i in range(n)]
        for name in names:
            world.kube.create(ns, endpoint_manifest(name))

        # The operator's first write sets observedGeneration (the API server's default status reads 0).
        def written(resources: dict[str, Tracked]) -> bool:
            return all(
                (resources.get(x, Tracked()).last.get("status") or {}).get("observedGeneration") == 1 for x in names
            )

        all_written = watch.wait(written, 60, "first status writes") - started
        time.sleep(max(0.0, window - (time.monotonic() - started)))  # the measured window itself
        end = time.time()
        calls = [c for c in world.calls_since(mark) if c.service == "sagemaker"]
        world.emu.faults.clear()
        for name in names:
            world.kube.delete(ns, name)
        watch.wait(lambda r: all(r[x].deleted is not None for x in names), 300, "storm clean-up")
    per_minute = len(calls) / n / (window / 60)
    last_minute = len([c for c in calls if c.time >= end - 60]) / n
    report.details["storm"] = {
        "resources": n,
        "window_s": window,
        "sagemaker_calls": len(calls),
        "by_operation": by_operation(calls),
        "all_first_status_writes_s": round(all_written, 2),
    }
    report.add("storm: SageMaker calls/min per resource (window)", round(per_minute, 1), "calls/min")
    report.add("storm: SageMaker calls/min per resource (last minute)", round(last_minute, 1), "calls/min")
    report.add("storm: every resource's first status write", round(all_written, 2), "s", 5.0)


# -- issue 17: endpoint events and scale, side by side with polling ----------------------

EVENTS_SCALE = 240.0  # the events steady state runs the default intervals 240x faster


def _epoch_offset() -> float:
    """Add to a time.monotonic() reading to get epoch seconds (the emulator's timestamps)."""
    return time.time() - time.monotonic()


def _in_service_to_ready(world: World, ns: str, env: dict[str, str], n: int, delay: float, label: str) -> list[float]:
    """n resources created 0.5 s apart at the given creation delay; each one's InService -> Ready (s)."""
    names = [f"{label}-{i}" for i in range(n)]
    sm = world.emu.client("sagemaker")
    with world.operator(ns, env), Watch(world.kube, ns) as watch:
        warm_up(world, watch, ns)
        world.emu.faults.set(create_delay=delay)
        for name in names:
            world.kube.create(ns, endpoint_manifest(name))
            time.sleep(0.5)
        watch.wait(lambda r: all(1 in r.get(x, Tracked()).ready for x in names), 120 + delay, f"{label} Ready")
        offset = _epoch_offset()
        latencies = []
        for name in names:
            endpoint = watch.snapshot(name).last["status"]["endpointName"]
            in_service = sm.describe_endpoint(EndpointName=endpoint)["LastModifiedTime"].timestamp()
            latencies.append(watch.snapshot(name).ready[1] + offset - in_service)
        world.emu.faults.set(create_delay=0.0)
    return latencies


def phase_events(
    world: World,
    report: Report,
    latency_n: int,
    steady_n: int,
    load_n: int,
    window: float,
    parts: frozenset[str] = frozenset({"latency", "steady", "load"}),
) -> None:
    """Issue 17's targets, each beside the polling mode it replaces, in one run."""
    from tests.plugins.events import route_endpoint_events

    # One queue for the run: events left from an earlier sub-phase name endpoints no resource of the
    # next operator has, so it deletes them unread.
    queue = route_endpoint_events(world.emu, "bench-events")
    events_env = {"DJL_OPERATOR_EVENTS_QUEUE_URL": queue}
    details: dict[str, Any] = {}

    # 1. InService -> Ready: the default 30 s poll vs events (all other settings at their defaults).
    if "latency" in parts:
        _events_latency(world, report, details, events_env, latency_n)
    if "steady" in parts:
        _events_steady(world, report, details, events_env, steady_n, window)
    if "load" in parts:
        # 3. Load: load_n resources in one apply at a 5 s creation delay, events mode, defaults otherwise.
        print(f"[events] load: {load_n} resources in one apply, creation delay 5 s, events", flush=True)
        phase_load(
            world, report, load_n, 5.0, None, env=events_env, label="events", ready_target=120.0, rss_target=400.0
        )
    report.details["events"] = details


def _events_latency(
    world: World, report: Report, details: dict[str, Any], events_env: dict[str, str], latency_n: int
) -> None:
    print(f"[events] InService -> Ready, {latency_n} resources each: 30 s poll vs events", flush=True)
    for label, env in (("poll", {}), ("events", events_env)):
        latencies = _in_service_to_ready(world, world.namespace(f"bench-ev-{label}"), env, latency_n, 5.0, label)
        details[f"in_service_to_ready_{label}_s"] = [round(x, 3) for x in latencies]
        mode = "30 s poll" if label == "poll" else "events"
        report.add(
            f"InService -> Ready p95, {mode}",
            percentile(latencies, 95),
            "s",
            2.0 if label == "events" else None,
            f"n={latency_n}, creation delay 5 s, p50 {percentile(latencies, 50):.2f} s",
        )


def _events_steady(
    world: World, report: Report, details: dict[str, Any], events_env: dict[str, str], steady_n: int, window: float
) -> None:
    # 2. Steady state with events and the batched read, the defaults scaled down EVENTS_SCALE x:
    #    a window long enough for every resource's own (6 h) resync to happen once.
    read = DEFAULTS.status_read_interval / EVENTS_SCALE
    resync = DEFAULTS.resync_interval / EVENTS_SCALE
    window = max(window, resync * 1.1)
    print(f"[events] steady state, {steady_n} resources, batched read {read:g} s, resync {resync:g} s", flush=True)
    ns = world.namespace("bench-ev-steady")
    env = {
        **events_env,
        "DJL_OPERATOR_STATUS_READ_SECONDS": f"{read:g}",
        "DJL_OPERATOR_RESYNC_SECONDS": f"{resync:g}",
        "DJL_OPERATOR_EVENTS_POLL_SECONDS": f"{DEFAULTS.events_poll_interval / EVENTS_SCALE:g}",
    }
    with world.operator(ns, env) as op, Watch(world.kube, ns) as watch:
        names = [f"st{i}" for i in range(steady_n)]
        world.cp.kubectl(
            "apply", "-n", ns, "-f", "-",
            input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [endpoint_manifest(x) for x in names]}),
        )  # fmt: skip
        watch.wait(lambda r: all(1 in r.get(x, Tracked()).ready for x in names), 600, "steady resources Ready")
        time.sleep(3.0)  # the creates' last looks (it is never quiet: the batched read runs every second)
        mark, cpu0, t0 = world.mark(), proc_sample(pid(op)).cpu_s, time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - t0
        calls = world.calls_since(mark)  # only the operator calls AWS meanwhile
        cpu = proc_sample(pid(op)).cpu_s - cpu0
    sagemaker_calls = [c for c in calls if c.service == "sagemaker"]
    # Scaled time: a second here is EVENTS_SCALE seconds at the defaults.
    per_hour = 3600.0 / (elapsed * EVENTS_SCALE) / steady_n
    sqs_calls = [c for c in calls if c.service == "sqs"]
    details["steady"] = {
        "resources": steady_n,
        "status_read_s": read,
        "resync_s": resync,
        "window_s": round(elapsed, 2),
        "by_operation": by_operation(calls),
        "operator_cpu_s": round(cpu, 3),
    }
    report.add(
        f"steady, events + batched read: SageMaker calls per endpoint per hour ({steady_n} endpoints)",
        len(sagemaker_calls) * per_hour,
        "calls/h",
        1.0,
        f"{by_operation(sagemaker_calls)} in {elapsed:.0f} s x {EVENTS_SCALE:g}; polling mode: see 'steady:' rows",
    )
    report.add(
        "steady, events + batched read: AWS writes per endpoint per hour",
        len(writes(sagemaker_calls)) * per_hour,
        "calls/h",
        0,
    )
    # The list pages grow with the account's endpoints, the per-resource resyncs with ours: at 1 000
    # endpoints, 10 pages per read and one describe per resource per resync interval.
    pages_1000 = 10 * 3600 / DEFAULTS.status_read_interval
    resyncs_1000 = 1000 * 3600 / DEFAULTS.resync_interval
    report.add(
        "steady at 1 000 endpoints (from the settings): SageMaker calls per endpoint per hour",
        (pages_1000 + resyncs_1000) / 1000,
        "calls/h",
        1.0,
        f"{pages_1000:g} ListEndpoints pages + {resyncs_1000:g} resync describes per hour; measured above",
    )
    report.add(
        "steady, events: SQS long polls per hour (whole operator)",
        len(sqs_calls) * 3600.0 / elapsed,
        "calls/h",
        note="20 s long polls, not scaled: independent of the number of endpoints",
    )


def print_table(rows: list[Row]) -> None:
    header = ("metric", "measured", "target", "ratio", "result")
    lines = []
    for row in rows:
        target = "-" if row.target is None else f"<= {row.target:g} {row.unit}"
        ratio = "-" if row.ratio is None else ("inf" if row.ratio == float("inf") else f"{row.ratio:.2f}")
        result = "-" if row.passed is None else ("PASS" if row.passed else "FAIL")
        lines.append((row.metric, f"{row.measured:g} {row.unit}", target, ratio, result))
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt.format(*line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer resources and shorter windows (about 2 min)")
    parser.add_argument("--latency-n", type=int, help="resources per latency series (default 20, quick 5)")
    parser.add_argument("--load-n", type=int, help="resources applied at once (default 200, quick 40)")
    parser.add_argument("--load-delay", type=float, default=5.0, help="emulator creation delay in the load phase")
    parser.add_argument("--steady-n", type=int, help="resources in steady state (default 10, quick 3)")
    parser.add_argument("--resyncs", type=int, help="resync intervals observed in steady state (default 6, quick 3)")
    parser.add_argument("--events-latency-n", type=int, help="events phase: resources per latency series (10, quick 5)")
    parser.add_argument("--events-steady-n", type=int, help="events phase: resources in steady state (1000, quick 100)")
    parser.add_argument("--events-load-n", type=int, help="events phase: resources applied at once (2000, quick 200)")
    parser.add_argument("--events-window", type=float, default=100.0, help="events phase: steady window (s)")
    parser.add_argument("--events-parts", default="latency,steady,load", help="events phase: which parts to run")
    parser.add_argument(
        "--phases",
        default="latency,calls,steady,artifacts,load,startup,storm,snapshot,events",
        help="comma-separated subset to run (startup needs calls)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the operator during the load phase (collapsed stacks next to the JSON)",
    )
    parser.add_argument("--snapshot-gib", type=float, default=2.0, help="size of the snapshot phase's file (GiB)")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/operator-<timestamp>.json)")
    args = parser.parse_args(argv)
    quick = args.quick
    latency_n = args.latency_n or (5 if quick else 20)
    load_n = args.load_n or (40 if quick else 200)
    steady_n = args.steady_n or (3 if quick else 10)
    resyncs = args.resyncs or (3 if quick else 6)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - {
        "latency",
        "calls",
        "steady",
        "artifacts",
        "load",
        "startup",
        "storm",
        "snapshot",
        "events",
    }
    if unknown:
        parser.error(f"--phases: unknown phase(s) {sorted(unknown)}")
    if "startup" in phases and "calls" not in phases:
        parser.error("--phases: startup resumes the resource the calls phase leaves behind; add calls")

    # The operator reads its intervals from the environment: only the phases' own values may apply.
    for key in [k for k in os.environ if k.startswith("DJL_OPERATOR_")]:
        del os.environ[key]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = RESULTS / f"operator-{stamp}-logs"
    logs.mkdir()
    out = args.out or RESULTS / f"operator-{stamp}.json"
    report = Report()
    started, load_before = time.monotonic(), os.getloadavg()

    print("starting kube-apiserver + etcd and the emulator", flush=True)
    with ControlPlane() as cp, Emulator() as emu:
        emu.client("s3").create_bucket(Bucket=BUCKET)
        world = World(cp, emu, logs)
        try:
            if "latency" in phases:
                phase_latency(world, report, latency_n)
            if "calls" in phases:
                phase_calls(world, report)
            if "steady" in phases:
                phase_steady(world, report, steady_n, resyncs)
            if "artifacts" in phases:
                phase_artifacts(world, report, 10 if quick else 30)
            if "load" in phases:
                phase_load(world, report, load_n, args.load_delay, logs / "load-pyspy.txt" if args.profile else None)
            if "startup" in phases:
                phase_startup(world, report, 5.0 if quick else 15.0, 1 if quick else 3)
            if "storm" in phases:
                phase_storm(world, report, 3 if quick else 5, 120.0 if quick else 300.0)
            if "snapshot" in phases:
                phase_snapshot(world, report, args.snapshot_gib)
            if "events" in phases:
                phase_events(
                    world,
                    report,
                    args.events_latency_n or (5 if quick else 10),
                    args.events_steady_n or (100 if quick else 1000),
                    args.events_load_n or (200 if quick else 2000),
                    args.events_window,
                    frozenset(x.strip() for x in args.events_parts.split(",") if x.strip()),
                )
        finally:
            world.kube.close()

    result = {
        "timestamp": stamp,
        "quick": quick,
        "duration_s": round(time.monotonic() - started, 1),
        "host": {
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "operator_defaults": asdict(DEFAULTS),
        "logs": str(logs.relative_to(REPO)),
        "rows": [r.to_json() for r in report.rows],
        "details": report.details,
    }
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print_table(report.rows)
    shown = out.relative_to(REPO) if out.is_relative_to(REPO) else out
    print(
        f"\n{sum(r.passed is False for r in report.rows)} target(s) missed; JSON: {shown}; "
        f"operator logs: {logs.relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
