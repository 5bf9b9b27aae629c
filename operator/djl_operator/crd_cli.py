"""``djl-operator crd``: print the DjlEndpoint CustomResourceDefinition.

By default the CRD shipped with the package (what `make crd` generated with the locked
botocore); ``--generate`` builds it again from the typed models and the installed botocore.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djl_operator import crd


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djl-operator crd", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--generate", action="store_true", help="generate the CRD from the typed models")
    output.add_argument("--reference", action="store_true", help="print the spec reference as a Markdown table")
    output.add_argument(
        "--json-schema",
        action="store_true",
        help=f"print the JSON schema kubeconform reads (committed as {crd.JSON_SCHEMA_PATH})",
    )
    args = parser.parse_args(argv)
    if args.reference:
        text = crd.reference_markdown()
    elif args.json_schema:
        text = crd.render_json_schema()
    elif args.generate:
        text = crd.render_yaml()
    else:
        text = crd.shipped_yaml()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
