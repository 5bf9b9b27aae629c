"""``djl-operator run``: the operator process (kopf) with our handlers."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djl-operator run", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", help="watch only these namespaces")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster (default)")
    parser.add_argument(
        "--standalone", action="store_true", help="no peering/leader election (single replica or local runs)"
    )
    parser.add_argument(
        "--peering", default="djl-operator", help="kopf peering object used to keep two replicas from working at once"
    )
    parser.add_argument(
        "--liveness", default=None, help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; replicas must differ (the default is random, so they do)",
    )
    parser.add_argument(
        "--events-queue-url",
        default=None,
        help="SQS queue an EventBridge rule forwards SageMaker Endpoint State Change events to: status follows "
        "them at once and polling becomes the slow safety net (DJL_OPERATOR_EVENTS_QUEUE_URL)",
    )
    parser.add_argument(
        "--shard-index",
        type=int,
        default=None,
        help="this replica reconciles only the resources of this shard (0..count-1; DJL_OPERATOR_SHARD_INDEX)",
    )
    parser.add_argument(
        "--shard-count",
        type=int,
        default=None,
        help="replicas sharing the resources by a stable hash of their uid (DJL_OPERATOR_SHARD_COUNT); "
        "each shard peers on its own --peering name plus -shard-<index>",
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    # Flags win over the environment; the handlers read their settings from it once, when imported.
    for name, value in (
        ("DJL_OPERATOR_EVENTS_QUEUE_URL", args.events_queue_url),
        ("DJL_OPERATOR_SHARD_INDEX", args.shard_index),
        ("DJL_OPERATOR_SHARD_COUNT", args.shard_count),
    ):
        if value is not None:
            os.environ[name] = str(value)

    import kopf

    from djl_operator import handlers, logs, metrics, policy

    logs.configure(args.log_format, args.verbose)
    # What the operator will refuse, in the log of every start (the file is read once).
    logging.getLogger("djl_operator").info("operator policy: %s", json.dumps(policy.describe(handlers.SETTINGS.policy)))
    if args.metrics_port is not None:
        metrics.serve(args.metrics_port)
    settings = handlers.SETTINGS
    peering = args.peering
    if settings.shard_count > 1:
        # kopf's peering lets one replica of a peering work at a time: each shard needs its own.
        peering = f"{args.peering}-shard-{settings.shard_index}"
        logging.getLogger("djl_operator").info(
            "shard %d of %d (peering %s)", settings.shard_index, settings.shard_count, peering
        )
    kopf.run(
        standalone=args.standalone,
        namespaces=args.namespaces or [],
        clusterwide=not args.namespaces,
        peering_name=None if args.standalone else peering,
        # kopf freezes every replica whose priority equals another's, so each gets its own.
        priority=args.priority if args.priority is not None else random.randrange(1, 2**31),
        liveness_endpoint=args.liveness,
    )
    return 0
