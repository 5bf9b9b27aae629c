"""The SageMaker hosting control plane: models, endpoint configs, endpoints and their lifecycle.

Semantics follow AWS's documentation (and observed behaviour where the docs are
silent):

* names are unique per kind, case-insensitively (the ARN lower-cases them);
  models and endpoint configs are immutable;
* ``CreateEndpoint`` needs the config and its models to exist; the endpoint is
  ``Creating`` for ``create_delay`` seconds, then ``InService`` -- or ``Failed``
  with a ``FailureReason`` when the model data is missing from S3, a container
  fails to start, or capacity cannot be had;
* ``UpdateEndpoint`` (only from ``InService``) is ``Updating`` while the *old*
  config keeps serving (the new one shows in ``PendingDeploymentSummary``), then
  ``InService`` on the new config once the delay has passed *and* the new fleet is
  healthy (``deploy_hook``: the emulator warms the new model server of an endpoint
  that is being invoked, and the old one answers until then) -- or, if the new deployment fails,
  ``RollingBack`` and back to ``InService`` on the old config with
  ``FailureReason`` set. ``RetainAllVariantProperties`` keeps the live
  instance counts/weights unless listed in ``ExcludeRetainedVariantProperties``;
* ``DeploymentConfig`` (deployment guardrails, see :mod:`.rollout`): once the new fleet is healthy
  the traffic moves to it in the configured steps (ALL_AT_ONCE, CANARY, LINEAR, rolling batches),
  each baking ``WaitIntervalInSeconds``, then ``TerminationWaitInSeconds``; the pending variants'
  ``VariantStatus`` says which stage runs (``Creating``, ``ActivatingTraffic``, ``Baking``) and
  InvokeEndpoint splits the traffic between the fleets by the current step's share. An alarm of
  ``AutoRollbackConfiguration`` in ALARM (read from the emulator's CloudWatch) after the first
  shift, or ``MaximumExecutionTimeoutInSeconds`` passing, rolls back: ``RollingBack``, then
  ``InService`` on the old config with the reason in ``FailureReason``. DescribeEndpoint reports
  ``LastDeploymentConfig``; ``RetainDeploymentConfig`` reuses it. ``guardrail_time_scale`` (a test
  knob, 1.0 is AWS) shortens the waits in wall time, never what DescribeEndpoint says of them
  (a change applies to the wait under way, counted from its start, ending it no earlier than when
  the change is seen);
* ``DeleteEndpoint`` on an in-progress endpoint (Creating, Updating, RollingBack,
  Deleting) is refused with AWS's "Cannot update in-progress endpoint"; otherwise
  ``Deleting`` for ``delete_delay`` seconds, then gone;
* a ``Failed`` endpoint only accepts ``DeleteEndpoint``.

Lifecycle is time-driven and evaluated lazily: every call first applies the
transitions whose time has come, so nobody has to sleep for the state to move.
Whether a deployment will fail is decided when it is accepted (from the faults
configured and the S3 objects present at that moment).
"""

from __future__ import annotations

import copy
import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors, rollout
from .arns import parse_sagemaker_arn, sagemaker_arn
from .errors import ApiError
from .faults import Faults

Clock = Callable[[], float]
# (bucket, key_or_prefix, is_prefix) -> does the object (or any object under the prefix) exist?
S3Probe = Callable[[str, str, bool], bool]

IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
_RETAINABLE = ("DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig")
_DEFAULT_PAGE = 10


@dataclass
class _Resource:
    name: str
    arn: str
    request: dict[str, Any]
    creation_time: float
    tags: dict[str, str] = field(default_factory=dict)
    # Whether the resource ever had a tag: the Tagging API lists such resources (with ``Tags: []``) forever.
    ever_tagged: bool = False


@dataclass
class _Step:
    due: float
    apply: Callable[[_Endpoint, float], None]
    # Applied only once this says so (and the time has come): an update finishes when the new fleet is healthy.
    ready: Callable[[], bool] | None = None
    # A guardrail wait: (start, seconds asked for, the time scale its due time was computed with). A
    # change of the scale applies to the wait under way, counted from its start but never ending it
    # before the change is seen (it was running until then): a test sizes a bake to what it measures.
    scaled: tuple[float, float, float] | None = None


@dataclass
class _Rollout:
    """A deployment whose new fleet is on its way in (guardrails: see :mod:`.rollout`)."""

    config: _Resource
    models: dict[str, _Resource]
    plan: rollout.Plan
    started: float
    retain: bool
    exclude: set[str]
    index: int = -1  # the phase running now; -1 while the new fleet is provisioned
    percent: float = 0.0  # share of the traffic the new fleet takes now
    monitoring_since: float | None = None  # alarms are watched from the first traffic shift on
    new_variants: list[dict[str, Any]] | None = None
    credit: float = 0.0  # routing: invocations owed to the new fleet
    time_scale: float = 1.0  # Delays.guardrail_time_scale when accepted (for the execution timeout)


@dataclass
class _Endpoint:
    name: str
    arn: str
    config_name: str
    status: str
    creation_time: float
    last_modified: float
    tags: dict[str, str] = field(default_factory=dict)
    ever_tagged: bool = False
    failure_reason: str | None = None
    variants: list[dict[str, Any]] | None = None  # live ProductionVariantSummary list
    pending: dict[str, Any] | None = None  # PendingDeploymentSummary while a deployment runs
    rollout: _Rollout | None = None
    deployment_config: dict[str, Any] | None = None  # LastDeploymentConfig
    steps: deque[_Step] = field(default_factory=deque)
    gone: bool = False


@dataclass(frozen=True)
class TaggedResource:
    """A resource as the Resource Groups Tagging API sees it."""

    arn: str
    tags: dict[str, str]
    ever_tagged: bool


@dataclass(frozen=True)
class RuntimeTarget:
    """What InvokeEndpoint needs to know about a serving endpoint."""

    endpoint_name: str
    variant_name: str
    model_name: str
    model_data_url: str | None
    environment: dict[str, str]
    # ModelDataSource (channel MODEL_CHANNEL) and AdditionalModelDataSources' S3DataSources by channel.
    data_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    network_isolation: bool = False
    # False while a deployment is under way: both fleets may answer, neither is stale yet.
    settled: bool = True


def resolved_image(image: str) -> str:
    """A stable digest-pinned form, as DeployedImages.ResolvedImage shows."""
    repo = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image.split(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _containers(model_request: dict[str, Any]) -> list[dict[str, Any]]:
    if model_request.get("PrimaryContainer"):
        return [model_request["PrimaryContainer"]]
    return list(model_request.get("Containers") or [])


# The channel of ModelDataSource in model_data_sources(): /opt/ml/model itself.
MODEL_CHANNEL = ""


def model_data_sources(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's S3DataSources by channel: ModelDataSource as MODEL_CHANNEL, then
    AdditionalModelDataSources by ChannelName (mounted at /opt/ml/additional-model-data-sources/<name>/)."""
    found: dict[str, dict[str, Any]] = {}
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    if source:
        found[MODEL_CHANNEL] = source
    for channel in container.get("AdditionalModelDataSources") or []:
        found[channel.get("ChannelName") or ""] = channel.get("S3DataSource") or {}
    return found


def _check_model_data(container: dict[str, Any]) -> None:
    """What CreateModel refuses about where a container's model data is, beyond the shapes botocore's
    model already checks (the ChannelName pattern [A-Za-z0-9\\.\\-_]+ of 1..64, at most 5 additional
    sources, the S3DataType and CompressionType enums: validation.py). Modelled on the API reference
    (ContainerDefinition, S3ModelDataSource, AdditionalModelDataSource):

    * ModelDataUrl and ModelDataSource both name "the location of ML model data": one or the other.
    * S3Prefix: "A valid key name prefix identified by S3Uri always ends with a forward slash (/)".
    * CompressionType Gzip is defined only with S3Object (a single tar.gz); with S3Prefix, None.

    Nothing else is refused here (the reference says nothing of, say, repeated channel names).
    """
    source = (container.get("ModelDataSource") or {}).get("S3DataSource")
    if container.get("ModelDataUrl") and source:
        raise errors.validation("ModelDataUrl and ModelDataSource cannot both be specified for a container.")
    checked = [("ModelDataSource", source)]
    for channel in container.get("AdditionalModelDataSources") or []:
        checked.append(
            (f"AdditionalModelDataSources channel {channel.get('ChannelName')}", channel.get("S3DataSource"))
        )
    for what, s3 in checked:
        if not s3:
            continue
        uri = s3.get("S3Uri") or ""
        if s3.get("S3DataType") == "S3Prefix":
            if not uri.endswith("/"):
                raise errors.validation(f"S3Uri {uri!r} of {what} must end with '/' when S3DataType is S3Prefix.")
            if s3.get("CompressionType") != "None":
                raise errors.validation(f"{what}: CompressionType must be None when S3DataType is S3Prefix.")


def _s3_location(url: str) -> tuple[str, str] | None:
    if not url.startswith("s3://"):
        return None
    bucket, _, key = url[len("s3://") :].partition("/")
    return bucket, key


def _tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def _tags_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class SageMaker:
    """Thread-safe in-memory SageMaker hosting API. ``handle(operation, params)`` -> response dict."""

    def __init__(
        self,
        region: str,
        account_id: str,
        faults: Faults,
        s3_probe: S3Probe,
        clock: Clock = time.time,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.faults = faults
        self._s3_probe = s3_probe
        self._clock = clock
        self._lock = threading.RLock()
        self._models: dict[str, _Resource] = {}
        self._configs: dict[str, _Resource] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._busy: set[str] = set()  # endpoints with pending steps
        # Called (under the lock) when an update that will succeed is accepted, with the targets the
        # new config serves; returns "is the new fleet healthy yet?" or None to not wait for it.
        self.deploy_hook: Callable[[str, list[RuntimeTarget]], Callable[[], bool] | None] | None = None
        # Called (under the lock) when a deployment is rolled back: its new fleet is no longer wanted.
        self.abandon_hook: Callable[[str], None] | None = None
        # The states of CloudWatch alarms by name (the ones that exist), for auto-rollback.
        self.alarm_states: Callable[[list[str]], dict[str, Any]] = lambda names: {}
        # Variant names registered as Application Auto Scaling targets, by endpoint name (set by the emulator).
        self.scalable_variants: Callable[[str], frozenset[str]] = lambda endpoint: frozenset()
        # Called (under the lock, so it must only enqueue) with DescribeEndpoint's fields and Tags
        # whenever an endpoint's EndpointStatus changes: SageMaker's state-change events.
        self.on_change: Callable[[dict[str, Any]], None] | None = None
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "DeleteModel": self.delete_model,
            "ListModels": self.list_models,
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": self.describe_endpoint_config,
            "DeleteEndpointConfig": self.delete_endpoint_config,
            "ListEndpointConfigs": self.list_endpoint_configs,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": self.describe_endpoint,
            "UpdateEndpoint": self.update_endpoint,
            "UpdateEndpointWeightsAndCapacities": self.update_weights_and_capacities,
            "DeleteEndpoint": self.delete_endpoint,
            "ListEndpoints": self.list_endpoints,
            "AddTags": self.add_tags,
            "DeleteTags": self.delete_tags,
            "ListTags": self.list_tags,
        }

    # ---- plumbing ----

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return errors.operation(self._ops, "SageMaker", operation)(params)

    def arn(self, kind: str, name: str) -> str:
        return sagemaker_arn(self.region, self.account_id, kind, name)

    def reset(self) -> None:
        with self._lock:
            self._models.clear()
            self._configs.clear()
            self._endpoints.clear()
            self._busy.clear()

    def _now(self) -> float:
        # AWS's JSON timestamps are epoch seconds with millisecond precision (e.g. 1.700000000123E9);
        # keeping times at that precision makes a timestamp a client read back compare exactly.
        return round(self._clock(), 3)

    def _advance(self) -> float:
        """Apply every lifecycle step whose time has come; returns 'now'. Caller holds the lock."""
        now = self._now()
        scale = self.faults.delays().guardrail_time_scale
        for key in list(self._busy):
            ep = self._endpoints[key]
            for step in ep.steps:
                if step.scaled is not None and step.scaled[2] != scale:
                    start, seconds, _ = step.scaled
                    step.due, step.scaled = max(round(start + seconds * scale, 3), now), (start, seconds, scale)
            while ep.steps and ep.steps[0].due <= now:
                step = ep.steps[0]
                before = ep.status
                if self._guard(ep, step.due):
                    self._changed_from(ep, before)
                    continue  # rolled back before this step: the steps were replaced
                if step.ready is not None and not step.ready():
                    break
                ep.steps.popleft()
                # A gated step happened when it was let through, not when it was first due.
                due = round(step.due if step.ready is None else now, 3)
                before = ep.status
                step.apply(ep, due)
                ep.last_modified = due
                self._changed_from(ep, before)
            before = ep.status
            self._guard(ep, now)
            self._changed_from(ep, before)
            if not ep.steps:
                self._busy.discard(key)
            if ep.gone:
                del self._endpoints[key]
        return now

    def _guard(self, ep: _Endpoint, at: float) -> bool:
        """Roll a deployment back if, by ``at``, an alarm fired or it ran out of time; True if it did."""
        ro = ep.rollout
        if ro is None or ep.status != "Updating":
            return False
        if ro.monitoring_since is not None and ro.plan.alarms:
            fired = {
                name: state.since
                for name, state in self.alarm_states(list(ro.plan.alarms)).items()
                if state.state == "ALARM" and state.since <= at
            }
            if fired:
                when = max(min(fired.values()), ro.monitoring_since)
                self._roll_back(ep, round(when, 3), rollout.alarm_reason(sorted(fired)))
                return True
        if ro.plan.timeout is not None and at >= ro.started + ro.plan.timeout * ro.time_scale:
            timed_out = round(ro.started + ro.plan.timeout * ro.time_scale, 3)
            self._roll_back(ep, timed_out, rollout.timeout_reason(ro.plan.timeout))
            return True
        return False

    def _roll_back(self, ep: _Endpoint, at: float, reason: str) -> None:
        """Traffic goes back to the old fleet at once; the new fleet goes, in RollbackMaximumBatchSize steps."""
        ro = ep.rollout
        assert ro is not None
        ep.steps.clear()
        ep.status, ep.last_modified, ro.percent = "RollingBack", at, 0.0
        if ep.pending is not None:
            for v in ep.pending["ProductionVariants"]:
                v["VariantStatus"] = [
                    {"Status": "Deleting", "StatusMessage": f"Rolling back: {reason}", "StartTime": at}
                ]
        if self.abandon_hook is not None:
            self.abandon_hook(ep.name)

        def rolled_back(ep: _Endpoint, when: float) -> None:
            ep.status, ep.pending, ep.failure_reason, ep.rollout = "InService", None, reason, None

        self._schedule(ep, _Step(at + self.faults.delays().rollback * ro.plan.rollback_batches, rolled_back))

    def _next_phase(self, ep: _Endpoint, at: float) -> None:
        """Move a deployment to its next phase (or finish it); the first call is the new fleet being up."""
        ro = ep.rollout
        assert ro is not None
        if ro.new_variants is None:
            ro.new_variants = self._live_variants(ro.config, ro.models, at, ep.variants, ro.retain, ro.exclude)
        ro.index += 1
        if ro.index >= len(ro.plan.phases):
            ep.status, ep.pending, ep.failure_reason, ep.rollout = "InService", None, None, None
            ep.config_name = ro.config.name
            ep.variants = ro.new_variants
            return
        phase = ro.plan.phases[ro.index]
        ro.percent = phase.percent
        if ro.monitoring_since is None and phase.percent > 0:
            ro.monitoring_since = at
        if ep.pending is not None:
            live = {v["VariantName"]: v for v in ro.new_variants}
            for v in ep.pending["ProductionVariants"]:
                new = live.get(v["VariantName"], {})
                if new.get("DeployedImages"):
                    v["DeployedImages"] = copy.deepcopy(new["DeployedImages"])
                if "DesiredInstanceCount" in new:
                    count = int(new["DesiredInstanceCount"])
                    # Blue/green provisions the whole new fleet; rolling one batch after another.
                    v["CurrentInstanceCount"] = (
                        math.ceil(count * phase.percent / 100.0 - 1e-9) if ro.plan.kind == "ROLLING" else count
                    )
                v["VariantStatus"] = [{"Status": phase.status, "StatusMessage": phase.message, "StartTime": at}]
        # Only the guardrail waits (bakes, the termination wait) are scaled, not provisioning a batch.
        if phase.status == "Baking":
            scale = self.faults.delays().guardrail_time_scale
            step = _Step(round(at + phase.seconds * scale, 3), self._next_phase, scaled=(at, phase.seconds, scale))
            self._schedule(ep, step)
        else:
            self._schedule(ep, _Step(round(at + phase.seconds, 3), self._next_phase))

    def tick(self) -> None:
        """Apply the lifecycle steps that are due now, so their events leave on time (not on the next read)."""
        with self._lock:
            if self._busy:
                self._advance()

    def _changed_from(self, ep: _Endpoint, before: str) -> None:
        if ep.status != before and not ep.gone:
            self._changed(ep)

    def _changed(self, ep: _Endpoint) -> None:
        """An endpoint's status changed: tell the event bus. Caller holds the lock."""
        if self.on_change is not None:
            snapshot = self._describe(ep)
            snapshot["Tags"] = dict(ep.tags)
            self.on_change(snapshot)

    def _schedule(self, ep: _Endpoint, *steps: _Step) -> None:
        ep.steps.extend(steps)
        self._busy.add(ep.name.lower())

    def _model(self, name: str) -> _Resource:
        found = self._models.get(name.lower())
        if found is None:
            raise errors.not_found("model", self.arn("model", name))
        return found

    def _config(self, name: str) -> _Resource:
        found = self._configs.get(name.lower())
        if found is None:
            raise errors.not_found("endpoint configuration", self.arn("endpoint-config", name))
        return found

    def _endpoint(self, name: str) -> _Endpoint:
        found = self._endpoints.get(name.lower())
        if found is None:
            raise errors.not_found("endpoint", self.arn("endpoint", name))
        return found

    # ---- models ----

    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelName"]
        if not p.get("PrimaryContainer") and not p.get("Containers"):
            raise errors.validation("Either PrimaryContainer or Containers must be specified for the model.")
        for container in _containers(p):
            _check_model_data(container)
        with self._lock:
            self._advance()
            arn = self.arn("model", name)
            if name.lower() in self._models:
                raise errors.already_exists("model", arn)
            request = {k: copy.deepcopy(v) for k, v in p.items() if k != "Tags"}
            tags = _tags_dict(p.get("Tags"))
            self._models[name.lower()] = _Resource(name, arn, request, self._now(), tags, bool(tags))
        return {"ModelArn": arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            m = self._model(p["ModelName"])
            out = copy.deepcopy(m.request)
            out.update(ModelArn=m.arn, CreationTime=m.creation_time)
            out.setdefault("EnableNetworkIsolation", False)
            return out

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        # AWS lets a model in use be deleted (the endpoint keeps serving; rollback then breaks).
        with self._lock:
            self._advance()
            m = self._model(p["ModelName"])
            del self._models[m.name.lower()]
        return {}

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            items = list(self._models.values())
        page, token = _page(items, p, lambda r: r.name, lambda r: r.creation_time, lambda r: "")
        out: dict[str, Any] = {
            "Models": [{"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.creation_time} for r in page]
        }
        if token:
            out["NextToken"] = token
        return out

    # ---- endpoint configs ----

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        variants = [dict(v) for v in p["ProductionVariants"]]
        seen: set[str] = set()
        for v in variants:
            if v["VariantName"] in seen:
                raise errors.validation(f"Duplicate variant name {v['VariantName']!r} in ProductionVariants.")
            seen.add(v["VariantName"])
            serverless = v.get("ServerlessConfig") is not None
            if not serverless and (v.get("InstanceType") is None or v.get("InitialInstanceCount") is None):
                raise errors.validation(
                    f"Variant {v['VariantName']!r}: InstanceType and InitialInstanceCount are required "
                    "unless ServerlessConfig is given."
                )
            if not serverless:
                v.setdefault("InitialVariantWeight", 1.0)
        with self._lock:
            self._advance()
            arn = self.arn("endpoint-config", name)
            if name.lower() in self._configs:
                raise errors.already_exists("endpoint configuration", arn)
            for v in variants:
                if v.get("ModelName"):
                    self._model(v["ModelName"])
            request = {k: copy.deepcopy(v) for k, v in p.items() if k != "Tags"}
            request["ProductionVariants"] = variants
            tags = _tags_dict(p.get("Tags"))
            self._configs[name.lower()] = _Resource(name, arn, request, self._now(), tags, bool(tags))
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            c = self._config(p["EndpointConfigName"])
            out = copy.deepcopy(c.request)
            out.update(EndpointConfigArn=c.arn, CreationTime=c.creation_time)
            # The reference lists EnableNetworkIsolation without a default; AWS answers false when
            # the config did not set it, as DescribeModel does (clients that copy the response into
            # their desired state never converge without it).
            out.setdefault("EnableNetworkIsolation", False)
            return out

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        # Like AWS, deleting a config in use is allowed; it only breaks later updates/rollbacks.
        with self._lock:
            self._advance()
            c = self._config(p["EndpointConfigName"])
            del self._configs[c.name.lower()]
        return {}

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            items = list(self._configs.values())
        page, token = _page(items, p, lambda r: r.name, lambda r: r.creation_time, lambda r: "")
        out: dict[str, Any] = {
            "EndpointConfigs": [
                {"EndpointConfigName": r.name, "EndpointConfigArn": r.arn, "CreationTime": r.creation_time}
                for r in page
            ]
        }
        if token:
            out["NextToken"] = token
        return out

    # ---- deployments ----

    def _deployment_inputs(self, config_name: str) -> tuple[_Resource, dict[str, _Resource]]:
        """The config and its models, copied so the slow checks can run outside the lock."""
        config = self._config(config_name)
        models = {}
        for v in config.request["ProductionVariants"]:
            if v.get("ModelName"):
                models[v["VariantName"]] = copy.deepcopy(self._model(v["ModelName"]))
        return copy.deepcopy(config), models

    def _check_quota(self, config: _Resource, exclude: str | None) -> None:
        wanted: dict[str, int] = {}
        for v in config.request["ProductionVariants"]:
            if v.get("InstanceType"):
                wanted[v["InstanceType"]] = wanted.get(v["InstanceType"], 0) + int(v["InitialInstanceCount"])
        for instance_type, delta in wanted.items():
            limit = self.faults.instance_quota(instance_type)
            if limit is None:
                continue
            used = sum(
                int(v.get("CurrentInstanceCount") or 0)
                for key, ep in self._endpoints.items()
                if key != exclude
                for v in (ep.variants or [])
                if v.get("InstanceType") == instance_type
            )
            if used + delta > limit:
                raise errors.instance_quota_exceeded(instance_type, limit, used, delta)

    def _deployment_failure(self, config: _Resource, models: dict[str, _Resource]) -> str | None:
        """Why deploying ``config`` would fail, in AWS's words, or None. May do S3 I/O: no lock held."""
        for v in config.request["ProductionVariants"]:
            reason = self.faults.capacity_failure(v.get("InstanceType"))
            if reason:
                return reason
        for variant, model in models.items():
            for container in _containers(model.request):
                missing = self._missing_model_data(container)
                if missing:
                    return missing
            images = [c.get("Image", "") for c in _containers(model.request)]
            reason = self.faults.model_start_failure(model.name, images, variant)
            if reason:
                return reason
        return None

    def _missing_model_data(self, container: dict[str, Any]) -> str | None:
        """The first data source (ModelDataUrl, ModelDataSource, then each additional channel) with
        nothing to download: SageMaker fails the deployment when one of them is empty or missing."""
        sources: list[tuple[str | None, bool]] = [(container.get("ModelDataUrl"), False)]
        for source in model_data_sources(container).values():
            sources.append((source.get("S3Uri"), source.get("S3DataType") == "S3Prefix"))
        for url, prefix in sources:
            location = _s3_location(url) if url else None
            if location is None:
                continue  # no model data, or an https URL we cannot check
            bucket, key = location
            if self._s3_probe(bucket, key, prefix):
                continue
            what = f"prefix: {key}" if prefix else f"key: {key}"
            return (
                f"Failed to download model data(bucket: {bucket}, {what}). Please ensure that there is an object "
                "located at the URL and that the role passed to CreateModel has permissions to download the model."
            )
        return None

    def _live_variants(
        self,
        config: _Resource,
        models: dict[str, _Resource],
        now: float,
        previous: list[dict[str, Any]] | None,
        retain: bool,
        exclude: set[str],
    ) -> list[dict[str, Any]]:
        old = {v["VariantName"]: v for v in previous or []}
        out = []
        for v in config.request["ProductionVariants"]:
            model = models.get(v["VariantName"])
            images = [c.get("Image", "") for c in _containers(model.request)] if model else []
            live: dict[str, Any] = {
                "VariantName": v["VariantName"],
                "DeployedImages": [
                    {"SpecifiedImage": i, "ResolvedImage": resolved_image(i), "ResolutionTime": now} for i in images
                ],
            }
            if v.get("ServerlessConfig") is not None:
                live["CurrentServerlessConfig"] = dict(v["ServerlessConfig"])
                live["DesiredServerlessConfig"] = dict(v["ServerlessConfig"])
            else:
                count = int(v["InitialInstanceCount"])
                weight = float(v.get("InitialVariantWeight", 1.0))
                before = old.get(v["VariantName"])
                if retain and before is not None:
                    if "DesiredInstanceCount" not in exclude and "DesiredInstanceCount" in before:
                        count = before["DesiredInstanceCount"]
                    if "DesiredWeight" not in exclude and "DesiredWeight" in before:
                        weight = before["DesiredWeight"]
                live.update(
                    CurrentWeight=weight,
                    DesiredWeight=weight,
                    CurrentInstanceCount=count,
                    DesiredInstanceCount=count,
                    InstanceType=v["InstanceType"],
                )
            live["ModelName"] = v.get("ModelName")
            out.append(live)
        return out

    def _check_scalable(self, ep: _Endpoint, config: _Resource) -> None:
        """UpdateEndpoint refused for a variant registered with Application Auto Scaling whose instance type
        changes or which goes away: "If the update would change the instance type for any model that is a
        target for auto scaling, the update fails" ("deregister the variant as a scalable target" first:
        https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). Our wording."""
        registered = self.scalable_variants(ep.name)
        if not registered:
            return
        new = {v["VariantName"]: v for v in config.request["ProductionVariants"]}
        for live in ep.variants or []:
            if live["VariantName"] not in registered:
                continue
            wanted = new.get(live["VariantName"])
            if wanted is None or wanted.get("InstanceType") != live.get("InstanceType"):
                raise errors.validation(
                    f"Variant {live['VariantName']} of endpoint {ep.name} is a scalable target of Application Auto "
                    "Scaling: deregister it before changing its instance type or removing it."
                )

    def _pending_summary(self, config: _Resource, now: float) -> dict[str, Any]:
        variants = []
        for v in config.request["ProductionVariants"]:
            summary = {
                "VariantName": v["VariantName"],
                "DesiredWeight": v.get("InitialVariantWeight"),
                "DesiredInstanceCount": v.get("InitialInstanceCount"),
                "InstanceType": v.get("InstanceType"),
                "VariantStatus": [{"Status": "Creating", "StartTime": now}],
            }
            # Serverless variants have no counts; JSON nulls would not parse as numbers.
            variants.append({k: val for k, val in summary.items() if val is not None})
        return {"EndpointConfigName": config.name, "StartTime": now, "ProductionVariants": variants}

    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        arn = self.arn("endpoint", name)
        with self._lock:
            self._advance()
            if name.lower() in self._endpoints:
                raise errors.already_exists("endpoint", arn)
            config, models = self._deployment_inputs(config_name)
            self._check_quota(config, exclude=None)
            if p.get("DeploymentConfig"):
                rollout.check(p["DeploymentConfig"], config.request["ProductionVariants"])
        failure = self._deployment_failure(config, models)
        delays = self.faults.delays()
        with self._lock:
            now = self._advance()
            if name.lower() in self._endpoints:
                raise errors.already_exists("endpoint", arn)
            ep = _Endpoint(
                name=name,
                arn=arn,
                config_name=config.name,
                status="Creating",
                creation_time=now,
                last_modified=now,
                tags=_tags_dict(p.get("Tags")),
                ever_tagged=bool(p.get("Tags")),
                pending=self._pending_summary(config, now),
                deployment_config=copy.deepcopy(p.get("DeploymentConfig")),
            )

            def finish(ep: _Endpoint, at: float) -> None:
                ep.pending = None
                if failure:
                    ep.status, ep.failure_reason = "Failed", failure
                else:
                    ep.status = "InService"
                    ep.variants = self._live_variants(config, models, at, None, False, set())

            self._endpoints[name.lower()] = ep
            self._changed(ep)
            self._schedule(ep, _Step(now + delays.create, finish))
        return {"EndpointArn": arn}

    def _require_updatable(self, ep: _Endpoint) -> None:
        if ep.status == "Failed":
            raise errors.endpoint_failed(ep.arn)
        if ep.status != "InService":
            raise errors.endpoint_in_progress(ep.arn)

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        retain = bool(p.get("RetainAllVariantProperties", False))
        exclude = {e["VariantPropertyType"] for e in p.get("ExcludeRetainedVariantProperties") or []}
        if exclude and not retain:
            raise errors.validation(
                "ExcludeRetainedVariantProperties can only be specified when RetainAllVariantProperties is true."
            )
        if p.get("DeploymentConfig") and p.get("RetainDeploymentConfig"):
            raise errors.validation("DeploymentConfig cannot be specified when RetainDeploymentConfig is true.")
        with self._lock:
            self._advance()
            ep = self._endpoint(name)
            self._require_updatable(ep)
            config, models = self._deployment_inputs(config_name)
            self._check_scalable(ep, config)
            self._check_quota(config, exclude=name.lower())
            deployment = p.get("DeploymentConfig") or (
                ep.deployment_config if p.get("RetainDeploymentConfig") else None
            )
            if deployment:
                rollout.check(deployment, config.request["ProductionVariants"])
        failure = self._deployment_failure(config, models)
        delays = self.faults.delays()
        with self._lock:
            now = self._advance()
            ep = self._endpoint(name)
            self._require_updatable(ep)
            ep.status, ep.last_modified = "Updating", now
            ep.pending = self._pending_summary(config, now)
            ep.deployment_config = copy.deepcopy(deployment)
            self._changed(ep)

            def roll_back(ep: _Endpoint, at: float) -> None:
                ep.status = "RollingBack"

            def rolled_back(ep: _Endpoint, at: float) -> None:
                # Back on the old config and variants; only FailureReason tells what happened.
                ep.status, ep.pending, ep.failure_reason = "InService", None, failure

            if failure:
                due = now + delays.update
                self._schedule(ep, _Step(due, roll_back), _Step(due + delays.rollback, rolled_back))
            else:
                # Blue/green: the old fleet serves until the new one is healthy (the runtime warms it),
                # then the traffic moves over in the steps the DeploymentConfig asks for.
                gate = None
                if self.deploy_hook is not None:
                    targets = [
                        _target(ep.name, v, models.get(v["VariantName"]), settled=False)
                        for v in config.request["ProductionVariants"]
                    ]
                    gate = self.deploy_hook(ep.name, targets)
                variants = config.request["ProductionVariants"]
                ep.rollout = _Rollout(
                    config,
                    models,
                    rollout.plan(deployment, variants, delays.update),
                    now,
                    retain,
                    exclude,
                    time_scale=delays.guardrail_time_scale,
                )
                self._schedule(ep, _Step(now + delays.update, self._next_phase, gate))
        return {"EndpointArn": ep.arn}

    def update_weights_and_capacities(self, p: dict[str, Any]) -> dict[str, Any]:
        """Out-of-band scaling (what autoscaling does): lets tests make live counts differ from the config."""
        wanted = {w["VariantName"]: w for w in p["DesiredWeightsAndCapacities"]}
        delays = self.faults.delays()
        with self._lock:
            now = self._advance()
            ep = self._endpoint(p["EndpointName"])
            self._require_updatable(ep)
            live = {v["VariantName"]: v for v in ep.variants or []}
            unknown = sorted(set(wanted) - set(live))
            if unknown:
                raise errors.validation(f"The variant name(s) [{', '.join(unknown)}] is/are not present.")
            for vname, w in wanted.items():
                if "DesiredInstanceCount" in w:
                    live[vname]["DesiredInstanceCount"] = w["DesiredInstanceCount"]
                if "DesiredWeight" in w:
                    live[vname]["DesiredWeight"] = w["DesiredWeight"]
            ep.status, ep.last_modified = "Updating", now
            self._changed(ep)

            def finish(ep: _Endpoint, at: float) -> None:
                ep.status = "InService"
                for v in ep.variants or []:
                    if "DesiredInstanceCount" in v:
                        v["CurrentInstanceCount"] = v["DesiredInstanceCount"]
                        v["CurrentWeight"] = v["DesiredWeight"]

            self._schedule(ep, _Step(now + delays.update, finish))
        return {"EndpointArn": ep.arn}

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self._describe(self._endpoint(p["EndpointName"]))

    def _describe(self, ep: _Endpoint) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EndpointName": ep.name,
            "EndpointArn": ep.arn,
            "EndpointConfigName": ep.config_name,
            "EndpointStatus": ep.status,
            "CreationTime": ep.creation_time,
            "LastModifiedTime": ep.last_modified,
        }
        if ep.variants is not None:
            out["ProductionVariants"] = [
                {k: v for k, v in copy.deepcopy(var).items() if k not in ("ModelName", "InstanceType")}
                for var in ep.variants
            ]
        if ep.failure_reason:
            out["FailureReason"] = ep.failure_reason
        if ep.pending is not None:
            out["PendingDeploymentSummary"] = copy.deepcopy(ep.pending)
        if ep.deployment_config:
            out["LastDeploymentConfig"] = copy.deepcopy(ep.deployment_config)
        return out

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        delays = self.faults.delays()
        with self._lock:
            now = self._advance()
            ep = self._endpoint(p["EndpointName"])
            if ep.status in IN_PROGRESS:
                raise errors.endpoint_in_progress(ep.arn)
            ep.status, ep.last_modified = "Deleting", now
            self._changed(ep)

            def remove(ep: _Endpoint, at: float) -> None:
                ep.gone = True

            self._schedule(ep, _Step(now + delays.delete, remove))
            self._advance()  # a zero delay deletes at once
        return {}

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            items = [copy.copy(ep) for ep in self._endpoints.values()]
        if p.get("StatusEquals"):
            items = [ep for ep in items if ep.status == p["StatusEquals"]]
        if p.get("LastModifiedTimeBefore") is not None:
            items = [ep for ep in items if ep.last_modified < float(p["LastModifiedTimeBefore"])]
        if p.get("LastModifiedTimeAfter") is not None:
            items = [ep for ep in items if ep.last_modified > float(p["LastModifiedTimeAfter"])]
        page, token = _page(items, p, lambda e: e.name, lambda e: e.creation_time, lambda e: e.status)
        out: dict[str, Any] = {
            "Endpoints": [
                {
                    "EndpointName": e.name,
                    "EndpointArn": e.arn,
                    "CreationTime": e.creation_time,
                    "LastModifiedTime": e.last_modified,
                    "EndpointStatus": e.status,
                }
                for e in page
            ]
        }
        if token:
            out["NextToken"] = token
        return out

    # ---- tags ----

    def _tagged(self, arn: str) -> _Resource | _Endpoint:
        parsed = parse_sagemaker_arn(arn)
        if parsed is not None and arn.split(":")[3:5] == [self.region, self.account_id]:
            kind, name = parsed
            tables: dict[str, dict[str, Any]] = {
                "model": self._models,
                "endpoint-config": self._configs,
                "endpoint": self._endpoints,
            }
            table = tables[kind]
            if name in table:
                found: _Resource | _Endpoint = table[name]
                return found
        raise errors.validation(f'Could not find resource "{arn}".')

    def add_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            resource = self._tagged(p["ResourceArn"])
            resource.tags.update(_tags_dict(p["Tags"]))
            resource.ever_tagged = resource.ever_tagged or bool(p["Tags"])
        return {"Tags": list(p["Tags"])}

    def delete_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            tags = self._tagged(p["ResourceArn"]).tags
            for key in p["TagKeys"]:
                tags.pop(key, None)
        return {}

    def list_tags(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._advance()
            tags = _tags_list(self._tagged(p["ResourceArn"]).tags)
        start = _token_offset(p.get("NextToken"))
        size = int(p.get("MaxResults") or 50)
        out: dict[str, Any] = {"Tags": tags[start : start + size]}
        if start + size < len(tags):
            out["NextToken"] = str(start + size)
        return out

    def tagged_resources(self) -> list[TaggedResource]:
        """Every model, endpoint config and endpoint that exists now (deleted ones are gone), with its tags."""
        with self._lock:
            self._advance()
            everything: list[_Resource | _Endpoint] = [
                *self._models.values(),
                *self._configs.values(),
                *self._endpoints.values(),
            ]
            return [TaggedResource(r.arn, dict(r.tags), r.ever_tagged) for r in everything]

    # ---- emulator-only ----

    def force_failed(self, name: str, reason: str) -> None:
        """Drift tests: the endpoint becomes Failed at once, whatever it was doing."""
        with self._lock:
            now = self._advance()
            ep = self._endpoint(name)
            ep.steps.clear()
            self._busy.discard(name.lower())
            ep.status, ep.failure_reason, ep.pending, ep.last_modified = "Failed", reason, None, now
            ep.rollout = None
            self._changed(ep)

    def variant_state(self, endpoint: str, variant: str) -> tuple[str, int, int] | None:
        """``(EndpointStatus, DesiredInstanceCount, CurrentInstanceCount)`` of a live variant, or None
        (no such endpoint or variant): what Application Auto Scaling reads."""
        with self._lock:
            self._advance()
            ep = self._endpoints.get(endpoint.lower())
            if ep is None:
                return None
            for v in ep.variants or []:
                if v["VariantName"] == variant and "DesiredInstanceCount" in v:
                    return ep.status, int(v["DesiredInstanceCount"]), int(v.get("CurrentInstanceCount") or 0)
        return None

    def runtime_target(self, name: str, target_variant: str | None) -> RuntimeTarget | None:
        """The live variant an invocation goes to, or None if the endpoint does not serve.

        Updating/RollingBack endpoints keep serving their old config, as in AWS; while a deployment
        shifts traffic, the new fleet takes its current share. AWS routes each request at random by
        weight; the emulator spreads them evenly (every 1/share-th request), so the share over any
        window matches the weight without sampling noise."""
        with self._lock:
            self._advance()
            ep = self._endpoints.get(name.lower())
            if ep is None or ep.status not in ("InService", "Updating", "RollingBack") or not ep.variants:
                return None
            settled = ep.status == "InService" and ep.rollout is None
            fleets: list[tuple[list[dict[str, Any]], dict[str, _Resource] | None]] = [(ep.variants, None)]
            ro = ep.rollout
            if ro is not None and ro.new_variants and ro.percent > 0:
                ro.credit += ro.percent / 100.0
                new: tuple[list[dict[str, Any]], dict[str, _Resource] | None] = (ro.new_variants, ro.models)
                if ro.credit >= 1.0 - 1e-9:
                    ro.credit -= 1.0
                    fleets.insert(0, new)
                else:
                    fleets.append(new)
            candidates = [
                ([v for v in fleet if target_variant is None or v["VariantName"] == target_variant], models)
                for fleet, models in fleets
            ]
            found = next((c for c in candidates if c[0]), None)
            if found is None:
                raise ApiError("ValidationError", f"Variant {target_variant} not found for endpoint {ep.name}.")
            variants, models = found
            # Deterministic routing within a fleet: the first variant that takes traffic.
            chosen = next((v for v in variants if v.get("CurrentWeight", 1.0) > 0), variants[0])
            if models is not None:
                model = models.get(chosen["VariantName"])
            else:
                model = self._models.get((chosen.get("ModelName") or "").lower())
            return _target(ep.name, chosen, model, settled)


def _target(
    endpoint_name: str, variant: dict[str, Any], model: _Resource | None, settled: bool = True
) -> RuntimeTarget:
    containers = _containers(model.request) if model else []
    container = containers[0] if containers else {}
    return RuntimeTarget(
        endpoint_name=endpoint_name,
        variant_name=variant["VariantName"],
        model_name=variant.get("ModelName") or "",
        model_data_url=container.get("ModelDataUrl"),
        environment=dict(container.get("Environment") or {}),
        data_sources=copy.deepcopy(model_data_sources(container)),
        network_isolation=bool(model.request.get("EnableNetworkIsolation")) if model else False,
        settled=settled,
    )


def _token_offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise errors.validation(f"Invalid pagination token {token!r}.")
    return int(token)


def _page(
    items: list[Any],
    p: dict[str, Any],
    name_of: Callable[[Any], str],
    created_of: Callable[[Any], float],
    status_of: Callable[[Any], str],
) -> tuple[list[Any], str | None]:
    """Filter (NameContains, CreationTime*), sort (SortBy/SortOrder) and page (MaxResults/NextToken)."""
    if p.get("NameContains"):
        needle = p["NameContains"].lower()
        items = [i for i in items if needle in name_of(i).lower()]
    if p.get("CreationTimeBefore") is not None:
        items = [i for i in items if created_of(i) < float(p["CreationTimeBefore"])]
    if p.get("CreationTimeAfter") is not None:
        items = [i for i in items if created_of(i) > float(p["CreationTimeAfter"])]
    sort_by = p.get("SortBy") or "CreationTime"
    keys: dict[str, Callable[[Any], Any]] = {
        "Name": name_of,
        "CreationTime": created_of,
        "Status": status_of,
    }
    items = sorted(items, key=keys[sort_by], reverse=(p.get("SortOrder") or "Descending") == "Descending")
    start = _token_offset(p.get("NextToken"))
    size = int(p.get("MaxResults") or _DEFAULT_PAGE)
    token = str(start + size) if start + size < len(items) else None
    return items[start : start + size], token
