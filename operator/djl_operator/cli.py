"""``djl-operator``: one command, several jobs.

Each subcommand lives in the module that owns the job and exposes
``main(argv) -> int``; this module only dispatches, importing lazily so
``djl-operator crd`` does not pay for boto3 or kopf. Only the operator's own
commands are here (what the image installs); the local kit (emulator, model
server, control plane, demo) has its own command, ``djl-operator-kit``.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("djl_operator.main", "run the operator (kopf) against the current kubeconfig"),
    "crd": ("djl_operator.crd_cli", "print the DjlEndpoint CustomResourceDefinition"),
    "render": ("djl_operator.artifacts.cli", "render artifact files and SageMaker requests offline"),
    "package": ("djl_operator.artifacts.cli", "build model.tar.gz (and optionally upload it)"),
    "invoke": ("djl_operator.invoke", "call InvokeEndpoint on a DjlEndpoint's endpoint"),
}

# The kit's commands, named here only to point whoever types them at the right tool.
KIT_COMMANDS = ("controlplane", "emulator", "serve", "demo")


def usage(prog: str, subcommands: dict[str, tuple[str, str]]) -> str:
    lines = [f"usage: {prog} <command> [options]", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in subcommands.items()]
    return "\n".join(lines)


def dispatch(prog: str, subcommands: dict[str, tuple[str, str]], argv: list[str] | None, hint: str = "") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage(prog, subcommands))
        return 0
    name, rest = args[0], args[1:]
    if name not in subcommands:
        print(f"{prog}: unknown command {name!r}{hint}\n\n{usage(prog, subcommands)}", file=sys.stderr)
        return 2
    module = importlib.import_module(subcommands[name][0])
    # Modules serving two subcommands (render/package) take the name first.
    entry = getattr(module, f"{name}_main", None) or module.main
    result: int = entry(rest)
    return result


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hint = ""
    if args and args[0] in KIT_COMMANDS:
        hint = f" (a local kit command: djl-operator-kit {args[0]})"
    return dispatch("djl-operator", SUBCOMMANDS, args, hint)


if __name__ == "__main__":
    sys.exit(main())
