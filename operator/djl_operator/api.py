"""The DjlEndpoint API: typed models that are the single source of truth.

The CustomResourceDefinition in ``crds/`` is generated from these models
(``djl-operator crd``), and the operator parses every resource body through
them, so the schema the API server enforces and the one the code reads cannot
drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from djl_operator import instance_types

GROUP = "serving.djl-operator.io"
VERSION = "v1alpha1"
KIND = "DjlEndpoint"
PLURAL = "djlendpoints"
SINGULAR = "djlendpoint"
SHORT_NAMES = ["djle"]

# Every pattern below is read by two regex engines: the API server's (Go, RE2) and
# pydantic's (Rust `regex`). They disagree on \s, \d, \w (Unicode or not, \v or not) and
# on Unicode classes, so the patterns use explicit ASCII classes only; `$` is the end of
# the text in both (never Python's "or before a trailing newline": see _Model's
# regex_engine). tests/integration/test_pattern_agreement.py runs one corpus through both.

# SageMaker resource names (models, endpoint configs, endpoints).
SAGEMAKER_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
# botocore's RoleArn shape pattern, anchored.
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/?[a-zA-Z0-9+=,.@_/-]+$"
# S3 bucket naming rules: 3-63 chars, lower case, digits, dots and hyphens,
# starting and ending with a letter or digit.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# One segment of an s3:// key: S3's safe characters, never empty, never "." or "..".
_S3_CHAR = r"[A-Za-z0-9!_.*'()-]"
_S3_NON_DOT = r"[A-Za-z0-9!_*'()-]"
_S3_SEGMENT = rf"({_S3_NON_DOT}{_S3_CHAR}*|\.{_S3_NON_DOT}{_S3_CHAR}*|\.\.{_S3_CHAR}+)"
# A Hugging Face model id (``name`` or ``org/name``) or an S3 prefix holding weights.
MODEL_ID_PATTERN = (
    rf"^(s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9](/{_S3_SEGMENT})*/?"
    r"|[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?)$"
)
# A Hugging Face revision: a branch, tag or commit, e.g. main, v1.0, refs/pr/1 (no empty or ".." segment).
REVISION_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$"
REGION_PATTERN = r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"
PREFIX_PATTERN = r"^[A-Za-z0-9!_.*'()/-]*$"
# registry[:port]/repository[:tag][@sha256:digest], ASCII only.
IMAGE_URI_PATTERN = (
    r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
KMS_KEY_PATTERN = r"^[a-zA-Z0-9:/_-]*$"
# spec.model.networkIsolation's rules (the CRD's CEL carries the same messages).
NETWORK_ISOLATION_NEEDS_SNAPSHOT = (
    "networkIsolation needs snapshot: true (an isolated container can reach neither the Hub nor S3 itself; "
    "SageMaker mounts the snapshot's weights before it starts)"
)
NETWORK_ISOLATION_NO_REQUIREMENTS = (
    "networkIsolation cannot install requirements (pip cannot reach a package index from an isolated "
    "container); remove spec.model.requirements or networkIsolation"
)
# A Secret's name (a DNS subdomain) and a key in its data (Kubernetes' IsConfigMapKey).
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
IMAGE_VERSION_PATTERN = r"^[0-9]+\.[0-9]+(\.[0-9]+)?$"
DTYPE_PATTERN = r"^(fp32|fp16|bf16|int8|auto)$"
# serving.properties keys: letters, digits, '_', '.', '-' (DJL's own keys all fit).
PROPERTY_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # the bound too: kubeconform checks keys by pattern
# serving.properties values: one line; no C0/C1 control, DEL or line/paragraph separator.
PROPERTY_VALUE_PATTERN = r"^[^\x{0}-\x{1f}\x{7f}-\x{9f}\x{2028}\x{2029}]*$"
# A requirements entry: printable ASCII without '#' (pip comment), '$' (pip expands ${VAR})
# and '\' (pip line continuation). What it means is checked with `packaging`.
REQUIREMENT_PATTERN = r'^[ -"%-\[\]-~]+$'
# AWS tag keys and values, restricted to ASCII (AWS's own pattern uses Unicode classes).
TAG_PATTERN = r"^[A-Za-z0-9 _.:/=+@-]*$"
TAG_KEY_PATTERN = r"^[A-Za-z0-9 _.:/=+@-]{1,128}$"
RESERVED_TAG_PREFIXES = ("aws:", "djl-operator.io/")

# Bounds: a whole resource stays far below etcd's and kopf's limits (kopf stores the
# last handled spec in a 256 KiB annotation).
MAX_PROPERTIES = 64
MAX_PROPERTY_KEY = 128
MAX_PROPERTY_VALUE = 4096
# Keys plus values, in characters. kubectl's last-applied (UTF-8) and kopf's last-handled
# (JSON with \u escapes: 12 bytes for an emoji) annotations each hold the whole spec and
# share 256 KiB; tests/unit/test_crd_generation.py checks the worst case fits.
MAX_PROPERTIES_TOTAL = 8192
MAX_REQUIREMENTS = 64
MAX_REQUIREMENT = 256
MAX_TAGS = 40  # SageMaker allows 50 per resource; the operator adds its own
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256

# Application Auto Scaling schedules (PutScheduledAction's Schedule): at(yyyy-mm-ddThh:mm:ss),
# rate(value unit) or cron(minutes hours day-of-month month day-of-week year), where one of
# day-of-month and day-of-week must be '?' (https://docs.aws.amazon.com/autoscaling/application/
# userguide/scheduled-scaling-using-cron-expressions.html). The date fields are range-checked here;
# an impossible day (Feb 30) passes the pattern and the operator stalls it (scaling.check, InvalidSpec).
_CRON_FIELD = r"[0-9A-Za-z*?,/#LW-]+"
SCHEDULE_PATTERN = (
    r"^(at\((19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\)"
    r"|rate\([1-9][0-9]{0,5} (minute|minutes|hour|hours|day|days)\)"
    rf"|cron\({_CRON_FIELD} {_CRON_FIELD} (\? {_CRON_FIELD} {_CRON_FIELD}|{_CRON_FIELD} {_CRON_FIELD} \?)"
    rf" {_CRON_FIELD}\))$"
)
# A schedule's name becomes part of the scheduled action's name: a DNS label.
SCHEDULE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# An IANA time zone name (Application Auto Scaling's Timezone), e.g. Europe/Berlin, Etc/GMT+9, UTC.
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
MAX_SCHEDULES = 16
MAX_INSTANCES = 1000


class Task(StrEnum):
    """Tasks the model template serves."""

    FEATURE_EXTRACTION = "feature-extraction"
    TEXT_GENERATION = "text-generation"
    TEXT2TEXT_GENERATION = "text2text-generation"
    SUMMARIZATION = "summarization"
    FILL_MASK = "fill-mask"
    TEXT_CLASSIFICATION = "text-classification"
    TOKEN_CLASSIFICATION = "token-classification"


class Engine(StrEnum):
    """DJL Serving engines we support."""

    PYTHON = "Python"
    DEEPSPEED = "DeepSpeed"
    MPI = "MPI"


class ImageFramework(StrEnum):
    """DJL container families in the SageMaker SDK's image URI tables."""

    DJL_DEEPSPEED = "djl-deepspeed"
    DJL_LMI = "djl-lmi"
    DJL_TENSORRTLLM = "djl-tensorrtllm"
    DJL_NEURONX = "djl-neuronx"


class RollingBatch(StrEnum):
    """LMI's ``option.rolling_batch`` (continuous batching backend)."""

    AUTO = "auto"
    VLLM = "vllm"
    TRTLLM = "trtllm"
    DISABLE = "disable"


class Quantize(StrEnum):
    """LMI's ``option.quantize``: runtime quantization (pre-quantized AWQ/GPTQ weights need none)."""

    FP8 = "fp8"
    BITSANDBYTES = "bitsandbytes"
    AWQ = "awq"
    SMOOTHQUANT = "smoothquant"


class RolloutStrategy(StrEnum):
    """How SageMaker moves traffic to a new config (UpdateEndpoint's DeploymentConfig)."""

    ALL_AT_ONCE = "AllAtOnce"
    CANARY = "Canary"
    LINEAR = "Linear"
    ROLLING = "Rolling"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class Phase(StrEnum):
    PENDING = "Pending"
    PACKAGING = "Packaging"
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    # An update SageMaker rolled back: the endpoint serves the previous config.
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"
    DELETING = "Deleting"


class _Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        # Rust's regex reads the patterns as RE2 does; Python's `re` would not (`$`, \x{...}).
        regex_engine="rust-regex",
    )


InstanceType = Annotated[
    str,
    Field(
        description="SageMaker hosting instance type, e.g. ml.g5.12xlarge. Must be one of the "
        "ProductionVariantInstanceType values in botocore's SageMaker service model.",
        json_schema_extra={"enum": instance_types.hosting_instance_types()},
    ),
]


def _no_reserved_prefix(tags: dict[str, str]) -> dict[str, str]:
    for key in tags:
        if key.startswith(RESERVED_TAG_PREFIXES):
            raise ValueError(f"tag key {key!r} uses a reserved prefix ({', '.join(RESERVED_TAG_PREFIXES)})")
    return tags


def _bounded_total(properties: dict[str, str]) -> dict[str, str]:
    total = sum(len(k) + len(v) for k, v in properties.items())
    if total > MAX_PROPERTIES_TOTAL:
        raise ValueError(f"keys and values hold {total} characters in all; at most {MAX_PROPERTIES_TOTAL}")
    return properties


PropertyKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROPERTY_KEY, pattern=PROPERTY_KEY_PATTERN)]
PropertyValue = Annotated[str, StringConstraints(max_length=MAX_PROPERTY_VALUE, pattern=PROPERTY_VALUE_PATTERN)]
Requirement = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REQUIREMENT, pattern=REQUIREMENT_PATTERN)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_KEY, pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE, pattern=TAG_PATTERN)]


class SecretKeyRef(_Model):
    """One key of a Secret in the resource's own namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN, description="The Secret's name.")
    key: str = Field(
        default="token", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN, description="The key in its data."
    )


class ModelSpec(_Model):
    """What to serve."""

    id: str = Field(
        min_length=1,
        max_length=1024,
        pattern=MODEL_ID_PATTERN,
        description="Hugging Face model id (e.g. facebook/bart-large) or an s3:// prefix holding the weights.",
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=REVISION_PATTERN,
        description="Hugging Face revision (branch, tag or commit) to load.",
    )
    task: Task = Field(
        default=Task.FEATURE_EXTRACTION,
        description="Inference task the model template runs for this model.",
    )
    engine: Engine = Field(default=Engine.PYTHON, description="DJL Serving engine (serving.properties `engine`).")
    dtype: str | None = Field(
        default=None,
        max_length=8,
        pattern=DTYPE_PATTERN,
        description="Weights data type: fp32, fp16, bf16, int8 or auto (option.dtype).",
    )
    tensor_parallel_degree: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Number of GPUs a model copy is sharded over (option.tensor_parallel_degree).",
    )
    rolling_batch: RollingBatch | None = Field(
        default=None,
        description="LMI continuous batching (option.rolling_batch): auto, vllm (djl-lmi), trtllm "
        "(djl-tensorrtllm) or disable. Only for text-generation and text2text-generation on djl-lmi or "
        "djl-tensorrtllm; unset leaves LMI's default.",
    )
    max_rolling_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Most requests LMI batches at once (option.max_rolling_batch_size; LMI's default is 256).",
    )
    max_model_len: int | None = Field(
        default=None,
        ge=1,
        le=1048576,
        description="Longest sequence, prompt plus generated tokens (option.max_model_len).",
    )
    quantize: Quantize | None = Field(
        default=None,
        description="Runtime quantization (option.quantize): fp8 or bitsandbytes on djl-lmi, fp8, awq or "
        "smoothquant on djl-tensorrtllm. Leave unset for pre-quantized AWQ/GPTQ weights.",
    )
    properties: Annotated[dict[PropertyKey, PropertyValue], AfterValidator(_bounded_total)] = Field(
        default_factory=dict,
        max_length=MAX_PROPERTIES,
        description="Extra serving.properties entries; they override the operator's defaults.",
    )
    requirements: list[Requirement] = Field(
        default_factory=list,
        max_length=MAX_REQUIREMENTS,
        description="Extra pip requirements (PEP 508, one per entry) installed by DJL Serving before the model "
        "loads; index options and URL requirements only where the operator policy allows them.",
    )
    snapshot: bool = Field(
        default=False,
        description="Copy the Hub revision (resolved to a commit once per generation) into the artifact bucket "
        "under <prefix>/<namespace>/<name>/<uid>/snapshots/<commit>/ and serve it from there (the Model's "
        "'weights' AdditionalModelDataSources channel, which option.model_id names), so the endpoint never "
        "reaches the Hub. Needs a Hugging Face model id.",
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="A Secret in this namespace holding the Hugging Face token for gated or private models "
        "(only with snapshot: the operator reads it; it never reaches SageMaker).",
    )
    network_isolation: bool = Field(
        default=False,
        description="CreateModel's EnableNetworkIsolation: the container makes no network calls at all. Only "
        "with snapshot (SageMaker mounts the weights from S3 before the container starts) and without "
        "requirements (pip could not reach a package index).",
    )

    @model_validator(mode="after")
    def _snapshot_needs_hub_id(self) -> ModelSpec:
        # The CRD holds the same rules in CEL (crd.py), so the API server and the operator agree.
        if self.snapshot and self.id.startswith("s3://"):
            raise ValueError("snapshot copies a Hugging Face model id; an s3:// model id is served as it is")
        if self.token_secret_ref is not None and not self.snapshot:
            raise ValueError("tokenSecretRef needs snapshot: true (the token is only ever used by the operator)")
        if self.network_isolation and not self.snapshot:
            raise ValueError(NETWORK_ISOLATION_NEEDS_SNAPSHOT)
        if self.network_isolation and self.requirements:
            raise ValueError(NETWORK_ISOLATION_NO_REQUIREMENTS)
        return self


class ImageSpec(_Model):
    """Which DJL Serving container runs the model."""

    framework: ImageFramework = Field(
        default=ImageFramework.DJL_LMI,
        description="DJL container family, resolved through the SageMaker SDK's image URI tables "
        "(djl-deepspeed is deprecated and djl-neuronx frozen at 0.29.0: both still work, with a Warning).",
    )
    version: str | None = Field(
        default=None,
        max_length=32,
        pattern=IMAGE_VERSION_PATTERN,
        description="Container version (e.g. 0.21.0); the newest the SDK lists when omitted.",
    )
    uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=IMAGE_URI_PATTERN,
        description="Explicit container image URI; wins over framework and version.",
    )


class InstanceSpec(_Model):
    """Where it runs."""

    type: InstanceType
    count: int = Field(default=1, ge=1, le=1000, description="Initial instance count of the production variant.")
    volume_size_gb: int | None = Field(
        default=None,
        ge=1,
        le=512,
        alias="volumeSizeGB",
        description="ML storage volume per instance, in GB (only some instance types accept it).",
    )


class ScheduleSpec(_Model):
    """An Application Auto Scaling scheduled action: new bounds from a point in time on."""

    name: str = Field(
        min_length=1, max_length=40, pattern=SCHEDULE_NAME_PATTERN, description="Name of the schedule (a DNS label)."
    )
    schedule: str = Field(
        min_length=1,
        max_length=256,
        pattern=SCHEDULE_PATTERN,
        description="When: at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) or cron(min hour dom month dow "
        "year) with dom or dow '?'.",
    )
    min_instances: int | None = Field(
        default=None, ge=1, le=MAX_INSTANCES, description="The autoscaling minimum from then on."
    )
    max_instances: int | None = Field(
        default=None, ge=1, le=MAX_INSTANCES, description="The autoscaling maximum from then on."
    )
    timezone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=TIMEZONE_PATTERN,
        description="IANA time zone of at() and cron() (UTC when omitted).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScheduleSpec:
        if self.min_instances is None and self.max_instances is None:
            raise ValueError("set minInstances, maxInstances or both")
        both = self.min_instances is not None and self.max_instances is not None
        if both and self.min_instances > self.max_instances:  # type: ignore[operator]
            raise ValueError(f"minInstances ({self.min_instances}) must not exceed maxInstances ({self.max_instances})")
        return self


class AutoscalingSpec(_Model):
    """Application Auto Scaling of the production variant (sagemaker:variant:DesiredInstanceCount)."""

    min_instances: int = Field(default=1, ge=1, le=MAX_INSTANCES, description="Fewest instances autoscaling keeps.")
    max_instances: int = Field(ge=1, le=MAX_INSTANCES, description="Most instances autoscaling adds.")
    invocations_per_instance: int | None = Field(
        default=None,
        ge=1,
        le=1000000,
        description="Target tracking on SageMakerVariantInvocationsPerInstance: invocations per instance per "
        "minute. Set this or concurrentRequestsPerModel.",
    )
    concurrent_requests_per_model: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="Target tracking on SageMakerVariantConcurrentRequestsPerModelHighResolution: concurrent "
        "requests per model copy. Set this or invocationsPerInstance.",
    )
    scale_in_cooldown_seconds: int = Field(
        default=300, ge=0, le=86400, description="Seconds after a scale-in before the next scale-in."
    )
    scale_out_cooldown_seconds: int = Field(
        default=300, ge=0, le=86400, description="Seconds after a scale-out before the next scale-out."
    )
    disable_scale_in: bool = Field(default=False, description="Target tracking only ever adds instances.")
    schedules: list[ScheduleSpec] = Field(
        default_factory=list,
        max_length=MAX_SCHEDULES,
        description="Scheduled actions: new minInstances/maxInstances at() a time, every rate() or on a cron().",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AutoscalingSpec:
        if self.min_instances > self.max_instances:
            raise ValueError(f"minInstances ({self.min_instances}) must not exceed maxInstances ({self.max_instances})")
        if (self.invocations_per_instance is None) == (self.concurrent_requests_per_model is None):
            raise ValueError("set exactly one target: invocationsPerInstance or concurrentRequestsPerModel")
        names = [s.name for s in self.schedules]
        if len(names) != len(set(names)):
            raise ValueError("schedule names must be unique")
        return self


class TimeoutsSpec(_Model):
    """Large-model timeouts of the production variant."""

    model_data_download_seconds: int | None = Field(
        default=None,
        ge=60,
        le=3600,
        description="ModelDataDownloadTimeoutInSeconds: time allowed to download the model data.",
    )
    container_startup_health_check_seconds: int | None = Field(
        default=None,
        ge=60,
        le=3600,
        description="ContainerStartupHealthCheckTimeoutInSeconds: time allowed for the container to pass /ping.",
    )


# CloudWatch alarm names: AWS allows any non-blank UTF-8 without control characters; printable
# ASCII with at least one non-space character here (explicit classes: RE2 and Rust regex agree).
ALARM_NAME_PATTERN = r"^[ -~]*[!-~][ -~]*$"
AlarmName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=ALARM_NAME_PATTERN)]


class RolloutSpec(_Model):
    """How an update moves traffic to the new config: SageMaker's deployment guardrails."""

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.ALL_AT_ONCE,
        description="AllAtOnce, Canary (canaryPercent first, then the rest) or Linear (linearStepPercent per step) "
        "blue/green traffic shifting, or Rolling (rollingBatchPercent of the instances per batch).",
    )
    canary_percent: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="Canary only (and required there): share of the traffic the canary takes first "
        "(CanarySize CAPACITY_PERCENT; SageMaker allows at most 50).",
    )
    linear_step_percent: int | None = Field(
        default=None,
        ge=10,
        le=50,
        description="Linear only (and required there): share of the traffic moved per step "
        "(LinearStepSize CAPACITY_PERCENT, 10-50).",
    )
    rolling_batch_percent: int | None = Field(
        default=None,
        ge=5,
        le=50,
        description="Rolling only (and required there): share of the instances replaced per batch "
        "(MaximumBatchSize CAPACITY_PERCENT, 5-50).",
    )
    rollback_batch_percent: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Rolling only: share of the instances brought back per rollback batch "
        "(RollbackMaximumBatchSize; all at once when unset).",
    )
    wait_interval_seconds: int = Field(
        default=0,
        ge=0,
        le=3600,
        description="Baking period after each traffic step or batch, while the rollback alarms are watched "
        "(WaitIntervalInSeconds).",
    )
    termination_wait_seconds: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Blue/green only: how long the old fleet stays after all traffic moved (TerminationWaitInSeconds).",
    )
    maximum_execution_timeout_seconds: int | None = Field(
        default=None,
        ge=600,
        le=28800,
        description="Time limit of the whole update, larger than waitIntervalSeconds plus terminationWaitSeconds; "
        "SageMaker rolls back past it (MaximumExecutionTimeoutInSeconds).",
    )
    rollback_alarms: list[AlarmName] = Field(
        default_factory=list,
        max_length=10,
        description="CloudWatch alarms (yours) that roll the update back when they are in ALARM during it "
        "(AutoRollbackConfiguration). The execution role needs cloudwatch:DescribeAlarms on them.",
    )

    @model_validator(mode="after")
    def _combinations(self) -> RolloutSpec:
        # The combinations SageMaker refuses (emulator: kit/djl_operator_kit/emulator/rollout.py), and the
        # CRD's CEL rules (crd.ROLLOUT_RULES) say the same.
        for message in rollout_problems(self):
            raise ValueError(message)
        return self


def rollout_problems(rollout: RolloutSpec) -> list[str]:
    """Why SageMaker would refuse ``rollout`` (empty when it would not); crd.ROLLOUT_RULES mirrors each one."""
    problems = []
    only = {
        "canaryPercent": (rollout.canary_percent, RolloutStrategy.CANARY),
        "linearStepPercent": (rollout.linear_step_percent, RolloutStrategy.LINEAR),
        "rollingBatchPercent": (rollout.rolling_batch_percent, RolloutStrategy.ROLLING),
        "rollbackBatchPercent": (rollout.rollback_batch_percent, RolloutStrategy.ROLLING),
    }
    for name, (value, strategy) in only.items():
        if value is not None and rollout.strategy is not strategy:
            problems.append(f"{name} is only valid with strategy {strategy.value}")
    required = {
        RolloutStrategy.CANARY: ("canaryPercent", rollout.canary_percent),
        RolloutStrategy.LINEAR: ("linearStepPercent", rollout.linear_step_percent),
        RolloutStrategy.ROLLING: ("rollingBatchPercent", rollout.rolling_batch_percent),
    }
    if rollout.strategy in required and required[rollout.strategy][1] is None:
        problems.append(f"strategy {rollout.strategy.value} requires {required[rollout.strategy][0]}")
    if rollout.strategy is RolloutStrategy.ROLLING and rollout.termination_wait_seconds is not None:
        problems.append("terminationWaitSeconds is only valid with blue/green strategies (not Rolling)")
    waits = rollout.wait_interval_seconds + (rollout.termination_wait_seconds or 0)
    timeout = rollout.maximum_execution_timeout_seconds
    if timeout is not None and timeout <= waits:
        problems.append(
            "maximumExecutionTimeoutSeconds must be larger than waitIntervalSeconds plus terminationWaitSeconds"
        )
    return problems


class AwsSpec(_Model):
    """AWS account settings."""

    region: str = Field(
        default="us-east-1",
        max_length=32,
        pattern=REGION_PATTERN,
        description="AWS region of the endpoint and the artifact bucket.",
    )
    execution_role_arn: str = Field(
        min_length=20,
        max_length=2048,
        pattern=ROLE_ARN_PATTERN,
        description="IAM role SageMaker assumes to pull the image and the model data.",
    )
    artifact_bucket: str = Field(
        min_length=3,
        max_length=63,
        pattern=BUCKET_PATTERN,
        description="S3 bucket that receives the packaged model.tar.gz.",
    )
    artifact_prefix: str = Field(
        default="djl-operator",
        max_length=512,
        pattern=PREFIX_PATTERN,
        description="Key prefix for artifacts: <prefix>/<namespace>/<name>/<sha256>/model.tar.gz.",
    )
    kms_key_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        pattern=KMS_KEY_PATTERN,
        description="KMS key for the artifact (SSE-KMS) and the endpoint's storage volume.",
    )
    tags: Annotated[dict[TagKey, TagValue], AfterValidator(_no_reserved_prefix)] = Field(
        default_factory=dict,
        max_length=MAX_TAGS,
        description="Extra tags put on every SageMaker resource the operator creates (keys starting with aws: "
        "or djl-operator.io/ are reserved).",
    )


class DjlEndpointSpec(_Model):
    """Desired state of a DJL Serving endpoint on SageMaker."""

    model: ModelSpec = Field(description="The model to serve.")
    image: ImageSpec = Field(default_factory=ImageSpec, description="The DJL Serving container image.")
    instance: InstanceSpec = Field(description="Instance type and count of the production variant.")
    timeouts: TimeoutsSpec = Field(
        default_factory=TimeoutsSpec, description="Large-model timeouts of the production variant."
    )
    aws: AwsSpec = Field(description="AWS region, IAM execution role and artifact bucket.")
    endpoint_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=SAGEMAKER_NAME_PATTERN,
        description="SageMaker endpoint name; derived from namespace and name when omitted.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete removes the SageMaker resources and artifacts with the resource; Retain leaves them.",
    )
    autoscaling: AutoscalingSpec | None = Field(
        default=None,
        description="Application Auto Scaling of the instance count; instance.count must lie within its bounds.",
    )
    rollout: RolloutSpec | None = Field(
        default=None,
        description="How updates move traffic to a new config (canary, linear, rolling, alarm rollback); "
        "all at once when omitted.",
    )
    # True when the spec named no image family (the default applied): a deployed image of any
    # DJL family is then kept across operator upgrades (djl_operator.artifacts.images.pinned_image_uri).
    _framework_defaulted: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _default_framework(self) -> DjlEndpointSpec:
        # No family named: djl-lmi, except for engine DeepSpeed, which only djl-deepspeed runs.
        if "framework" not in self.image.model_fields_set:
            self._framework_defaulted = True
            if self.model.engine is Engine.DEEPSPEED:
                self.image = self.image.model_copy(update={"framework": ImageFramework.DJL_DEEPSPEED})
        return self

    @model_validator(mode="after")
    def _count_within_autoscaling(self) -> DjlEndpointSpec:
        scaling = self.autoscaling
        if scaling is not None and not scaling.min_instances <= self.instance.count <= scaling.max_instances:
            raise ValueError(
                f"instance.count ({self.instance.count}) must lie within autoscaling.minInstances "
                f"({scaling.min_instances}) and autoscaling.maxInstances ({scaling.max_instances})"
            )
        return self

    @property
    def framework_defaulted(self) -> bool:
        return self._framework_defaulted


class Condition(_Model):
    """A KEP-1623 condition."""

    type: str = Field(max_length=316, description="Condition type: Ready, Reconciling or Stalled.")
    status: str = Field(pattern=r"^(True|False|Unknown)$", description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: str = Field(description="When the status last flipped (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was computed from."
    )


class ArtifactStatus(_Model):
    uri: str | None = Field(default=None, description="s3:// URI of the uploaded model.tar.gz.")
    sha256: str | None = Field(default=None, description="SHA-256 of model.tar.gz (its content address).")


class _Lenient(_Model):
    # Reading a status must never fail on keys another writer added.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class InstancesStatus(_Lenient):
    """The live instance count (the scale subresource's status)."""

    current: int | None = Field(default=None, ge=0, description="CurrentInstanceCount of the production variant.")
    desired: int | None = Field(default=None, ge=0, description="DesiredInstanceCount of the production variant.")
    summary: str | None = Field(default=None, description="current/desired, for the INSTANCES column.")
    selector: str | None = Field(
        default=None,
        description="Label selector the scale subresource reports (SageMaker instances are not pods: it matches "
        "no pod).",
    )


class ScalingActivityStatus(_Lenient):
    description: str | None = Field(default=None, description="What the last scaling activity did.")
    cause: str | None = Field(default=None, description="Why it happened.")
    status_code: str | None = Field(default=None, description="Its StatusCode (InProgress, Successful...).")
    start_time: str | None = Field(default=None, description="When it started (RFC 3339).")


class AutoscalingStatus(_Lenient):
    """The scalable target as Application Auto Scaling reports it."""

    min_instances: int | None = Field(default=None, description="The scalable target's MinCapacity now.")
    max_instances: int | None = Field(default=None, description="The scalable target's MaxCapacity now.")
    policy_name: str | None = Field(default=None, description="The target tracking policy of this resource.")
    applied: str | None = Field(
        default=None, description="Hash of the spec.autoscaling last applied (a spec change re-applies it)."
    )
    last_activity: ScalingActivityStatus | None = Field(default=None, description="The last scaling activity.")


class SnapshotStatus(_Model):
    """The Hub revision copied into S3 (spec.model.snapshot)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    repo: str | None = Field(default=None, description="Hugging Face model id.")
    revision: str | None = Field(default=None, description="The revision the spec names.")
    commit: str | None = Field(default=None, description="The commit the revision resolved to for this generation.")
    generation: int | None = Field(default=None, description="The .metadata.generation the commit was resolved for.")
    uri: str | None = Field(default=None, description="s3:// prefix holding the commit's files.")
    files: int | None = Field(default=None, description="Files in the commit.")
    files_done: int | None = Field(default=None, description="Files already in S3.")
    bytes_total: int | None = Field(default=None, description="Bytes in the commit.")
    bytes_done: int | None = Field(default=None, description="Bytes already in S3.")
    progress: str | None = Field(default=None, description="bytesDone / bytesTotal as a percentage.")


class RolloutStatus(_Lenient):
    """An update in progress, as DescribeEndpoint's PendingDeploymentSummary reports it."""

    strategy: str | None = Field(default=None, description="The spec's rollout strategy.")
    stage: str | None = Field(
        default=None, description="SageMaker's stage of the new fleet: Creating, ActivatingTraffic, Baking, Deleting."
    )
    traffic_percent: int | None = Field(
        default=None, description="Percent of the traffic the new config takes now (SageMaker's report)."
    )
    next_step_time: str | None = Field(default=None, description="When the current stage ends (RFC 3339).")
    endpoint_config_name: str | None = Field(default=None, description="The config being rolled out.")
    summary: str | None = Field(default=None, description="One line for kubectl's ROLLOUT column.")


class DjlEndpointStatus(_Model):
    """Observed state, written by the operator."""

    # Other writers (kopf, kubectl users) may add keys; reading must not fail on them.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    observed_generation: int | None = Field(default=None, description="The .metadata.generation the status reflects.")
    phase: Phase | None = Field(default=None, description="Coarse lifecycle phase.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciling and Stalled.")
    endpoint_name: str | None = Field(default=None, description="SageMaker endpoint name.")
    endpoint_arn: str | None = Field(default=None, description="SageMaker endpoint ARN.")
    endpoint_status: str | None = Field(default=None, description="EndpointStatus as SageMaker reports it.")
    endpoint_url: str | None = Field(default=None, description="InvokeEndpoint URL of the endpoint.")
    model_name: str | None = Field(default=None, description="SageMaker model the desired config serves.")
    endpoint_config_name: str | None = Field(default=None, description="Endpoint config the endpoint is serving now.")
    desired_endpoint_config_name: str | None = Field(
        default=None, description="Endpoint config the current spec asks for."
    )
    image_uri: str | None = Field(default=None, description="Resolved container image URI.")
    image_notice: str | None = Field(
        default=None, max_length=1024, description="Why the image family or engine is deprecated, if it is."
    )
    newer_image_uri: str | None = Field(
        default=None,
        max_length=255,
        description="A newer image of the same family the SDK tables list; the endpoint keeps its pinned "
        "image until spec.image changes.",
    )
    artifact: ArtifactStatus | None = Field(default=None, description="The uploaded model artifact.")
    snapshot: SnapshotStatus | None = Field(default=None, description="The Hub revision copied into S3.")
    failure_reason: str | None = Field(default=None, description="Why the last attempt failed, if it did.")
    rollout: RolloutStatus | None = Field(default=None, description="The update in progress, while one runs.")
    last_sync_time: str | None = Field(default=None, description="When the operator last read the AWS side.")
    instances: InstancesStatus | None = Field(default=None, description="The live instance count.")
    autoscaling: AutoscalingStatus | None = Field(default=None, description="The autoscaling state, when on.")
    last_handled_reconcile_at: str | None = Field(
        default=None,
        max_length=256,
        description="The djl-operator.io/reconcile-requested-at annotation value last reconciled for.",
    )


class DjlEndpointResource(BaseModel):
    """A whole resource body as the operator sees it."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str
    uid: str
    generation: int
    spec: DjlEndpointSpec
    status: DjlEndpointStatus

    @classmethod
    def from_body(cls, body: Any) -> DjlEndpointResource:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 0),
            spec=DjlEndpointSpec.model_validate(dict(body.get("spec") or {})),
            status=DjlEndpointStatus.model_validate(_plain(body.get("status") or {})),
        )


def _plain(value: Any) -> Any:
    """kopf hands out read-only mapping views; pydantic wants plain containers."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
