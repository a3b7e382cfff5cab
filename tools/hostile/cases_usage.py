"""Class 9: option values that are wrong. Each must be refused with a message that states the actual
problem: `has` is a substring the first stderr line must contain (the offending value where a message
cannot state the problem without it, else the option's name), and no run may say "Missing value"
for a value that is present.

"usage" runs must exit 2; "refused" runs (problems that need the model to see: a layer that does
not exist, more channels than the layer has) may exit 1 or 2. Neither may write anything.
"""
from common import run


def generate(g):
    prune = ["{pare}", "prune", "cnn.h5", "o.h5"]
    tiny_prune = ["{pare}", "prune", "tiny.h5", "o.h5"]
    sens = ["{pare}", "sensitivity", "tiny.h5", "--input", "tx.npy"]
    cases = [
        # (id, argv, expectation, substring)
        ("ratio-negative", prune + ["--ratio", "-0.5"], "usage", "-0.5"),
        ("ratio-above-1", prune + ["--ratio", "1.5"], "usage", "1.5"),
        ("ratio-one", prune + ["--ratio", "1"], "refused", "1"),
        ("ratio-nan", prune + ["--ratio", "nan"], "usage", "nan"),
        ("ratio-inf", prune + ["--ratio", "inf"], "usage", "inf"),
        ("ratio-layer-negative", prune + ["--ratio", "conv2d=-0.1"], "usage", "-0.1"),
        ("ratio-layer-word", prune + ["--ratio", "conv2d=abc"], "usage", "abc"),
        ("ratio-empty", prune + ["--ratio", ""], "usage", "ratio"),
        ("keep-zero", prune + ["--keep", "conv2d=0"], "usage", "conv2d"),
        ("keep-negative", prune + ["--keep", "conv2d=-1"], "usage", "-1"),
        ("keep-more-than-layer", prune + ["--keep", "conv2d=33"], "refused", "33"),
        ("keep-unknown-layer", prune + ["--keep", "nolayer=3"], "refused", "nolayer"),
        ("keep-output-layer", prune + ["--keep", "dense_2=5"], "refused", "dense_2"),
        ("keep-no-equals", prune + ["--keep", "conv2d"], "usage", "conv2d"),
        ("keep-huge", prune + ["--keep", "conv2d=99999999999999999999999"], "usage", "99999999999999999999999"),
        ("drop-past-end", prune + ["--drop", "conv2d=32"], "refused", "32"),
        ("drop-negative", prune + ["--drop", "conv2d=-1"], "usage", "-1"),
        ("drop-empty", prune + ["--drop", "conv2d="], "usage", "conv2d"),
        ("threshold-nan", prune + ["--threshold", "nan"], "usage", "--threshold"),
        ("criterion-unknown", prune + ["--ratio", "0.5", "--criterion", "bogus"], "usage", "--criterion"),
        ("criterion-needs-calibration", tiny_prune + ["--ratio", "0.5", "--criterion", "apoz"], "refused",
         "calibration"),
        ("no-selection", prune, "usage", None),
        ("random-negative", tiny_prune + ["--ratio", "0.5", "--random", "-1"], "usage", "--random"),
        ("atol-negative", tiny_prune + ["--ratio", "0.5", "--atol", "-1"], "usage", "tolerance"),
        ("atol-nan", ["{pare}", "verify", "tiny.h5", "tiny.h5", "--atol", "nan"], "usage", "tolerance"),
        ("rtol-inf", ["{pare}", "verify", "tiny.h5", "tiny.h5", "--rtol", "inf"], "usage", "tolerance"),
        ("verify-random-zero", ["{pare}", "verify", "tiny.h5", "tiny.h5", "--random", "0"], "usage", "--random"),
        ("sparsity-one", ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "1.0"], "usage", "--sparsity"),
        ("sparsity-negative", ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "-0.1"], "usage", "--sparsity"),
        ("sparsity-nan", ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "nan"], "usage", "--sparsity"),
        ("sparsify-unknown-layer", ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "0.5", "--layers",
                                    "nolayer"], "refused", "nolayer"),
        ("sparsify-both-modes", ["{pare}", "sparsify", "tiny.h5", "o.h5", "--sparsity", "0.5", "--per-layer",
                                 "--global"], "usage", None),
        ("batch-zero", ["{pare}", "run", "tiny.h5", "--input", "tx.npy", "--batch", "0"], "usage", "--batch"),
        ("batch-negative", ["{pare}", "run", "tiny.h5", "--input", "tx.npy", "--batch", "-3"], "usage", "--batch"),
        ("batch-overflow", ["{pare}", "run", "tiny.h5", "--input", "tx.npy", "--batch", "99999999999999999999"],
         "usage", "99999999999999999999"),
        ("eval-batch-zero", ["{pare}", "eval", "tiny.h5", "--input", "tx.npy", "--labels", "ty.npy", "--batch", "0"],
         "usage", "--batch"),
        ("deflate-zero", ["{pare}", "convert", "tiny.h5", "o.h5", "--deflate", "0"], "usage", "--deflate"),
        ("deflate-ten", ["{pare}", "convert", "tiny.h5", "o.h5", "--deflate", "10"], "usage", "--deflate"),
        ("dense-above-two", ["{pare}", "pack", "tiny.h5", "o.pare", "--dense-above", "2"], "usage", "--dense-above"),
        ("dense-above-nan", ["{pare}", "pack", "tiny.h5", "o.pare", "--dense-above", "nan"], "usage", "--dense-above"),
        ("steps-word", sens + ["--layer", "conv_a", "--steps", "x"], "usage", "--steps"),
        ("steps-negative", sens + ["--layer", "conv_a", "--steps", "-1"], "usage", "--steps"),
        ("steps-past-channels", sens + ["--layer", "conv_a", "--steps", "0,99999"], "refused", "99999"),
        ("sensitivity-unknown-layer", sens + ["--layer", "nolayer"], "refused", "nolayer"),
        ("sensitivity-no-layer", sens, "usage", "layer"),
        ("eval-no-labels", ["{pare}", "eval", "tiny.h5", "--input", "tx.npy"], "usage", "labels"),
        ("run-two-inputs-one-input-model", ["{pare}", "run", "tiny.h5", "--input", "tx.npy", "--input", "tx.npy"],
         "refused", "input"),
        ("run-two-outputs-one-output-model", ["{pare}", "run", "tiny.h5", "--input", "tx.npy", "--output", "a.npy",
                                              "--output", "b.npy"], "refused", "output"),
        ("unknown-option", ["{pare}", "inspect", "tiny.h5", "--bogus"], "usage", "bogus"),
        ("missing-input", ["{pare}", "inspect", "nonexistent.h5"], "refused", "nonexistent.h5"),
    ]
    files = ["cnn.h5", "tiny.h5", "tx.npy", "ty.npy"]
    for cid, argv, expect, has in cases:
        # A negative number read as the next option name ("Missing value for '--x'") is the classic wrong message.
        g.add(f"c9-{cid}", 9, f"option value: {' '.join(argv[2:])[:60]}", files,
              [run(argv, expect, has=has, lacks=("Missing value", "crashed"))])
