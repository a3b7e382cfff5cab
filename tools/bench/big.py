"""A checkpoint larger than this machine's memory (issue 18), made here tensor by tensor and deleted after,
then converted, packed, verified, pruned and sparsified by Pare, each job's time and peak RSS measured. Not run in CI:
`bash tools/bench/run big [GIB]` (default: 1.25 × physical memory). Needs free disk of about 2.2 × the
model (the model, and one job's output at a time).

The model: a Sequential MLP of Dense layers WIDTH → WIDTH (relu; float32 kernel and bias), as many as the
size asks; each kernel is written in blocks of rows, so the generator holds one block (BLOCK × WIDTH).
Per job: wall seconds, peak RSS (GNU time), the verdict against issue 18's memory target (peak RSS ≤
2 × the largest tensor + 256 MB), or the job's own error line when it fails (a memory budget refusal,
the OOM killer). `cp` is the time reference. Results: tools/bench/results/big.md.

Usage: python big.py PARE_BINARY [GIB] [WORKDIR]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from benchlib import legacy_weights_group, publish

pare = sys.argv[1]
WIDTH = 8192           # one kernel: 8192² float32 = 256 MiB
BLOCK = 512            # rows written at once: 16 MiB


def physical_gib():
    with open("/proc/meminfo") as f:
        kb = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
    return kb / 2**20


def make(path, gib):
    """Writes the model tensor by tensor; returns (layers, bytes of the largest tensor)."""
    kernel = WIDTH * WIDTH * 4
    layers = max(2, int(gib * 2**30 // (kernel + WIDTH * 4)))
    names = [f"dense_{i}" for i in range(layers)]
    config = {"class_name": "Sequential", "config": {"name": "big", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, WIDTH], "dtype": "float32",
                                                "name": "input_layer"}}] + [
        {"class_name": "Dense", "config": {"name": n, "units": WIDTH, "use_bias": True, "dtype": "float32",
                                           "activation": "relu" if i < layers - 1 else "linear"}}
        for i, n in enumerate(names)]}}
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        g = legacy_weights_group(f, config, names)
        for n in names:
            lg = g.create_group(n)
            lg.attrs["weight_names"] = np.array([f"{n}/kernel".encode(), f"{n}/bias".encode()])
            k = lg.create_dataset(f"{n}/kernel", shape=(WIDTH, WIDTH), dtype="float32")
            for r in range(0, WIDTH, BLOCK):
                k[r:r + BLOCK] = rng.standard_normal((BLOCK, WIDTH), dtype=np.float32) / np.sqrt(WIDTH)
            lg.create_dataset(f"{n}/bias", data=np.zeros(WIDTH, dtype=np.float32))
    return layers, kernel


def run(cmd):
    """(seconds, peak RSS MB, None) or (seconds, peak RSS MB, the error's last line)."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "BENCH %M"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    lines = p.stderr.decode(errors="replace").splitlines()
    rss = [int(line.split()[1]) for line in lines if line.startswith("BENCH ")]
    errors = [line for line in lines if not line.startswith("BENCH ") and not line.startswith("Command ")]
    failed = None if p.returncode == 0 else (errors[-1] if errors else f"exit status {p.returncode}")
    return seconds, (rss[-1] / 1024 if rss else 0), failed


def main():
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else round(1.25 * physical_gib(), 1)
    work = sys.argv[3] if len(sys.argv) > 3 else None
    d = tempfile.mkdtemp(dir=work)
    rows = []
    try:
        model = os.path.join(d, "big.h5")
        start = time.perf_counter()
        layers, largest = make(model, gib)
        made = time.perf_counter() - start
        size = os.path.getsize(model)
        budget = 2 * largest / 1e6 + 256
        out = os.path.join(d, "out")
        jobs = [("cp (reference)", ["cp", model, out + ".h5"]),
                ("convert", [pare, "convert", model, out + ".h5"]),
                ("pack", [pare, "pack", model, out + ".pare"]),
                ("verify (16 random inputs)", [pare, "verify", model, model]),
                ("prune --ratio 0.5", [pare, "prune", model, out + ".h5", "--ratio", "0.5", "--random", "4"]),
                ("sparsify --sparsity 0.5 --global", [pare, "sparsify", model, out + ".h5", "--sparsity", "0.5",
                                                      "--global", "--random", "4"])]
        for name, cmd in jobs:
            for leftover in (out + ".h5", out + ".pare"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            print(f"big: {name}", file=sys.stderr)
            rows.append((name,) + run(cmd))
    finally:
        shutil.rmtree(d)
    memory = physical_gib()
    lines = ["| job | seconds | vs cp | peak RSS MB | target (2 × largest + 256 MB) | result |",
             "|---|---|---|---|---|---|"]
    cp_seconds = rows[0][1]
    for name, seconds, rss, failed in rows:
        verdict = "n/a" if name.startswith("cp") else f"{budget:.0f} MB: {'met' if rss <= budget else 'not met'}"
        lines.append(f"| {name} | {seconds:.1f} | {seconds / cp_seconds:.2f}× | {rss:.0f} | {verdict} "
                     f"| {'ok' if failed is None else 'failed: ' + failed[:160]} |")
    note = (f"{size / 2**30:.1f} GiB legacy .h5 ({layers} Dense layers {WIDTH} → {WIDTH}, largest tensor "
            f"{largest / 2**20:.0f} MiB) on a machine with {memory:.1f} GiB of memory; made in {made:.0f} s")
    publish("big", "\n".join(lines), note)


if __name__ == "__main__":
    main()
