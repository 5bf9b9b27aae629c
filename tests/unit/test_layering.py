"""The runtime (``djl_operator``, what the image ships) never imports the local kit
(``djl_operator_kit``): imports run one way only, kit -> runtime."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME_DIRS = [REPO / "operator" / "djl_operator", REPO / "model_template"]
KIT = "djl_operator_kit"


def imported_modules(source: str) -> set[str]:
    """Every module an import statement names, plus string arguments to import_module()."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # importlib.import_module("x") and __import__("x"): lazy imports are imports too.
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    # Module names in string tables (a dispatch table such as cli.SUBCOMMANDS) count as well.
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(f"{KIT}."):
            found.add(node.value)
    return found


def test_the_finder_sees_every_kind_of_import() -> None:
    source = (
        "import djl_operator_kit.emulator\n"
        "from djl_operator_kit import demo\n"
        "importlib.import_module('djl_operator_kit.serving')\n"
        "TABLE = {'serve': ('djl_operator_kit.serving.server', 'help')}\n"
        "from . import sibling\n"
    )
    assert imported_modules(source) == {
        "djl_operator_kit.emulator",
        "djl_operator_kit",
        "djl_operator_kit.serving",
        "djl_operator_kit.serving.server",
    }


def test_the_runtime_never_imports_the_kit() -> None:
    files = [path for folder in RUNTIME_DIRS for path in sorted(folder.rglob("*.py"))]
    assert len(files) > 20, "the walk found too few runtime modules: did the package move?"
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in imported_modules(path.read_text()) if m.split(".")[0] == KIT)
        for path in files
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_kit_is_not_inside_the_runtime_package() -> None:
    runtime = REPO / "operator" / "djl_operator"
    for moved in ("emulator", "serving", "controlplane.py", "demo.py", "processes.py"):
        assert not (runtime / moved).exists(), f"{moved} belongs to the kit (kit/djl_operator_kit)"


def test_the_distributions_depend_one_way() -> None:
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())
    kit = tomllib.loads((REPO / "kit" / "pyproject.toml").read_text())
    runtime_requirements = [*runtime["project"]["dependencies"]]
    runtime_requirements += [r for extra in runtime["project"].get("optional-dependencies", {}).values() for r in extra]
    assert not [r for r in runtime_requirements if "moto" in r or "kit" in r], runtime_requirements
    assert not [p for p in runtime["tool"]["setuptools"]["packages"] if p.startswith(KIT)]
    assert f"{runtime['project']['name']}=={runtime['project']['version']}" in kit["project"]["dependencies"]
    # The image gets the CRD from the package, not from a source tree it does not have.
    assert "crds/*.yaml" in runtime["tool"]["setuptools"]["package-data"]["djl_operator"]
