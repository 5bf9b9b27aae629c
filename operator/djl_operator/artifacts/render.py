"""Render the files of a DJL Serving model artifact from a DjlEndpoint spec.

The artifact is the model template (``model.py``, its djl_python-compatible
helper module, ...) plus two rendered files:

``serving.properties``
    First-class spec fields become DJL properties; ``spec.model.properties``
    is layered on top, so a user's key overrides an operator default. A key
    that *contradicts* a first-class field (``option.task`` differing from
    ``spec.model.task``) is refused, naming both fields: the spec must not
    say two different things.

``requirements.txt``
    The template's requirements, then the user's; a user requirement for a
    project the template also lists replaces the template's line. Each user
    entry is one PEP 508 requirement by name (parsed with ``packaging``), or,
    where the operator policy allows it, one index option or URL requirement;
    pip's other options (``-e``, ``-r``, ``--trusted-host``...) never.

Engine/task matrix (``SUPPORTED_TASKS``):

* ``Python`` serves every task the template implements, on one device per
  model copy (``tensorParallelDegree`` > 1 is refused: the Python engine
  starts one process per worker and does not shard).
* ``DeepSpeed`` and ``MPI`` shard one model over several GPUs; that only pays
  off for large generative models, so they serve text-generation,
  text2text-generation and summarization. ``DeepSpeed`` exists only in the
  ``djl-deepspeed`` images (LMI 0.28+ dropped it); ``MPI`` is not offered by the
  Neuron images.

The LLM path (``is_llm``): text-generation and text2text-generation on an image
chosen by framework ``djl-lmi`` or ``djl-tensorrtllm`` use LMI's built-in
handler, configured by properties alone: no ``option.entryPoint`` and no template
files in the artifact (DJL would take a ``model.py`` in the model folder as the
entry point). The typed fields ``rollingBatch``, ``maxRollingBatchSize``,
``maxModelLen``, ``quantize`` and ``tensorParallelDegree`` become
``option.rolling_batch``, ``option.max_rolling_batch_size``,
``option.max_model_len``, ``option.quantize`` and ``option.tensor_parallel_degree``
(LMI shards with engine Python there), checked against what each container
accepts (LMI docs: ``serving/docs/lmi/user_guides/vllm_user_guide.md`` and
``trt_llm_user_guide.md``; ``deployment_guide/configurations.md``): vllm only on
djl-lmi, trtllm only on djl-tensorrtllm, and a tensor-parallel degree no larger
than the instance type's GPU count (``instance_types.gpu_count``). Every other
task, and every task on djl-deepspeed or djl-neuronx, keeps the template.

Defaults worth knowing:

* ``option.entryPoint=model.py``: the template is the request/response
  contract on every engine. It may be set to a DJL built-in handler
  (``djl_python.<name>``); any other file would not be in the artifact.
* ``option.pooling=none`` for feature-extraction: the handler returns the
  last hidden state, as the original hand-built BART endpoint did, so
  existing clients keep working. Set ``mean`` or ``cls`` in properties for a
  pooled sentence vector.
* ``option.model_loading_timeout``: DJL's own default (240 s) is too short
  for multi-GB downloads from the Hub; it follows
  ``spec.timeouts.containerStartupHealthCheckSeconds`` (SageMaker gives up at
  that point anyway) and is 1800 s when that is unset.
"""

from __future__ import annotations

import enum
import importlib.resources
import re
import unicodedata
from collections.abc import Iterable, Mapping
from importlib.abc import Traversable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from djl_operator import instance_types, javaprops
from djl_operator.api import DjlEndpointSpec, Engine, ImageFramework, Quantize, RollingBatch, Task
from djl_operator.errors import SpecError

TEMPLATE_PACKAGE = "djl_operator.model_template"
ENTRY_POINT = "model.py"
SERVING_PROPERTIES = "serving.properties"
REQUIREMENTS = "requirements.txt"
DEFAULT_MODEL_LOADING_TIMEOUT_S = 1800
POOLING_MODES = ("none", "mean", "cls")

_GENERATIVE = frozenset({Task.TEXT_GENERATION, Task.TEXT2TEXT_GENERATION, Task.SUMMARIZATION})
SUPPORTED_TASKS: dict[Engine, frozenset[Task]] = {
    Engine.PYTHON: frozenset(Task),
    Engine.DEEPSPEED: _GENERATIVE,
    Engine.MPI: _GENERATIVE,
}
# Engines each image family can run (only checked when the image is chosen by
# framework; an explicit spec.image.uri is the user's call).
SUPPORTED_ENGINES: dict[ImageFramework, frozenset[Engine]] = {
    ImageFramework.DJL_DEEPSPEED: frozenset({Engine.PYTHON, Engine.DEEPSPEED, Engine.MPI}),
    ImageFramework.DJL_LMI: frozenset({Engine.PYTHON, Engine.MPI}),
    ImageFramework.DJL_TENSORRTLLM: frozenset({Engine.PYTHON, Engine.MPI}),
    ImageFramework.DJL_NEURONX: frozenset({Engine.PYTHON}),
}

# Where LMI's built-in handler serves instead of the template (the LLM path).
LLM_TASKS = frozenset({Task.TEXT_GENERATION, Task.TEXT2TEXT_GENERATION})
LLM_FRAMEWORKS = frozenset({ImageFramework.DJL_LMI, ImageFramework.DJL_TENSORRTLLM})
# What each LMI container accepts (LMI user guides for vLLM and TensorRT-LLM).
ROLLING_BATCH_BY_FRAMEWORK: dict[ImageFramework, frozenset[RollingBatch]] = {
    ImageFramework.DJL_LMI: frozenset({RollingBatch.AUTO, RollingBatch.VLLM, RollingBatch.DISABLE}),
    ImageFramework.DJL_TENSORRTLLM: frozenset({RollingBatch.AUTO, RollingBatch.TRTLLM, RollingBatch.DISABLE}),
}
QUANTIZE_BY_FRAMEWORK: dict[ImageFramework, frozenset[Quantize]] = {
    ImageFramework.DJL_LMI: frozenset({Quantize.FP8, Quantize.BITSANDBYTES}),
    ImageFramework.DJL_TENSORRTLLM: frozenset({Quantize.FP8, Quantize.AWQ, Quantize.SMOOTHQUANT}),
}
_LLM_FIELDS = {
    "rolling_batch": "spec.model.rollingBatch",
    "max_rolling_batch_size": "spec.model.maxRollingBatchSize",
    "max_model_len": "spec.model.maxModelLen",
    "quantize": "spec.model.quantize",
}


def is_llm(spec: DjlEndpointSpec) -> bool:
    """Whether LMI's built-in handler serves ``spec`` (see the module docstring)."""
    return spec.image.uri is None and spec.image.framework in LLM_FRAMEWORKS and spec.model.task in LLM_TASKS


# Keys a DJL serving.properties may use: letters, digits, '_', '.', '-' (used with fullmatch:
# Python's `$` also matches before a trailing newline).
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
OPTION_PREFIX = "option."
# What a requirements entry may contain: printable ASCII without '#' (pip: a comment),
# '\\' (pip: joins the next line) and '$' (pip expands ${VAR} from the container's environment).
REQUIREMENT_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset("#\\$")
# Index options a policy may allow, each with exactly one http(s) URL argument.
INDEX_OPTIONS = ("--index-url", "--extra-index-url")
_URL_PATTERN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!*'()+,;=:@/-]*)?")
# Template files never shipped: build caches.
_SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def property_field(key: str) -> str:
    return f"spec.model.properties[{key}]"


def base_key(key: str) -> str:
    """How the handler sees a key: DJL hands ``option.X`` to Python as ``X``, and
    lookups there are case-insensitive, so ``Option.Task``, ``option.task`` and
    ``task`` are one setting."""
    lowered = key.lower()
    return lowered[len(OPTION_PREFIX) :] if lowered.startswith(OPTION_PREFIX) else lowered


def unsafe_character(text: str) -> str | None:
    """The first character no serving.properties value or spec string may hold: C0/C1
    controls, DEL, line and paragraph separators, unpaired surrogates."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            return ch
    return None


# serving.properties key -> the first-class spec field that owns it.
_OWNED_KEYS: dict[str, str] = {
    "engine": "spec.model.engine",
    "option.model_id": "spec.model.id",
    "option.task": "spec.model.task",
    "option.revision": "spec.model.revision",
    "option.dtype": "spec.model.dtype",
    "option.tensor_parallel_degree": "spec.model.tensorParallelDegree",
    "option.rolling_batch": "spec.model.rollingBatch",
    "option.max_rolling_batch_size": "spec.model.maxRollingBatchSize",
    "option.max_model_len": "spec.model.maxModelLen",
    "option.quantize": "spec.model.quantize",
}


def _first_class(spec: DjlEndpointSpec) -> dict[str, str]:
    """Properties that come straight from spec fields (only the ones that are set)."""
    model = spec.model
    props = {
        "engine": model.engine.value,
        "option.model_id": model.id,
        "option.task": model.task.value,
    }
    if model.revision is not None:
        props["option.revision"] = model.revision
    if model.dtype is not None:
        props["option.dtype"] = model.dtype
    if model.tensor_parallel_degree is not None:
        props["option.tensor_parallel_degree"] = str(model.tensor_parallel_degree)
    for name in _LLM_FIELDS:
        value = getattr(model, name)
        if value is not None:
            props[f"option.{name}"] = str(value)
    return props


def _defaults(spec: DjlEndpointSpec) -> dict[str, str]:
    """Operator defaults: anything here may be overridden through spec.model.properties."""
    loading = spec.timeouts.container_startup_health_check_seconds or DEFAULT_MODEL_LOADING_TIMEOUT_S
    props = {"option.model_loading_timeout": str(loading)}
    if not is_llm(spec):
        props["option.entryPoint"] = ENTRY_POINT
    if spec.model.task is Task.FEATURE_EXTRACTION:
        props["option.pooling"] = "none"
    return props


def _check_user_properties(user: Mapping[str, str], first_class: Mapping[str, str]) -> None:
    # Keys are compared the way the handler sees them (base_key): "Option.Task" or
    # an un-prefixed "task" would still shadow option.task.
    owned = {base_key(key): key for key in _OWNED_KEYS}
    seen: dict[str, str] = {}
    for key, value in user.items():
        field = property_field(key)
        if not _KEY_PATTERN.fullmatch(key):
            raise SpecError(field, "keys may only use letters, digits, '_', '.' and '-'")
        bad = unsafe_character(value)
        if bad is not None:
            raise SpecError(field, f"values must be a single line without control characters (found {bad!r})")
        if base_key(key) in seen:
            raise SpecError(
                field,
                f"duplicates {property_field(seen[base_key(key)])} (keys are case-insensitive and "
                f"{OPTION_PREFIX!r} is optional to the handler)",
            )
        seen[base_key(key)] = key
        canonical = owned.get(base_key(key))
        if canonical is None:
            continue
        owner = _OWNED_KEYS[canonical]
        if key != canonical:
            raise SpecError(field, f"write it as {canonical!r} (or set {owner})")
        # An unset optional field leaves the property to the user (e.g. LMI's
        # option.tensor_parallel_degree=max, which the integer field cannot say).
        if canonical in first_class and value != first_class[canonical]:
            raise SpecError(
                field,
                f"{value!r} contradicts {owner} ({first_class[canonical]!r}); set it in one place",
            )


def _check_llm(spec: DjlEndpointSpec, props: Mapping[str, str]) -> None:
    """The typed LLM fields: only on the LLM path, and only values the container accepts."""
    model = spec.model
    if not is_llm(spec):
        for name, field in _LLM_FIELDS.items():
            if getattr(model, name) is not None:
                raise SpecError(
                    field,
                    "applies only to LMI's built-in handler: task text-generation or text2text-generation "
                    "(spec.model.task) on spec.image.framework djl-lmi or djl-tensorrtllm, without spec.image.uri",
                )
        return
    framework = spec.image.framework
    if model.rolling_batch is not None and model.rolling_batch not in ROLLING_BATCH_BY_FRAMEWORK[framework]:
        allowed = ", ".join(sorted(r.value for r in ROLLING_BATCH_BY_FRAMEWORK[framework]))
        raise SpecError("spec.model.rollingBatch", f"{framework.value} images accept {allowed}")
    if model.quantize is not None and model.quantize not in QUANTIZE_BY_FRAMEWORK[framework]:
        allowed = ", ".join(sorted(q.value for q in QUANTIZE_BY_FRAMEWORK[framework]))
        raise SpecError("spec.model.quantize", f"{framework.value} images accept {allowed}")
    gpus = instance_types.gpu_count(spec.instance.type)
    if gpus == 0:
        raise SpecError(
            "spec.instance.type",
            f"{spec.instance.type} has no GPU; LMI's {framework.value} containers serve LLMs on GPU instances "
            "(e.g. ml.g5, ml.g6, ml.p4d)",
        )
    tp = props.get("option.tensor_parallel_degree")
    if gpus is not None and tp is not None and tp.isdigit() and int(tp) > gpus:
        raise SpecError(
            "spec.model.tensorParallelDegree"
            if model.tensor_parallel_degree is not None
            else property_field("option.tensor_parallel_degree"),
            f"{tp} is more than the {gpus} GPU(s) of {spec.instance.type} (spec.instance.type); "
            "use at most that, or 'max' in properties",
        )


def _check_matrix(spec: DjlEndpointSpec, props: Mapping[str, str]) -> None:
    model = spec.model
    _check_llm(spec, props)
    if model.task not in SUPPORTED_TASKS[model.engine]:
        served = ", ".join(sorted(t.value for t in SUPPORTED_TASKS[model.engine]))
        raise SpecError(
            "spec.model.engine",
            f"engine {model.engine.value} does not serve task {model.task.value} (spec.model.task); "
            f"it serves: {served}. Use engine Python.",
        )
    tp = props.get("option.tensor_parallel_degree", "1")
    # On the LLM path LMI's engine Python shards itself (vLLM / TensorRT-LLM workers).
    if model.engine is Engine.PYTHON and tp != "1" and not is_llm(spec):
        raise SpecError(
            "spec.model.tensorParallelDegree"
            if model.tensor_parallel_degree is not None
            else property_field("option.tensor_parallel_degree"),
            "engine Python runs one model copy per device and cannot shard; "
            "use engine DeepSpeed or MPI (spec.model.engine) for tensorParallelDegree > 1",
        )
    if spec.image.uri is None and model.engine not in SUPPORTED_ENGINES[spec.image.framework]:
        raise SpecError(
            "spec.model.engine",
            f"engine {model.engine.value} is not available in {spec.image.framework.value} images "
            f"(spec.image.framework)",
        )
    if model.revision is not None and model.id.startswith("s3://"):
        raise SpecError("spec.model.revision", "a revision only applies to Hugging Face model ids, not s3://")

    entry = props.get("option.entryPoint")
    if entry is not None and is_llm(spec) and entry == ENTRY_POINT:
        raise SpecError(
            property_field("option.entryPoint"),
            f"LMI's built-in handler serves {model.task.value} on {spec.image.framework.value}; the artifact "
            f"has no {ENTRY_POINT}. Name a DJL built-in handler (djl_python.<name>) or remove the key",
        )
    if entry is not None and entry != ENTRY_POINT and not re.fullmatch(r"djl_python(\.[a-z_][a-z0-9_]*)+", entry):
        raise SpecError(
            property_field("option.entryPoint"),
            f"must be {ENTRY_POINT} (the operator's handler) or a DJL built-in handler "
            f"(djl_python.<name>), not {entry!r}",
        )
    pooling = props.get("option.pooling")
    if pooling is not None:
        if model.task is not Task.FEATURE_EXTRACTION:
            raise SpecError(
                property_field("option.pooling"),
                f"only applies to task feature-extraction (spec.model.task is {model.task.value})",
            )
        if pooling not in POOLING_MODES:
            raise SpecError(property_field("option.pooling"), f"must be one of {', '.join(POOLING_MODES)}")
    timeout = props["option.model_loading_timeout"]
    if not timeout.isdigit() or int(timeout) < 1:
        raise SpecError(property_field("option.model_loading_timeout"), "must be a positive number of seconds")


def serving_properties(spec: DjlEndpointSpec) -> dict[str, str]:
    """The effective serving.properties of ``spec``: first-class fields, defaults, user overrides.

    Raises :class:`SpecError` naming the offending field.
    """
    first_class = _first_class(spec)
    _check_user_properties(spec.model.properties, first_class)
    props = {**first_class, **_defaults(spec), **spec.model.properties}
    for key, value in props.items():
        # The encoder would keep them on one line; DJL and the handler must still never see them.
        bad = unsafe_character(value)
        if bad is not None:
            raise SpecError(_OWNED_KEYS.get(key, property_field(key)), f"must not contain control characters ({bad!r})")
    _check_matrix(spec, props)
    return props


def format_properties(props: Mapping[str, str]) -> str:
    """serving.properties text: spec-owned keys first (fixed order), then the rest sorted.

    Every key and value, first-class or the user's, goes through the one Java
    ``Properties`` encoder; reading the text back must give exactly ``props``.
    """
    order = [k for k in (*_OWNED_KEYS, "option.entryPoint") if k in props]
    order += sorted(k for k in props if k not in order)
    text = javaprops.dumps(
        ((k, props[k]) for k in order),
        comment="Rendered by djl-operator from a DjlEndpoint spec; edit the resource, not this file.",
    )
    if javaprops.loads(text) != dict(props):  # the encoder's contract, checked on every render
        raise AssertionError("serving.properties does not read back as written")
    return text


class RequirementKind(enum.Enum):
    NAMED = "requirement"  # a PEP 508 requirement by project name, from the configured index
    URL = "URL requirement"  # name @ https://...
    INDEX_OPTION = "index option"  # --index-url / --extra-index-url URL


def requirement_field(index: int) -> str:
    return f"spec.model.requirements[{index}]"


def classify_requirement(index: int, entry: str) -> tuple[RequirementKind, str | None]:
    """What one ``spec.model.requirements`` entry is, and its canonical project name.

    Raises :class:`SpecError` for anything that is not one PEP 508 requirement or
    one index option; whether URL requirements and index options are allowed is
    the operator policy's call (``djl_operator.policy``).
    """
    field = requirement_field(index)
    line = entry.strip()
    if not line:
        raise SpecError(field, "must be one non-empty pip requirement")
    bad = next((ch for ch in entry if ch not in REQUIREMENT_CHARS), None)
    if bad is not None:
        raise SpecError(
            field,
            f"may only hold printable ASCII without '#', '\\' or '$' (found {bad!r}): one PEP 508 requirement",
        )
    if line.startswith("-"):
        option, _, argument = line.partition(" ")
        if option not in INDEX_OPTIONS or not _URL_PATTERN.fullmatch(argument.strip()):
            raise SpecError(
                field,
                f"pip options are not accepted ({option!r}); only {' or '.join(INDEX_OPTIONS)} <http(s) URL>, "
                "where the operator policy allows index options",
            )
        return RequirementKind.INDEX_OPTION, None
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise SpecError(field, f"not a PEP 508 requirement ({reason})") from None
    if requirement.url is not None:
        if not _URL_PATTERN.fullmatch(requirement.url):
            raise SpecError(field, f"URL requirements must use an http(s) URL, not {requirement.url!r}")
        return RequirementKind.URL, canonicalize_name(requirement.name)
    return RequirementKind.NAMED, canonicalize_name(requirement.name)


def _template_project(line: str) -> str | None:
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return None  # a pip option in the template itself: kept as it is


def merge_requirements(template_text: str, user: Iterable[str]) -> str:
    """Template requirements then the user's; the user's line for a project replaces the template's."""
    user_lines = []
    overridden = set()
    for i, raw in enumerate(user):
        _, project = classify_requirement(i, raw)
        if project is not None:
            overridden.add(project)
        user_lines.append(raw.strip())
    kept = []
    for raw in template_text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and _template_project(line) not in overridden:
            kept.append(line)
    merged: list[str] = []
    for line in kept + user_lines:
        if line not in merged:
            merged.append(line)
    return "".join(f"{line}\n" for line in merged)


def default_template() -> Traversable:
    """The model template shipped with the operator (``model_template/`` in the repository)."""
    return importlib.resources.files(TEMPLATE_PACKAGE)


def template_files(template: Traversable) -> dict[str, bytes]:
    """Every file under ``template`` except caches, keyed by POSIX relative path."""
    found: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                if child.name not in _SKIPPED_DIRS:
                    walk(child, f"{prefix}{child.name}/")
            elif not child.name.endswith(_SKIPPED_SUFFIXES):
                found[prefix + child.name] = child.read_bytes()

    walk(template, "")
    if ENTRY_POINT not in found:
        raise FileNotFoundError(f"the model template at {template} has no {ENTRY_POINT}")
    return found


def render_files(spec: DjlEndpointSpec, template: Traversable | None = None) -> dict[str, bytes]:
    """All files of the artifact, sorted by path: the template plus rendered files.

    Raises :class:`SpecError` when the spec cannot make a working artifact.
    """
    files = template_files(template if template is not None else default_template())
    if is_llm(spec):  # LMI's handler serves: a model.py in the folder would become the entry point
        files = {REQUIREMENTS: files[REQUIREMENTS]} if REQUIREMENTS in files else {}
    template_requirements = files.get(REQUIREMENTS, b"").decode("utf-8")
    files[SERVING_PROPERTIES] = format_properties(serving_properties(spec)).encode("utf-8")
    files[REQUIREMENTS] = merge_requirements(template_requirements, spec.model.requirements).encode("utf-8")
    return dict(sorted(files.items()))
