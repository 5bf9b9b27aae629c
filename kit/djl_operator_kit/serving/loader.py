"""Import an artifact's handler the way DJL's Python engine does: by file path,
with the artifact folder on ``sys.path`` so its siblings (``djl_compat``) import."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


class HandlerError(RuntimeError):
    """The entry point cannot be imported or has no handler function."""


@dataclass(frozen=True)
class LoadedHandler:
    module: ModuleType
    handle: Callable[[Any], Any]
    input_cls: type  # the Input class the handler expects


def _input_class(module: ModuleType) -> type:
    """The module's own ``Input`` (what it imported), else djl_python's, else djl_compat's."""
    own = getattr(module, "Input", None)
    if isinstance(own, type):
        return own
    for name in ("djl_python", "djl_compat"):
        try:
            cls: type = importlib.import_module(name).Input
            return cls
        except (ImportError, AttributeError):
            continue
    raise HandlerError(f"{module.__file__}: no djl_python or djl_compat Input class to build requests with")


def load_handler(root: Path, entry_point: str = "model.py", handler_name: str = "handle") -> LoadedHandler:
    """Import ``root/entry_point`` as a fresh module (each artifact gets its own
    module, hence its own loaded model) and return its handler."""
    path = (root / entry_point).resolve()
    if not path.is_file():
        raise HandlerError(f"entry point {path} does not exist")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # A unique name per file: two artifacts' model.py must not share a module.
    name = f"djl_artifact_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise HandlerError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    handle = getattr(module, handler_name, None)
    if not callable(handle):
        raise HandlerError(f"{path} has no function {handler_name!r}")
    return LoadedHandler(module, handle, _input_class(module))
