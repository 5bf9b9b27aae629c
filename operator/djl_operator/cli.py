"""``djl-operator``: one command, several jobs.

Each subcommand lives in the module that owns the job and exposes
``main(argv) -> int``; this module only dispatches, importing lazily so
``djl-operator crd`` does not pay for boto3 or kopf.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("djl_operator.main", "run the operator (kopf) against the current kubeconfig"),
    "crd": ("djl_operator.crd_cli", "print the DjlEndpoint CustomResourceDefinition"),
    "controlplane": ("djl_operator.controlplane", "start a local kube-apiserver + etcd on loopback"),
    "emulator": ("djl_operator.emulator.server", "start the local SageMaker + S3 emulator"),
    "render": ("djl_operator.artifacts.cli", "render artifact files and SageMaker requests offline"),
    "package": ("djl_operator.artifacts.cli", "build model.tar.gz (and optionally upload it)"),
    "serve": ("djl_operator.serving.server", "serve a model artifact with the SageMaker container contract"),
    "invoke": ("djl_operator.invoke", "call InvokeEndpoint on a DjlEndpoint's endpoint"),
    "demo": ("djl_operator.demo", "the local embedded default: control plane, emulator, operator, sample"),
}


def _usage() -> str:
    lines = ["usage: djl-operator <command> [options]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"djl-operator: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    # Modules serving two subcommands (render/package) take the name first.
    entry = getattr(module, f"{name}_main", None) or module.main
    result: int = entry(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
