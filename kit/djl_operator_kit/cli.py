"""``djl-operator-kit``: the local tooling around the operator (never in its image)."""

from __future__ import annotations

import sys

from djl_operator.cli import dispatch

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "controlplane": ("djl_operator_kit.controlplane", "start a local kube-apiserver + etcd on loopback"),
    "emulator": ("djl_operator_kit.emulator.server", "start the local SageMaker + S3 emulator"),
    "serve": ("djl_operator_kit.serving.server", "serve a model artifact with the SageMaker container contract"),
    "demo": ("djl_operator_kit.demo", "the local embedded default: control plane, emulator, operator, sample"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("djl-operator-kit", SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
