"""``djl-operator crd``: print the generated CustomResourceDefinition."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from djl_operator import crd


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="djl-operator crd", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--reference", action="store_true", help="print the spec reference as a Markdown table")
    args = parser.parse_args(argv)
    text = crd.reference_markdown() if args.reference else crd.render_yaml()
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
