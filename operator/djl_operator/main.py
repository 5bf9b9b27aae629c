"""``djl-operator run``: the operator process (kopf) with our handlers."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djl-operator run", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", help="watch only these namespaces")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster (default)")
    parser.add_argument("--standalone", action="store_true",
                        help="no peering/leader election (single replica or local runs)")
    parser.add_argument("--peering", default="djl-operator",
                        help="kopf peering object used to keep two replicas from working at once")
    parser.add_argument("--liveness", default=None,
                        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    import kopf

    from djl_operator import handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    kopf.configure(verbose=args.verbose)
    kopf.run(
        standalone=args.standalone,
        namespaces=args.namespaces or [],
        clusterwide=not args.namespaces,
        peering_name=None if args.standalone else args.peering,
        liveness_endpoint=args.liveness,
    )
    return 0
