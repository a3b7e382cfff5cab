"""Class 5: names and values read from files and NPYs used as if trusted.

Layer names with '/', '..', newlines, separators of Pare's own selection syntax, odd Unicode; labels
with NaN, 3.5, 2**64-1, negatives, infinities, wrong counts and shapes. Every command that takes a
layer name or labels is run on them: a crash (forced unwrap, trapping conversion) is the failure;
an error or a correct result both pass, except where the label value is plainly invalid.
"""
import numpy as np

import legacy_model
from common import run

NAMES = {
    "slash": "a/b",
    "dotdot": "../../etc",
    "newline": "conv\nline",
    "tab-cr": "conv\t\r",
    "equals-comma": "c=2,d=3",
    "percent": "%s%n%x",
    "space": " ",
    "unicode": "\u00fcn\u00efc\u00f8d\u00e9/\u540d\u524d",
    "rtl-override": "abc\u202edef",
    "zero-width": "a\u200bb",
    "emoji": "\U0001f600",
    "long": "n" * 5000,
    "model-weights": "model_weights",
    "backslash-quote": "a\\\"b'",
}


def generate_names(g):
    for label, name in NAMES.items():
        layers = legacy_model.tiny_layers(names=(name, "conv_b", "gap", "out"))
        f = f"c5_name_{label}.h5"
        try:
            legacy_model.write(g.path(f), layers, (8, 8, 1))
        except (ValueError, KeyError, OSError) as e:  # HDF5 cannot hold this name as a group
            print(f"make_hostile: skipped {f}: {e}")
            continue
        sel = name + "=2"
        runs = [run(["{pare}", "convert", f, "o.h5"], "ok-or-error", outputs=["o.h5"]),
                # a name the selection syntax cannot carry may be refused naming the option instead
                run(["{pare}", "prune", f, "o.h5", "--keep", sel, "--input", "tx.npy"], "ok-or-error",
                    outputs=["o.h5"], names=[f, "--keep"]),
                run(["{pare}", "sensitivity", f, "--layer", name, "--input", "tx.npy", "--labels", "ty.npy",
                     "--steps", "0,1", "--csv", "s.csv"], "ok-or-error", outputs=["s.csv"], names=[f, "--layer"]),
                run(["{pare}", "sparsify", f, "o.h5", "--sparsity", "0.5", "--layers", name], "ok-or-error",
                    outputs=["o.h5"], names=[f, "--layers"])]
        g.add(f"c5-name-{label}", 5, f"a layer named {name[:40]!r}", [f, "tx.npy", "ty.npy"], runs)


LABELS = {
    # label -> (array, expectation): plainly invalid values must be refused, not truncated or trapped
    "nan": (np.array([0, 1, np.nan] + [0] * 13, "<f8"), "error"),
    "three-and-a-half": (np.array([0, 1, 3.5] + [0] * 13, "<f8"), "error"),
    "uint64-max": (np.array([0, 1, 2 ** 64 - 1] + [0] * 13, "<u8"), "error"),
    "int64-min": (np.array([0, 1, -2 ** 63] + [0] * 13, "<i8"), "error"),
    "negative": (np.array([0, -1] + [0] * 14, "<i8"), "error"),
    "float-inf": (np.array([0, np.inf] + [0] * 14, "<f8"), "error"),
    "float-minus-inf": (np.array([0, -np.inf] + [0] * 14, "<f8"), "error"),
    "float-1e300": (np.array([0, 1e300] + [0] * 14, "<f8"), "error"),
    "out-of-range": (np.array([0, 3] + [0] * 14, "<i8"), "error"),
    "int64-max": (np.array([0, 2 ** 63 - 1] + [0] * 14, "<i8"), "error"),
    "count-short": (np.zeros(15, "<i8"), "error"),
    "count-long": (np.zeros(17, "<i8"), "error"),
    "empty": (np.zeros(0, "<i8"), "error"),
    "onehot-wrong-width": (np.eye(5, dtype="<f4")[np.zeros(16, int)], "error"),
    "onehot-nan": (np.where(np.arange(48).reshape(16, 3) == 4, np.nan, 0).astype("<f4"), "error"),
    "onehot-all-zero-row": (np.zeros((16, 3), "<f4"), "ok-or-error"),
    "onehot-two-hot": (np.ones((16, 3), "<f4") * 0.5, "ok-or-error"),
    "rank-3": (np.zeros((16, 3, 1), "<f4"), "error"),
    "column": (np.zeros((16, 1), "<i8"), "ok-or-error"),
    "bool": (np.zeros(16, bool), "ok-or-error"),
    "float16": (np.zeros(16, "<f2"), "ok-or-error"),
    "big-endian-int": (np.zeros(16, ">i8"), "ok-or-error"),
    "int8-negative": (np.full(16, -5, "i1"), "error"),
    "float-minus-zero": (np.full(16, -0.0, "<f4"), "ok-or-error"),
}


def generate_labels(g):
    for label, (values, expect) in LABELS.items():
        f = f"c5_labels_{label}.npy"
        np.save(g.path(f), values)
        runs = [run(["{pare}", "eval", "tiny.h5", "--input", "tx.npy", "--labels", f, "--batch", "5"], expect,
                    names=[f]),
                run(["{pare}", "sensitivity", "tiny.h5", "--layer", "conv_a", "--input", "tx.npy", "--labels", f,
                     "--steps", "0,2"], expect, names=[f])]
        g.add(f"c5-labels-{label}", 5, f"labels: {label}", [f, "tiny.h5", "tx.npy"], runs)


INPUTS = {
    "nan-inf": (np.where(np.arange(1024).reshape(16, 8, 8, 1) % 7 == 0, np.nan,
                         np.where(np.arange(1024).reshape(16, 8, 8, 1) % 11 == 0, np.inf, 0.5)).astype("<f4"),
                "ok-or-error"),
    "float64-huge": (np.full((16, 8, 8, 1), 1e300, "<f8"), "ok-or-error"),
    "int64": (np.zeros((16, 8, 8, 1), "<i8"), "ok-or-error"),
    "wrong-shape": (np.zeros((16, 9, 8, 1), "<f4"), "error"),
    "rank-2": (np.zeros((16, 64), "<f4"), "error"),
}


def generate_inputs(g):
    for label, (values, expect) in INPUTS.items():
        f = f"c5_input_{label}.npy"
        np.save(g.path(f), values)
        runs = [run(["{pare}", "run", "tiny.h5", "--input", f, "--output", "y.npy"], expect, names=[f],
                    outputs=["y.npy"]),
                run(["{pare}", "prune", "tiny.h5", "o.h5", "--ratio", "0.5", "--criterion", "mean-activation",
                     "--calibration", f], expect, names=[f], outputs=["o.h5"]),
                run(["{pare}", "mask", "tiny.h5", "o.h5", "--ratio", "0.5", "--criterion", "apoz",
                     "--calibration", f], expect, names=[f], outputs=["o.h5"])]
        if expect == "error":  # verify exits 1 without an error on NaN outputs: only refusals count here
            runs.append(run(["{pare}", "verify", "tiny.h5", "tiny.h5", "--input", f], expect, names=[f]))
        g.add(f"c5-input-{label}", 5, f"--input / --calibration: {label}", [f, "tiny.h5"], runs)


def generate(g):
    generate_names(g)
    generate_labels(g)
    generate_inputs(g)
