"""pack / unpack against cp, and .pare size against gzip -6 and the bitmask formula, at several
densities, on a synthetic 64 MiB weights-only Keras file (16 float32 tensors of 1 Mi elements).
Every figure is measured in this run. Usage: python pack.py PARE_BINARY
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from benchlib import back_memory

pare = sys.argv[1]
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = 3


def make(path, density, rng):
    with h5py.File(path, "w") as f:
        names = [f"dense_{i}" for i in range(16)]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "3.15.1"
        for n in names:
            g = f.create_group(n)
            g.attrs["weight_names"] = np.array([f"{n}/kernel".encode()])
            w = rng.standard_normal((1024, 1024)).astype("float32")
            w[rng.random_sample(w.shape) >= density] = 0
            g.create_dataset(f"{n}/kernel", data=w)
    return 16 * 1024 * 1024


def timed(cmd):
    times = []
    for _ in range(RUNS):
        back_memory(256 << 20)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    rng = np.random.RandomState(0)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for density in [0.1, 0.25, 0.5, 0.75, 1.0]:
            h5, pk, back, copy = (os.path.join(d, x) for x in ("m.h5", "m.pare", "back.h5", "copy.h5"))
            n = make(h5, density, rng)
            cp = timed(["cp", h5, copy])
            pack = timed([pare, "pack", h5, pk])
            unpack = timed([pare, "unpack", pk, back])
            gz = len(subprocess.run(["gzip", "-6", "-c", h5], check=True, capture_output=True).stdout)
            nnz = sum(int(np.count_nonzero(f[k][()])) for f in [h5py.File(h5)] for k in [f"dense_{i}/dense_{i}/kernel" for i in range(16)])
            formula = min(n / 8 + 4 * nnz, 4 * n)
            size = os.path.getsize(pk)
            rows.append((density, pack / cp, unpack / cp, size / gz, size / formula, os.path.getsize(h5), size, gz))
    lines = ["| density | pack / cp | unpack / cp | .pare / gzip -6 | .pare / formula | .h5 bytes | .pare bytes | gzip bytes |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]:.2f}× | {r[2]:.2f}× | {r[3]:.3f} | {r[4]:.4f} | {r[5]} | {r[6]} | {r[7]} |" for r in rows]
    text = "\n".join(lines)
    print(text)
    print(f"64 MiB of float32 kernels per file; median of {RUNS} runs, 256 MiB of memory touched before each; "
          "time ratios > 1 mean slower than cp")
    os.makedirs(os.path.join(top, "tools/bench/results"), exist_ok=True)
    open(os.path.join(top, "tools/bench/results/pack.md"), "w").write(text + "\n")


if __name__ == "__main__":
    main()
