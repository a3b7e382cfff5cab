"""Pare's interpreter against Keras predict on the same model and the same 256 inputs, both warm,
measured in one run. Prints a table and writes it as Markdown (tools/bench/results/interpreter.md).

Usage: python interpreter.py PARE_BINARY [KERAS_BACKEND]   (run through tools/bench/run)
"""
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

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPEATS = 7


def keras_seconds(path, x, batch):
    model = keras.models.load_model(path, compile=False)
    model.predict(x, batch_size=batch, verbose=0)           # warm-up: tracing, allocation
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        model.predict(x, batch_size=batch, verbose=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pare_seconds(path, npy, batch):
    run = subprocess.run([pare, "run", path, "--input", npy, "--batch", str(batch), "--repeat-count", str(REPEATS + 1)],
                         capture_output=True, text=True, check=True)
    return float(re.search(r"median of the rest ([0-9.e-]+) s", run.stderr).group(1))


def main():
    x = np.load(os.path.join(top, "fixtures/data/mnist_x.npy"))
    x256 = np.concatenate([x, x])
    rows = []
    with tempfile.TemporaryDirectory() as d:
        npy = os.path.join(d, "x256.npy")
        np.save(npy, x256)
        for model in ["mnist_cnn", "residual"]:
            path = os.path.join(top, "fixtures", model, "keras3.h5")
            for batch in [256, 1]:
                k = keras_seconds(path, x256, batch)
                p = pare_seconds(path, npy, batch)
                rows.append((model, batch, k, p, k / p))
    header = f"| model | batch | Keras predict ({keras.backend.backend()}) s | pare run s | speed-up (Keras / Pare) |"
    lines = [header, "|---|---|---|---|---|"]
    lines += [f"| {m} | {b} | {k:.4f} | {p:.4f} | {r:.2f}× |" for m, b, k, p, r in rows]
    text = "\n".join(lines)
    print(text)
    print("256 MNIST digits per run; both warm; median of", REPEATS, "runs; ratio > 1 means Pare is faster")
    os.makedirs(os.path.join(top, "tools/bench/results"), exist_ok=True)
    with open(os.path.join(top, "tools/bench/results/interpreter.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
