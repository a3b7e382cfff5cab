"""Class "budget": the options issue 17 added, and the calibration data they fit on.

prune's budgets (--target-params / --target-macs / --target-size N or P%), --allocation, --round-to,
--reconstruct and --recalibrate-bn, and sparsify's --criterion wanda and --reconstruct, given wrong
values, wrong combinations, budgets the model cannot reach, and --calibration files that are not
the model's inputs: missing, not NPY, the wrong shape or dtype, no examples, NaN or infinite values,
a header declaring far more than the body holds, a directory, a FIFO, the output itself.

Every one must be refused before anything is written: "usage" runs exit 2, "refused" runs exit 1
or 2, the first stderr line containing `has` (the option's name, or a value it cannot be stated
without); "error" runs print exactly one line naming the file. A negative number read as the next
option ("Missing value") is the wrong message. A few runs whose option Pare may also accept with a
word saying it had no effect are "ok-or-error" with keeps_or_mentions; a few legitimate variants
are "ok" (the check is then only that they work).
"""
import numpy as np

import cases_alloc
from common import run

PRUNE = ["{pare}", "prune", "tiny.h5", "o.h5"]
SPARSIFY = ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "0.5"]
LACKS = ("Missing value", "crashed")

# Budget values every --target-* option must refuse (the three share one grammar: N or P% in (0, 100]).
BAD_AMOUNTS = [
    ("negative", "-5"), ("negative-percent", "-5%"), ("negative-zero", "-0"), ("zero", "0"), ("zero-percent", "0%"),
    ("nan", "nan"), ("inf", "inf"), ("nan-percent", "nan%"), ("inf-percent", "inf%"), ("word", "abc"),
    ("over-100-percent", "150%"), ("empty", ""), ("percent-only", "%"), ("double-percent", "50%%"),
    ("fraction", "5.5"), ("exponent", "1e3"), ("hex", "0x10"), ("space", " 100"),
    ("overflow", "99999999999999999999999"), ("int64-max-plus-1", "9223372036854775808"),
]


def option_cases(g):
    """Wrong values and combinations of the new options: the model is read only where it must be."""
    cases = []
    for option in ("--target-params", "--target-macs", "--target-size"):
        for label, value in BAD_AMOUNTS:
            cases.append((f"{option[2:]}-{label}", PRUNE + [option, value], "usage", option))
    cases += [
        ("target-size-suffix", PRUNE + ["--target-size", "10K"], "usage", "--target-size"),
        # Budgets the model cannot reach: refused by the option's name, whatever the allocation.
        ("unreachable-params", PRUNE + ["--target-params", "10"], "refused", "--target-params"),
        ("unreachable-params-percent", PRUNE + ["--target-params", "1%"], "refused", "--target-params"),
        ("unreachable-params-tiny-percent", PRUNE + ["--target-params", "0.001%"], "refused", "--target-params"),
        ("unreachable-params-sensitivity", PRUNE + ["--target-params", "10", "--allocation", "sensitivity"],
         "refused", "--target-params"),
        ("unreachable-macs", PRUNE + ["--target-macs", "10"], "refused", "--target-macs"),
        ("unreachable-size-below-headers", PRUNE + ["--target-size", "10"], "refused", "--target-size"),
        ("unreachable-size-percent", PRUNE + ["--target-size", "1%"], "refused", "--target-size"),
        # Half of tiny.h5 is less than its headers and configuration: a percentage is of the file's size.
        ("unreachable-size-half-of-tiny", PRUNE + ["--target-size", "50%"], "refused", "--target-size"),
        ("unreachable-cnn-params", ["{pare}", "prune", "cnn.h5", "o.h5", "--target-params", "10"], "refused",
         "--target-params"),
        ("unreachable-cnn-macs", ["{pare}", "prune", "cnn.h5", "o.h5", "--target-macs", "1000"], "refused",
         "--target-macs"),
        # One budget, and it decides every layer's share.
        ("two-budgets", PRUNE + ["--target-params", "50%", "--target-macs", "50%"], "usage", "--target-macs"),
        ("params-and-size", PRUNE + ["--target-params", "100", "--target-size", "50%"], "usage", "--target-size"),
        ("three-budgets", PRUNE + ["--target-params", "50%", "--target-macs", "50%", "--target-size", "50%"],
         "usage", "--target-size"),
        ("budget-and-ratio", PRUNE + ["--target-params", "50%", "--ratio", "0.5"], "usage", "--ratio"),
        ("budget-and-layer-ratio", PRUNE + ["--target-macs", "50%", "--ratio", "conv_a=0.5"], "usage", "--ratio"),
        ("budget-and-keep", PRUNE + ["--target-params", "50%", "--keep", "conv_a=2"], "usage", "--keep"),
        ("budget-and-threshold", PRUNE + ["--target-size", "50%", "--threshold", "0.1"], "usage", "--threshold"),
        # --round-to: a positive width step, only where a budget or a global ratio narrows layers.
        ("round-to-zero", PRUNE + ["--target-params", "50%", "--round-to", "0"], "usage", "--round-to"),
        ("round-to-negative", PRUNE + ["--target-params", "50%", "--round-to", "-1"], "usage", "--round-to"),
        ("round-to-word", PRUNE + ["--target-params", "50%", "--round-to", "abc"], "usage", "--round-to"),
        ("round-to-empty", PRUNE + ["--target-params", "50%", "--round-to", ""], "usage", "--round-to"),
        ("round-to-fraction", PRUNE + ["--target-params", "50%", "--round-to", "2.5"], "usage", "--round-to"),
        ("round-to-overflow", PRUNE + ["--target-params", "50%", "--round-to", "99999999999999999999"], "usage",
         "--round-to"),
        ("round-to-alone", PRUNE + ["--round-to", "2"], "usage", "--round-to"),
        ("round-to-with-keep", PRUNE + ["--keep", "conv_a=2", "--round-to", "2"], "usage", "--round-to"),
        ("round-to-with-layer-ratio", PRUNE + ["--ratio", "conv_a=0.5", "--round-to", "2"], "usage", "--round-to"),
        # Wider than every prunable layer (4 channels): no layer can narrow, so the budget is unreachable.
        ("round-to-wider-than-layers", PRUNE + ["--target-params", "50%", "--round-to", "8"], "refused",
         "--target-params"),
        ("round-to-wider-than-cnn", ["{pare}", "prune", "cnn.h5", "o.h5", "--target-macs", "50%", "--round-to",
                                     "300"], "refused", "--target-macs"),
        # --allocation: one of two words, checked even when no budget uses it.
        ("allocation-bogus", PRUNE + ["--target-params", "50%", "--allocation", "bogus"], "usage", "--allocation"),
        ("allocation-empty", PRUNE + ["--target-params", "50%", "--allocation", ""], "usage", "--allocation"),
        ("allocation-capitalized", PRUNE + ["--target-macs", "50%", "--allocation", "Sensitivity"], "usage",
         "--allocation"),
        ("allocation-bogus-without-budget", PRUNE + ["--ratio", "0.5", "--allocation", "bogus"], "usage",
         "--allocation"),
        # --reconstruct and --recalibrate-bn fit on --calibration data (not on the verification --input).
        ("reconstruct-no-calibration", PRUNE + ["--ratio", "0.5", "--reconstruct"], "usage", "--reconstruct"),
        ("recalibrate-bn-no-calibration", PRUNE + ["--ratio", "0.5", "--recalibrate-bn"], "usage",
         "--recalibrate-bn"),
        ("reconstruct-input-not-calibration", PRUNE + ["--ratio", "0.5", "--reconstruct", "--input",
                                                       "bud_cal.npy"], "usage", "--reconstruct"),
        ("recalibrate-bn-budget-no-calibration", PRUNE + ["--target-params", "50%", "--recalibrate-bn"], "usage",
         "--recalibrate-bn"),
        ("reconstruct-and-recalibrate-bn", PRUNE + ["--ratio", "0.5", "--reconstruct", "--recalibrate-bn",
                                                    "--calibration", "bud_cal.npy"], "usage", "--reconstruct"),
        ("reconstruct-nothing-selected", PRUNE + ["--reconstruct", "--calibration", "bud_cal.npy"], "usage", None),
        ("reconstruct-calibration-empty-path", PRUNE + ["--ratio", "0.5", "--reconstruct", "--calibration", ""],
         "refused", "--calibration"),
        ("budget-data-criterion-no-calibration", PRUNE + ["--target-params", "50%", "--criterion", "apoz"], "usage",
         "--calibration"),
        ("reconstruct-two-calibrations", PRUNE + ["--ratio", "0.5", "--reconstruct", "--calibration", "bud_cal.npy",
                                                  "--calibration", "bud_cal.npy"], "refused", "input"),
        # sparsify: the criterion is a word; wanda and --reconstruct need --calibration.
        ("sparsify-wanda-no-calibration", SPARSIFY + ["--criterion", "wanda"], "usage", "--calibration"),
        ("sparsify-reconstruct-no-calibration", SPARSIFY + ["--reconstruct"], "usage", "--calibration"),
        ("sparsify-wanda-global-no-calibration", SPARSIFY + ["--global", "--criterion", "wanda"], "usage",
         "--calibration"),
        ("sparsify-criterion-bogus", SPARSIFY + ["--criterion", "bogus"], "usage", "--criterion"),
        ("sparsify-criterion-empty", SPARSIFY + ["--criterion", ""], "usage", "--criterion"),
        ("sparsify-criterion-capitalized", SPARSIFY + ["--criterion", "WANDA", "--calibration", "bud_cal.npy"],
         "usage", "--criterion"),
        ("sparsify-criterion-of-prune", SPARSIFY + ["--criterion", "l1"], "usage", "--criterion"),
        ("sparsify-wanda-calibration-empty-path", SPARSIFY + ["--criterion", "wanda", "--calibration", ""],
         "refused", "--calibration"),
        ("sparsify-wanda-two-calibrations", SPARSIFY + ["--criterion", "wanda", "--calibration", "bud_cal.npy",
                                                        "--calibration", "bud_cal.npy"], "refused", "input"),
    ]
    files = ["tiny.h5", "cnn.h5", "bud_cal.npy"]
    for cid, argv, expect, has in cases:
        g.add(f"budget-{cid}", "budget", f"option value: {' '.join(argv[2:])[:60]}", files,
              [run(argv, expect, has=has, lacks=LACKS)])
    # Options given where they have no effect: refused, or accepted with a word saying so (never silently).
    unused = [
        ("allocation-without-budget", PRUNE + ["--ratio", "0.5", "--allocation", "sensitivity"], "--allocation"),
        # Every prunable layer has 4 channels: a multiple of 8 leaves each whole, and nothing is removed.
        ("round-to-wider-than-layers-ratio", PRUNE + ["--ratio", "0.5", "--round-to", "8"], "--round-to"),
        ("sparsify-magnitude-calibration", SPARSIFY + ["--calibration", "bud_cal.npy"], "--calibration"),
        ("sparsify-magnitude-calibration-not-npy", SPARSIFY + ["--calibration", "bud_not_npy.npy"], "--calibration"),
    ]
    for cid, argv, option in unused:
        g.add(f"budget-{cid}", "budget", f"an option without effect: {' '.join(argv[2:])[:60]}",
              files + ["bud_not_npy.npy"],
              [run(argv, "ok-or-error", names=[option, "bud_not_npy.npy"], outputs=["o.h5"], lacks=LACKS,
                   keeps_or_mentions={"output": "o.h5", "name": option})])
    # Legitimate: the sensitivity allocation measures on the verification inputs (random ones by default).
    legit = [
        ("sensitivity-without-calibration", PRUNE + ["--target-params", "50%", "--allocation", "sensitivity"]),
        ("size-percent", ["{pare}", "prune", "cnn.h5", "o.h5", "--target-size", "50%", "--round-to", "2"]),
        ("params-above-model", PRUNE + ["--target-params", "9223372036854775807"]),
        ("reconstruct-budget", PRUNE + ["--target-macs", "50%", "--reconstruct", "--calibration", "bud_cal.npy"]),
    ]
    for cid, argv in legit:
        g.add(f"budget-ok-{cid}", "budget", f"legitimate: {' '.join(argv[2:])[:60]}", files,
              [run(argv, "ok", outputs=["o.h5"])])


def calibration_runs(f, timeout=None):
    """Every command that fits on --calibration, given `f`: each must refuse it, naming it."""
    argvs = [PRUNE + ["--ratio", "0.5", "--reconstruct", "--calibration", f],
             PRUNE + ["--ratio", "0.5", "--recalibrate-bn", "--calibration", f],
             PRUNE + ["--target-params", "50%", "--allocation", "sensitivity", "--criterion", "mean-activation",
                      "--calibration", f],
             SPARSIFY + ["--criterion", "wanda", "--calibration", f],
             SPARSIFY + ["--global", "--reconstruct", "--calibration", f]]
    return [run(argv, "error", names=[f], timeout=timeout) for argv in argvs]


def calibration_files(g):
    """--calibration files that are not tiny.h5's (None, 8, 8, 1) float inputs."""
    rng = np.random.default_rng(17)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    np.save(g.path("bud_cal.npy"), x)
    with open(g.path("bud_not_npy.npy"), "w") as f:
        f.write("not an NPY file\n")
    nan, inf, ninf = x.copy(), x.copy(), x.copy()
    nan[3, 2, 5, 0] = np.nan
    inf[0, 0, 0, 0] = np.inf
    ninf[15, 7, 7, 0] = -np.inf
    ex = x.astype("<f4").tobytes()
    arrays = {
        "spatial-28": rng.random((16, 28, 28, 1), dtype=np.float32),
        "channels-3": rng.random((16, 8, 8, 3), dtype=np.float32),
        "rank-2": rng.random((16, 64), dtype=np.float32),
        "no-batch-axis": x[0],
        "labels": rng.integers(0, 3, 16).astype(np.int64),
        "scalar": np.float32(1),
        "complex64": x.astype(np.complex64),
        "unicode": np.full((16, 8, 8, 1), "abc", dtype="<U3"),
        "bool": x > 0.5,
        "zero-examples": x[:0],
        "nan": nan,
        "inf": inf,
        "minus-inf": ninf,
        "all-nan": np.full_like(x, np.nan),
    }
    written = []
    for label, a in arrays.items():
        name = f"bud_cal_{label}.npy"
        np.save(g.path(name), a)
        written.append((label, name))
    # A pickled object array: NumPy writes it with allow_pickle; a reader must refuse, never unpickle.
    name = "bud_cal_object.npy"
    np.save(g.path(name), np.array([float(v) for v in x.ravel()], dtype=object).reshape(x.shape), allow_pickle=True)
    written.append(("object", name))
    headers = {
        "shape-2^40": cases_alloc.npy_header("<f4", (1 << 40, 8, 8, 1)) + ex[:256],
        "shape-wraps": cases_alloc.npy_header("<f4", (1 << 62, 8, 8, 1)) + ex,
        "shape-overflow": cases_alloc.npy_header("<f4", (1 << 62, 1 << 62, 8, 1)) + ex,
        "truncated": cases_alloc.npy_header("<f4", (16, 8, 8, 1)) + ex[:100],
    }
    for label, data in headers.items():
        name = f"bud_cal_{label}.npy"
        with open(g.path(name), "wb") as f:
            f.write(data)
        written.append((label, name))
    for label, name in written:
        g.add(f"budget-calibration-{label}", "budget", f"--calibration {label} ({name})", [name, "tiny.h5"],
              calibration_runs(name))
    g.add("budget-calibration-not-npy", "budget", "--calibration a text file", ["bud_not_npy.npy", "tiny.h5"],
          calibration_runs("bud_not_npy.npy"))
    g.add("budget-calibration-missing", "budget", "--calibration a file that does not exist", ["tiny.h5"],
          calibration_runs("bud_missing.npy"))
    g.add("budget-calibration-directory", "budget", "--calibration a directory", ["tiny.h5"],
          calibration_runs("bud_dir.npy"), setup=[{"mkdir": "bud_dir.npy"}])
    g.add("budget-calibration-fifo", "budget", "--calibration a FIFO (must not block)", ["tiny.h5"],
          calibration_runs("bud_fifo.npy", timeout=5), setup=[{"fifo": "bud_fifo.npy"}])
    g.add("budget-calibration-symlink-to-secret", "budget", "--calibration a symlink to secret.bin",
          ["tiny.h5", "secret.bin"], calibration_runs("bud_link.npy"),
          setup=[{"symlink": "bud_link.npy", "to": "secret.bin"}])
    # Dtypes Pare reads as inputs (integers, float64, float16): either used or refused by name.
    for label, dtype in (("int64", np.int64), ("uint8", np.uint8), ("float64", np.float64), ("float16", np.float16)):
        name = f"bud_cal_{label}.npy"
        np.save(g.path(name), (x * 255 if np.dtype(dtype).kind in "iu" else x).astype(dtype))
        g.add(f"budget-calibration-dtype-{label}", "budget", f"--calibration of {label}", [name, "tiny.h5"],
              [run(r["argv"], "ok-or-error", names=[name], outputs=["o.h5"]) for r in calibration_runs(name)])


def nan_in_bn_model(g):
    """NaN and infinite calibration values on a model with BatchNormalization: statistics recomputed
    from them (--recalibrate-bn, --reconstruct) or a refit on them would write NaN weights."""
    g.copy_fixture("residual/keras3.h5", "bud_residual.h5")
    x = np.load(g.path("x16.npy")).astype(np.float32)
    for label, value in (("nan", np.nan), ("inf", np.inf)):
        bad = x.copy()
        bad[2, 5, 5, 0] = value
        name = f"bud_x16_{label}.npy"
        np.save(g.path(name), bad)
        prune = ["{pare}", "prune", "bud_residual.h5", "o.h5", "--ratio", "0.5", "--input", "x16.npy"]
        g.add(f"budget-calibration-{label}-bn-model", "budget", f"{label} in the calibration of a BatchNorm model",
              [name, "bud_residual.h5", "x16.npy"],
              [run(prune + ["--recalibrate-bn", "--calibration", name], "error", names=[name]),
               run(prune + ["--reconstruct", "--calibration", name], "error", names=[name]),
               run(["{pare}", "sparsify", "bud_residual.h5", "o.h5", "--sparsity", "0.5", "--reconstruct",
                    "--calibration", name], "error", names=[name])])


def calibration_is_output(g):
    """The output path is the --calibration file, spelled differently: refused, the file unchanged."""
    cal = ["--calibration", "bud_cal.npy"]
    runs = [
        ("prune-reconstruct-dot", PRUNE[:3] + ["./bud_cal.npy", "--ratio", "0.5", "--reconstruct"] + cal, []),
        ("prune-recalibrate-bn-abs", PRUNE[:3] + ["{dir}//bud_cal.npy", "--ratio", "0.5", "--recalibrate-bn"] + cal,
         []),
        ("prune-budget-hardlink", PRUNE[:3] + ["hard.npy", "--target-params", "50%", "--allocation", "sensitivity"] +
         cal, [{"hardlink": "hard.npy", "to": "bud_cal.npy"}]),
        ("prune-reconstruct-symlink", PRUNE[:3] + ["link.npy", "--target-macs", "50%", "--reconstruct"] + cal,
         [{"symlink": "link.npy", "to": "bud_cal.npy"}]),
        ("sparsify-wanda-plain", SPARSIFY[:3] + ["bud_cal.npy", "--sparsity", "0.5", "--criterion", "wanda"] + cal,
         []),
        ("sparsify-reconstruct-hardlink", SPARSIFY[:3] + ["hard.npy", "--sparsity", "0.5", "--reconstruct"] + cal,
         [{"hardlink": "hard.npy", "to": "bud_cal.npy"}]),
        ("sparsify-wanda-updir", SPARSIFY[:3] + ["sub/../bud_cal.npy", "--sparsity", "0.5", "--criterion", "wanda"] +
         cal, [{"mkdir": "sub"}]),
    ]
    for cid, argv, setup in runs:
        g.add(f"budget-onto-calibration-{cid}", "budget", f"output onto --calibration: {' '.join(argv[2:])[:60]}",
              ["bud_cal.npy", "tiny.h5"],
              [run(argv, "error", names=["bud_cal.npy", "hard.npy", "link.npy"])], setup=setup)


def generate(g):
    calibration_files(g)
    option_cases(g)
    nan_in_bn_model(g)
    calibration_is_output(g)
