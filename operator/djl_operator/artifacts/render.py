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
    project the template also lists replaces the template's line.

Engine/task matrix (``SUPPORTED_TASKS``):

* ``Python`` serves every task the template implements, on one device per
  model copy (``tensorParallelDegree`` > 1 is refused: the Python engine
  starts one process per worker and does not shard).
* ``DeepSpeed`` and ``MPI`` shard one model over several GPUs; that only pays
  off for large generative models, so they serve text-generation,
  text2text-generation and summarization. ``DeepSpeed`` exists only in the
  ``djl-deepspeed`` images (LMI 0.28+ dropped it); ``MPI`` is not offered by the
  Neuron images.

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

import importlib.resources
import re
import unicodedata
from collections.abc import Iterable, Mapping
from importlib.abc import Traversable

from djl_operator.api import DjlEndpointSpec, Engine, ImageFramework, Task
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

# Keys a DJL serving.properties may use: letters, digits, '_', '.', '-'.
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# pip requirement project name (PEP 508), normalised per PEP 503 for comparison.
_PROJECT_PATTERN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
# Template files never shipped: build caches.
_SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def property_field(key: str) -> str:
    return f"spec.model.properties[{key}]"


# serving.properties key -> the first-class spec field that owns it.
_OWNED_KEYS: dict[str, str] = {
    "engine": "spec.model.engine",
    "option.model_id": "spec.model.id",
    "option.task": "spec.model.task",
    "option.revision": "spec.model.revision",
    "option.dtype": "spec.model.dtype",
    "option.tensor_parallel_degree": "spec.model.tensorParallelDegree",
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
    return props


def _defaults(spec: DjlEndpointSpec) -> dict[str, str]:
    """Operator defaults: anything here may be overridden through spec.model.properties."""
    loading = spec.timeouts.container_startup_health_check_seconds or DEFAULT_MODEL_LOADING_TIMEOUT_S
    props = {
        "option.entryPoint": ENTRY_POINT,
        "option.model_loading_timeout": str(loading),
    }
    if spec.model.task is Task.FEATURE_EXTRACTION:
        props["option.pooling"] = "none"
    return props


def _check_user_properties(user: Mapping[str, str], first_class: Mapping[str, str]) -> None:
    # DJL's Python side looks properties up case-insensitively, so "Option.Task"
    # would still shadow option.task: compare keys case-insensitively.
    owned = {key.lower(): key for key in _OWNED_KEYS}
    seen: dict[str, str] = {}
    for key, value in user.items():
        field = property_field(key)
        if not _KEY_PATTERN.match(key):
            raise SpecError(field, "keys may only use letters, digits, '_', '.' and '-'")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise SpecError(field, "values must be a single line without control characters")
        if key.lower() in seen:
            raise SpecError(field, f"duplicates {property_field(seen[key.lower()])} (keys are case-insensitive)")
        seen[key.lower()] = key
        canonical = owned.get(key.lower())
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


def _check_matrix(spec: DjlEndpointSpec, props: Mapping[str, str]) -> None:
    model = spec.model
    if model.task not in SUPPORTED_TASKS[model.engine]:
        served = ", ".join(sorted(t.value for t in SUPPORTED_TASKS[model.engine]))
        raise SpecError(
            "spec.model.engine",
            f"engine {model.engine.value} does not serve task {model.task.value} (spec.model.task); "
            f"it serves: {served}. Use engine Python.",
        )
    tp = props.get("option.tensor_parallel_degree", "1")
    if model.engine is Engine.PYTHON and tp != "1":
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

    entry = props["option.entryPoint"]
    if entry != ENTRY_POINT and not re.match(r"^djl_python\.[a-z_][a-z0-9_]*$", entry):
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
    _check_matrix(spec, props)
    return props


def _escape(text: str, *, is_key: bool) -> str:
    """Java ``Properties`` escaping (DJL parses serving.properties in Java)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == " " and (is_key or i == 0):
            out.append("\\ ")
        elif ch in "=:#!" and (is_key or i == 0):
            out.append("\\" + ch)
        elif ord(ch) > 0x7E:
            # \uXXXX (UTF-16 units) reads the same whether the file is parsed as Latin-1 or UTF-8.
            units = ch.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(units[j : j + 2], 'big'):04x}" for j in range(0, len(units), 2))
        else:
            out.append(ch)
    return "".join(out)


def format_properties(props: Mapping[str, str]) -> str:
    """serving.properties text: spec-owned keys first (fixed order), then the rest sorted."""
    order = [k for k in (*_OWNED_KEYS, "option.entryPoint") if k in props]
    order += sorted(k for k in props if k not in order)
    lines = ["# Rendered by djl-operator from a DjlEndpoint spec; edit the resource, not this file."]
    lines += [f"{_escape(k, is_key=True)}={_escape(props[k], is_key=False)}" for k in order]
    return "\n".join(lines) + "\n"


def _project(requirement: str) -> str | None:
    if requirement.startswith("-"):
        return None  # pip options (--extra-index-url ...) are kept as they are
    match = _PROJECT_PATTERN.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def merge_requirements(template_text: str, user: Iterable[str]) -> str:
    """Template requirements then the user's; the user's line for a project replaces the template's."""
    user_lines = []
    for i, raw in enumerate(user):
        line = raw.strip()
        if not line or "\n" in raw or "\r" in raw:
            raise SpecError(f"spec.model.requirements[{i}]", "must be one non-empty pip requirement line")
        if line.startswith("#"):
            raise SpecError(f"spec.model.requirements[{i}]", "must be a requirement, not a comment")
        user_lines.append(line)
    overridden = {p for p in map(_project, user_lines) if p}
    kept = []
    for raw in template_text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and _project(line) not in overridden:
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
    template_requirements = files.get(REQUIREMENTS, b"").decode("utf-8")
    files[SERVING_PROPERTIES] = format_properties(serving_properties(spec)).encode("utf-8")
    files[REQUIREMENTS] = merge_requirements(template_requirements, spec.model.requirements).encode("utf-8")
    return dict(sorted(files.items()))
