"""Pare's interpreter against Keras on the same model and the same 256 inputs, all warm, measured in one
run: Keras's `predict` (its per-call overhead flatters Pare at small batches), Keras's in-process call
`model(x)` on the whole batch of 256 (the fair comparison), and the floor: 2 × MACs × examples ÷ the
GFLOP/s OpenBLAS's `cblas_sgemm` reaches on this machine (tools/bench/sgemm_floor.c, compiled here
against the OpenBLAS Pare links). Targets (issue 18): Pare faster than `model(x)`, within 2× of the floor.
Prints a table and writes it as Markdown (tools/bench/results/interpreter.md).

Usage: python interpreter.py PARE_BINARY [KERAS_BACKEND]   (run through tools/bench/run)
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

pare = sys.argv[1]
os.environ["KERAS_BACKEND"] = sys.argv[2] if len(sys.argv) > 2 else "tensorflow"
import keras  # noqa: E402
import numpy as np  # noqa: E402
from benchlib import publish  # noqa: E402

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPEATS = 7
# Pare's runs are short (tens of milliseconds) and vary with the machine's neighbours: more of them make a
# steadier median. Keras's calls get the same count for `model(x)`.
CALL_REPEATS = 31


def keras_seconds(path, x, batch):
    model = keras.models.load_model(path, compile=False)
    model.predict(x, batch_size=batch, verbose=0)           # warm-up: tracing, allocation
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        model.predict(x, batch_size=batch, verbose=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def keras_call_seconds(path, x):
    """`model(x)` on the whole batch, in process, the result brought back as numpy (so it is computed)."""
    model = keras.models.load_model(path, compile=False)
    keras.ops.convert_to_numpy(model(x, training=False))     # warm-up
    times = []
    for _ in range(CALL_REPEATS):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(model(x, training=False))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm_gflops(d):
    """The rate cblas_sgemm reaches here (square 1024 matrices), from sgemm_floor.c built against OpenBLAS."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "openblas"], capture_output=True, text=True,
                           check=True).stdout.split()
    exe = os.path.join(d, "sgemm_floor")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(top, "tools/bench/sgemm_floor.c")] + flags, check=True)
    return exe


def sgemm_rate(exe):
    return float(subprocess.run([exe, "1024"], capture_output=True, text=True, check=True).stdout)


def macs(path):
    run = subprocess.run([pare, "inspect", path, "--json"], capture_output=True, text=True, check=True)
    return json.loads(run.stdout)["totalMACs"]


def pare_seconds(path, npy, batch):
    # Keras's threads may still spin for a moment after its last call: let them go to sleep first.
    time.sleep(1)
    repeats = CALL_REPEATS if batch > 1 else REPEATS
    run = subprocess.run([pare, "run", path, "--input", npy, "--batch", str(batch), "--repeat-count", str(repeats + 1)],
                         capture_output=True, text=True, check=True)
    return float(re.search(r"median of the rest ([0-9.e-]+) s", run.stderr).group(1))


def main():
    x = np.load(os.path.join(top, "fixtures/data/mnist_x.npy"))
    x256 = np.concatenate([x, x])
    rows = []
    with tempfile.TemporaryDirectory() as d:
        exe = sgemm_gflops(d)
        npy = os.path.join(d, "x256.npy")
        np.save(npy, x256)
        rates = []
        for model in ["mnist_cnn", "residual"]:
            path = os.path.join(top, "fixtures", model, "keras3.h5")
            call = keras_call_seconds(path, x256)
            for batch in [256, 1]:
                k = keras_seconds(path, x256, batch)
                # The machine's neighbours slow some seconds more than others: the rate cblas_sgemm reaches
                # is measured just before and just after Pare's runs, and the floor takes their mean, so
                # that both sides of the ratio see the same machine.
                before = sgemm_rate(exe)
                p = pare_seconds(path, npy, batch)
                after = sgemm_rate(exe)
                gflops = (before + after) / 2
                rates += [before, after]
                rows.append((model, batch, k, call if batch == 256 else None, p,
                             2 * macs(path) * len(x256) / (gflops * 1e9)))
    header = (f"| model | batch | Keras predict ({keras.backend.backend()}) s | Keras model(x) s | pare run s "
              "| floor s | Keras predict / Pare | Keras model(x) / Pare (target > 1) | Pare / floor (target ≤ 2) |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for m, b, k, call, p, floor in rows:
        fair = f"{call / p:.2f}× ({'met' if call / p > 1 else 'not met'})" if call else "n/a"
        over = p / floor
        lines.append(f"| {m} | {b} | {k:.4f} | {f'{call:.4f}' if call else 'n/a'} | {p:.4f} | {floor:.4f} "
                     f"| {k / p:.2f}× | {fair} | {over:.1f}× ({'met' if over <= 2 else 'not met'}) |")
    text = "\n".join(lines)
    note = (f"256 MNIST digits per run; all warm; median of {CALL_REPEATS} runs at batch 256 (`pare run` and "
            f"`model(x)`), of {REPEATS} otherwise; cblas_sgemm reaches "
            f"{min(rates):.1f}–{max(rates):.1f} GFLOP/s here (1024², OpenBLAS's default threads; measured around each "
            "row's Pare runs, the floor from the mean of the two); the floor counts 2 × MACs per example and nothing else "
            "(no bias, activation, pooling or memory traffic)")
    publish("interpreter", text, note)


if __name__ == "__main__":
    main()
