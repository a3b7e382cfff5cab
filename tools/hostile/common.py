"""What every case module shares: the output directory, the shared input files, and the manifest.

A case is files (copied into a fresh scratch directory for each run), setup steps the runner performs
there (FIFOs, device nodes, links: things a directory of files cannot carry), and runs. A run is an
argv with placeholders ({pare}: the binary, {dir}: the scratch directory, absolute; everything else
is relative to it, the working directory) and what is expected of it:

  error        exit 1 or 2, exactly one non-empty stderr line, naming one of `names`; no new file
  ok           exit 0; only the files listed in `outputs` appear
  ok-or-error  exit 0 (as ok) or 1/2 (as error), never a signal
  usage        exit 2, the first stderr line contains `has`; no new file
  refused      exit 1 or 2, the first stderr line contains `has`; no new file

Every run is also held to: no signal, the time limit, inputs unchanged, no secret in any output.
"""
import json
import os
import secrets
import shutil
import subprocess

import numpy as np

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(TOP, "fixtures")


def run(argv, expect="error", names=None, outputs=(), has=None, lacks=("crashed",), timeout=None,
        max_seconds=None, may_change=(), keeps_or_mentions=None):
    """One command of a case. `lacks`: substrings the stderr must not contain (a valid HDF5 file
    reported as "libhdf5 crashed" hides the real problem); `may_change`: pre-existing paths the run
    may legitimately replace; `keeps_or_mentions` {"output", "name"}: on exit 0 the output holds an
    object of that name, or stdout/stderr names it (a note for what was dropped)."""
    r = {"argv": list(argv), "expect": expect}
    for key, value in (("names", names), ("outputs", list(outputs)), ("has", has), ("lacks", list(lacks)),
                       ("timeout", timeout), ("max_seconds", max_seconds), ("may_change", list(may_change)),
                       ("keeps_or_mentions", keeps_or_mentions)):
        if value not in (None, []):
            r[key] = value
    return r


class Generator:
    def __init__(self, outdir, pare):
        self.out = os.path.abspath(outdir)
        self.pare = pare
        self.cases = []
        self.ids = set()
        self.rng = np.random.default_rng(12)
        os.makedirs(self.out, exist_ok=True)
        self.marker = secrets.token_bytes(24)
        self.text_marker = "PARE-SECRET-" + secrets.token_hex(16)
        self.canary = "PARE-CANARY-" + secrets.token_hex(16)

    def path(self, name):
        return os.path.join(self.out, name)

    def fixture(self, rel):
        return os.path.join(FIXTURES, rel)

    def copy_fixture(self, rel, name):
        shutil.copyfile(self.fixture(rel), self.path(name))
        return name

    def add(self, cid, cls, attack, files, runs, setup=(), slow=False):
        """Adds a case; `files` are names in the output directory, the first one the case's subject."""
        assert cid not in self.ids, cid
        for f in files:
            assert os.path.lexists(self.path(f)), f"{cid}: {f} was not written"
        self.ids.add(cid)
        for r in runs:
            if r["expect"] in ("error", "ok-or-error") and "names" not in r:
                r["names"] = [files[0]] if files else []
        case = {"id": cid, "class": str(cls), "attack": attack, "files": list(files), "setup": list(setup),
                "runs": list(runs)}
        if slow:
            case["slow"] = True
        self.cases.append(case)

    def pack(self, src, dst, *options):
        """Packs with Pare itself (the generator then mutates what a real writer wrote)."""
        subprocess.run([self.pare, "pack", self.path(src), self.path(dst), *options], check=True,
                       stdout=subprocess.DEVNULL)
        return dst

    def write_manifest(self):
        manifest = {"secrets": {"marker_hex": self.marker.hex(), "text_marker": self.text_marker,
                                "canary": self.canary, "files": ["secret.bin", "secret.h5", "secret.txt"]},
                    "cases": self.cases}
        with open(self.path("manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
