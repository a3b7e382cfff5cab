#!/usr/bin/env python3
"""Writes fuzz-hdf5 recipes for a fixture: its model_config, its layers and weight shapes (read
with `pare inspect --json`), once with no flags and once per flag, into OUTDIR.
Usage: make_hdf5_seeds.py PARE FIXTURE.h5 CONFIG.json OUTDIR NAME"""
import json
import os
import subprocess
import sys

pare, fixture, config_path, outdir, name = sys.argv[1:6]
report = json.loads(subprocess.run([pare, "inspect", "--json", fixture], check=True, capture_output=True).stdout)
with open(config_path, encoding="utf-8") as f:
    config = f.read().strip()
prefixes = {"float16": "h:", "float64": "d:", "int32": "i:"}
lines = []
for layer in report["layers"]:
    if "/" in layer["path"]:
        continue
    specs = [f"{w['name']}={prefixes.get(w['dtype'], '')}{','.join(map(str, w['shape']))}"
             for w in report["weights"] if w["layer"] == layer["path"]]
    lines.append("|".join([layer["path"]] + specs))
body = (config + "\n\n" + "\n".join(lines)).encode()
for flag in [0, 1, 2, 4, 8, 16, 32, 64, 128]:
    with open(os.path.join(outdir, f"{name}_{flag}.recipe"), "wb") as f:
        f.write(bytes([flag]) + body)
