"""Model artifacts: open a ``model.tar.gz`` or a folder and read its serving.properties."""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from djl_operator import javaprops

PROPERTIES_FILE = "serving.properties"
# DJL Serving's defaults when serving.properties does not say.
DEFAULT_BATCH_SIZE = 1
DEFAULT_MAX_BATCH_DELAY_MS = 100
DEFAULT_PREDICT_TIMEOUT_S = 120


class ArtifactError(ValueError):
    """The artifact cannot be served; the message names the file or key."""


def parse_properties(text: str) -> dict[str, str]:
    """serving.properties exactly as DJL reads it (``java.util.Properties.load``)."""
    try:
        return javaprops.loads(text)
    except javaprops.PropertiesSyntaxError as exc:
        raise ArtifactError(f"{PROPERTIES_FILE}: {exc}") from None


def _integer(properties: dict[str, str], key: str, default: int, minimum: int) -> int:
    value = properties.get(key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ArtifactError(f"{PROPERTIES_FILE}: {key} must be an integer >= {minimum}, got {value!r}")
    return number


@dataclass(frozen=True)
class Artifact:
    """An unpacked artifact: its folder and its serving.properties."""

    root: Path
    properties: dict[str, str]

    @property
    def entry_point(self) -> str:
        return self.properties.get("option.entryPoint", "model.py")

    @property
    def is_lmi(self) -> bool:
        """Whether LMI's built-in handler serves this artifact (the operator's LLM path): an LLM
        task with no entry point of ours (none set, or a ``djl_python.`` built-in) and no model.py."""
        entry = self.properties.get("option.entryPoint")
        builtin = entry is None or entry.startswith("djl_python.")
        task = self.properties.get("option.task")
        return (
            builtin and task in ("text-generation", "text2text-generation") and not (self.root / "model.py").is_file()
        )

    @property
    def handler_name(self) -> str:
        return self.properties.get("option.handler", "handle")

    @property
    def batch_size(self) -> int:
        return _integer(self.properties, "batch_size", DEFAULT_BATCH_SIZE, 1)

    @property
    def max_batch_delay_ms(self) -> int:
        return _integer(self.properties, "max_batch_delay", DEFAULT_MAX_BATCH_DELAY_MS, 0)

    @property
    def predict_timeout_s(self) -> int:
        return _integer(self.properties, "option.predict_timeout", DEFAULT_PREDICT_TIMEOUT_S, 1)

    def handler_properties(self) -> dict[str, str]:
        """What DJL hands ``handle`` at load: ``option.X`` as ``X``, plus ``model_dir``.

        Top-level keys (engine, batch_size, ...) stay with the server: a
        ``batch_size`` property would make the load Input look like a batch."""
        handed = {key[len("option.") :]: value for key, value in self.properties.items() if key.startswith("option.")}
        handed["model_dir"] = str(self.root)
        return handed

    def validate(self) -> None:
        """Fail early, naming the key or file, instead of at the first request."""
        _ = self.batch_size, self.max_batch_delay_ms, self.predict_timeout_s
        engine = self.properties.get("engine", "Python")
        if engine not in ("Python", "DeepSpeed", "MPI"):
            raise ArtifactError(f"{PROPERTIES_FILE}: engine {engine!r} is not a Python engine this server can run")
        if not self.is_lmi and not (self.root / self.entry_point).is_file():
            raise ArtifactError(f"option.entryPoint {self.entry_point!r} not found in {self.root}")


def _find_root(folder: Path) -> Path:
    """serving.properties at the top, or inside the single top-level folder of a tarball."""
    if (folder / PROPERTIES_FILE).is_file():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir()]
    if len(children) == 1 and (children[0] / PROPERTIES_FILE).is_file():
        return children[0]
    raise ArtifactError(f"no {PROPERTIES_FILE} in {folder}")


def open_artifact(path: Path, scratch: Path) -> Artifact:
    """Read the artifact at ``path``; a tarball is unpacked under ``scratch``."""
    if path.is_dir():
        root = _find_root(path)
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            # The "data" filter refuses absolute paths, links out of the tree and devices.
            archive.extractall(scratch, filter="data")
        root = _find_root(scratch)
    elif path.exists():
        raise ArtifactError(f"{path} is neither a folder nor a tar archive")
    else:
        raise ArtifactError(f"{path} does not exist")
    artifact = Artifact(root.resolve(), parse_properties((root / PROPERTIES_FILE).read_text(encoding="utf-8")))
    artifact.validate()
    return artifact
