"""Large-checkpoint benchmark: a ~1 GiB synthetic Keras legacy .h5 (a Sequential of 100 Dense
layers 1638 -> 1638: 200 float32 tensors, the odd layers' kernel and bias 50% zeros), made here and
deleted after. Every figure is a ratio against a reference measured in the same run on the same file:

- convert: Pare vs h5py reading and rewriting every dataset and attribute (the same work in
  Python), and vs `cp` (the floor) and `cp` + `sync` (the floor for a copy that reaches the disk);
- pack / unpack vs `cp`;
- prune end to end (plan, mask, fold, prune, verify by inference, write) vs Pare's own convert, on
  this model and on the MNIST-report CNN fixture;
- peak RSS of each process (wait4's ru_maxrss) against the largest tensor.

Usage: python convert.py PARE_BINARY [WORKDIR]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from benchlib import back_memory, legacy_weights_group

pare = sys.argv[1]
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNS = 3
PAIRS = 5
LAYERS, WIDTH = 100, 1638


def make(path):
    """The synthetic model, written with h5py in Keras's legacy layout (Keras 3 model_config)."""
    rng = np.random.default_rng(0)
    names = [f"dense_{i}" for i in range(LAYERS)]
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, WIDTH], "dtype": "float32", "sparse": False, "name": "input_layer"}, "registered_name": None}]
    for i, n in enumerate(names):
        layers.append({"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                       "config": {"name": n, "trainable": True, "dtype": "float32", "units": WIDTH,
                                  "activation": "relu" if i < LAYERS - 1 else "linear", "use_bias": True}})
    config = {"class_name": "Sequential", "config": {"name": "big", "trainable": True, "layers": layers}}
    with h5py.File(path, "w") as f:
        g = legacy_weights_group(f, config, names)
        for i, n in enumerate(names):
            lg = g.create_group(n)
            lg.attrs["weight_names"] = np.array([f"big/{n}/kernel".encode(), f"big/{n}/bias".encode()])
            w = (rng.standard_normal((WIDTH, WIDTH), dtype=np.float32) / np.sqrt(WIDTH)).astype("float32")
            b = rng.standard_normal(WIDTH, dtype=np.float32) * 0.01
            if i % 2:
                w[rng.random((WIDTH, WIDTH)) < 0.5] = 0
                b[rng.random(WIDTH) < 0.5] = 0
            lg.create_dataset(f"big/{n}/kernel", data=w)
            lg.create_dataset(f"big/{n}/bias", data=b)
    return WIDTH * WIDTH * 4


H5PY_REWRITE = """
import sys, h5py
src, dst = sys.argv[1], sys.argv[2]
with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
    for k, v in a.attrs.items(): b.attrs[k] = v
    def copy(name, obj):
        if isinstance(obj, h5py.Group):
            g = b.require_group(name)
        else:
            g = b.create_dataset(name, data=obj[()])
        for k, v in obj.attrs.items(): g.attrs[k] = v
    a.visititems(copy)
"""


def run(cmd):
    """Seconds, user and system CPU seconds, peak RSS (MB) and page faults of one process. GNU time
    measures them: a child forked from this Python process would count the parent's pages until it execs."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "BENCH %U %S %M %F %R"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    err = p.stderr.decode()
    if p.returncode != 0:
        raise SystemExit(f"{cmd} failed: {err}")
    fields = [line.split()[1:] for line in err.splitlines() if line.startswith("BENCH ")][-1]
    user, system, rss_kb, major, minor = float(fields[0]), float(fields[1]), int(fields[2]), int(fields[3]), int(fields[4])
    return {"seconds": seconds, "user": user, "sys": system, "rss": rss_kb / 1024, "faults": major + minor}


def summary(results):
    """(median seconds, max RSS MB, median user s, median system s, median page faults)."""
    med = lambda k: statistics.median(r[k] for r in results)
    return med("seconds"), max(r["rss"] for r in results), med("user"), med("sys"), med("faults")


def warm(path):
    """Reads `path` into the page cache. This machine's page cache does not keep a file for long (a
    1 GiB input read back after ten minutes came from the disk at 50 MB/s), so each run starts from a
    warm input and a flushed disk, or one run's figure would be the disk's."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


WARM = []
# Memory made host-backed before each run (benchlib.back_memory): the output's page cache and the heap.
BACKED = 5 << 29


def timed(cmd, before=None):
    results = []
    for _ in range(RUNS):
        if before:
            before()
        for path in WARM:
            warm(path)
        subprocess.run(["sync"])
        back_memory(BACKED)
        results.append(run(cmd))
    return summary(results)


def paired(a, b, before_a, before_b, pairs=PAIRS):
    """Alternating runs of two commands (a b, b a, a b, ...), the disk flushed before each run, so that
    neither is charged with the other's dirty pages (writeback of the previous run's gigabyte) or a
    colder cache: each one's summary, and the median of the per-pair time ratios a / b."""
    runs_a, runs_b, ratios = [], [], []
    for i in range(pairs):
        order = [(a, before_a, runs_a), (b, before_b, runs_b)]
        for cmd, before, into in (order if i % 2 == 0 else order[::-1]):
            before()
            for path in WARM:
                warm(path)
            subprocess.run(["sync"])
            back_memory(BACKED)
            into.append(run(cmd))
        ratios.append(runs_a[-1]["seconds"] / runs_b[-1]["seconds"])
    return summary(runs_a), summary(runs_b), statistics.median(ratios)


def main():
    work = sys.argv[2] if len(sys.argv) > 2 else None
    d = tempfile.mkdtemp(dir=work)
    try:
        big = os.path.join(d, "big.h5")
        largest = make(big)
        WARM.append(big)
        size = os.path.getsize(big)
        out = {k: os.path.join(d, k) for k in ["cp.h5", "h5py.h5", "pare.h5", "big.pare", "back.h5", "pruned.h5", "cnn.h5", "cnn_pruned.h5"]}
        rm = lambda k: (lambda: os.path.exists(out[k]) and os.unlink(out[k]))
        cp = timed(["cp", big, out["cp.h5"]], rm("cp.h5"))
        cp_sync = timed(["sh", "-c", f"cp '{big}' '{out['cp.h5']}' && sync '{out['cp.h5']}'"], rm("cp.h5"))
        conv, h5, conv_ratio = paired([pare, "convert", big, out["pare.h5"]],
                                      [sys.executable, "-c", H5PY_REWRITE, big, out["h5py.h5"]],
                                      rm("pare.h5"), rm("h5py.h5"))
        pack = timed([pare, "pack", big, out["big.pare"]], rm("big.pare"))
        WARM.append(out["big.pare"])
        unpack = timed([pare, "unpack", out["big.pare"], out["back.h5"]], rm("back.h5"))
        prune = timed([pare, "prune", big, out["pruned.h5"], "--ratio", "0.5", "--random", "8"], rm("pruned.h5"))
        cnn = os.path.join(top, "fixtures/mnist_cnn/keras3.h5")
        cnn_conv = timed([pare, "convert", cnn, out["cnn.h5"]], rm("cnn.h5"))
        cnn_prune = timed([pare, "prune", cnn, out["cnn_pruned.h5"], "--keep", "conv2d=22,conv2d_1=38"], rm("cnn_pruned.h5"))
        pare_size = os.path.getsize(out["big.pare"])
    finally:
        shutil.rmtree(d)
    mb = largest / 1e6
    budget = 2 * mb + 64
    rows = [
        ("convert 1 GiB", conv, [("cp", cp), ("cp + sync", cp_sync)], True),
        ("pack 1 GiB", pack, [("cp", cp), ("cp + sync", cp_sync)], True),
        ("unpack 1 GiB", unpack, [("cp", cp), ("cp + sync", cp_sync)], False),
        ("prune 1 GiB (--ratio 0.5)", prune, [("Pare convert", conv)], False),
        ("prune MNIST CNN (22/38)", cnn_prune, [("Pare convert", cnn_conv)], False),
    ]
    lines = ["| job | seconds (user + system CPU) | vs reference (time ratio) | peak RSS MB | page faults "
             "| RSS budget (2 × largest tensor + 64 MB) |", "|---|---|---|---|---|---|"]
    for name, (sec, rss, user, system, faults), refs, budgeted in rows:
        ratios = "; ".join(f"{sec / r[0]:.2f}× {label} ({r[0]:.2f} s)" for label, r in refs)
        if name.startswith("convert"):
            ratios = f"{conv_ratio:.2f}× h5py rewrite (median of {PAIRS} alternating pairs); " + ratios
        verdict = f"{budget:.0f} MB: {'within' if rss <= budget else 'OVER'}" if budgeted else "n/a"
        lines.append(f"| {name} | {sec:.2f} ({user:.2f} + {system:.2f}) | {ratios} | {rss:.0f} | {faults:,.0f} "
                     f"| {verdict} |")
    for name, (sec, rss, user, system, faults) in [("h5py rewrite (reference)", h5), ("cp (reference)", cp)]:
        lines.append(f"| {name} | {sec:.2f} ({user:.2f} + {system:.2f}) | | {rss:.0f} | {faults:,.0f} | |")
    text = "\n".join(lines)
    note = (f"{size / 2**30:.2f} GiB legacy .h5, {2 * LAYERS} float32 tensors, largest {mb:.1f} MB; .pare {pare_size / 2**30:.2f} GiB; "
            f"median of {RUNS} runs (convert and h5py: {PAIRS} alternating pairs), `sync` before each run, files in the "
            "page cache, 2.5 GiB of memory touched just before (the VM returns idle memory to its host); "
            "time ratio > 1 means slower than the reference; h5py "
            f"{h5py.__version__} with HDF5 {h5py.version.hdf5_version}")
    print(text)
    print(note)
    os.makedirs(os.path.join(top, "tools/bench/results"), exist_ok=True)
    open(os.path.join(top, "tools/bench/results/convert.md"), "w").write(text + "\n\n" + note + "\n")


if __name__ == "__main__":
    main()
