#!/usr/bin/env python3
"""Writes a few hundred hostile files for Pare and OUTDIR/manifest.json saying how to run each.

    python make_hostile.py OUTDIR [--pare PATH]

numpy, h5py and the standard library only. Pare itself (--pare, else $PARE_BIN, else the debug
build) packs a few bases that the .pare cases then mutate. The classes follow issue 12; each
module's docstring says what its class attacks. tools/hostile/check.py runs the manifest.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import base  # noqa: E402 (after the path set-up)
import cases_alloc  # noqa: E402
import cases_archive  # noqa: E402
import cases_budgets  # noqa: E402
import cases_config  # noqa: E402
import cases_counts  # noqa: E402
import cases_keras1  # noqa: E402
import cases_loops  # noqa: E402
import cases_many  # noqa: E402
import cases_names  # noqa: E402
import cases_outside  # noqa: E402
import cases_pare  # noqa: E402
import cases_paths  # noqa: E402
import cases_sequence  # noqa: E402
import cases_transformer  # noqa: E402
import cases_upgrade  # noqa: E402
import cases_usage  # noqa: E402
import cases_weights  # noqa: E402
from common import TOP, Generator  # noqa: E402

MODULES = [cases_outside, cases_counts, cases_paths, cases_alloc, cases_names, cases_loops, cases_many,
           cases_config, cases_usage, cases_weights, cases_pare, cases_archive, cases_sequence,
           cases_transformer, cases_upgrade, cases_keras1, cases_budgets]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--pare", default=os.environ.get("PARE_BIN", os.path.join(TOP, ".build/debug/pare")))
    args = parser.parse_args()
    if not os.access(args.pare, os.X_OK):
        sys.exit(f"make_hostile: {args.pare} is not an executable (build Pare or pass --pare)")
    g = Generator(args.outdir, os.path.abspath(args.pare))
    start = time.time()
    base.write_base(g)
    for module in MODULES:
        module.generate(g)
    g.write_manifest()
    runs = sum(len(c["runs"]) for c in g.cases)
    print(f"make_hostile: {len(g.cases)} cases, {runs} runs in {g.out} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
