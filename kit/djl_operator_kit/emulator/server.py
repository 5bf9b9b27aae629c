"""``djl-operator-kit emulator``: run the local SageMaker + S3 emulator until interrupted.

Prints ``KEY=VALUE`` lines (the environment a client needs) and then
``# djl emulator ready``; SIGINT/SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from djl_operator_kit.serving.forkserver import ForkServer

from .app import Emulator
from .client import READY_LINE
from .config import EmulatorConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="djl-operator-kit emulator", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="SageMaker + runtime + admin port (0: any free)")
    p.add_argument("--s3-port", type=int, default=0, help="moto S3 port (0: any free)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--account-id", default="123456789012", help="12-digit account used in ARNs")
    p.add_argument("--create-delay", type=float, default=5.0, help="seconds an endpoint stays Creating")
    p.add_argument("--update-delay", type=float, default=5.0, help="seconds an endpoint stays Updating")
    p.add_argument("--delete-delay", type=float, default=2.0, help="seconds an endpoint stays Deleting")
    p.add_argument("--rollback-delay", type=float, default=2.0, help="seconds an endpoint stays RollingBack")
    p.add_argument("--env-file", help="also write the KEY=VALUE lines to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = EmulatorConfig(
            region=args.region,
            account_id=args.account_id,
            create_delay=args.create_delay,
            update_delay=args.update_delay,
            delete_delay=args.delete_delay,
            rollback_delay=args.rollback_delay,
            port=args.port,
            s3_port=args.s3_port,
        )
    except ValueError as exc:
        print(f"djl-operator-kit emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    emulator = Emulator(config)
    try:
        emulator.start()
    except OSError as exc:
        print(f"djl-operator-kit emulator: cannot bind: {exc}", file=sys.stderr)
        return 1
    try:
        lines = [f"{k}={v}" for k, v in emulator.env.items()]
        if args.env_file:
            with open(args.env_file, "w") as fh:
                fh.write("\n".join(lines) + "\n")
        print("\n".join(lines), flush=True)
        print(f"{READY_LINE} on {emulator.url} (S3 {emulator.s3_url}); Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        emulator.stop()
        ForkServer.close_shared()
    return 0


if __name__ == "__main__":
    sys.exit(main())
