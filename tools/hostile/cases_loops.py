"""Class 6: hangs and runaway recursion: groups hard-linked into cycles, soft and external link
loops, FIFOs and device nodes where a file is expected (as the model, --config, --input, --labels,
--calibration, or behind a link inside a file).

The runner gives these a short time limit; on a timeout it kills only `pare` first and reports any
child (the probe) that outlives it before cleaning up the process group.
"""
import h5py

import base
from common import run

ZERO = {"chardev": "zerodev", "major": 1, "minor": 5}


def hdf5_runs(f, expect="error", extra=(), **kw):
    return [run(["{pare}", "inspect", f, *extra], expect, **kw), run(["{pare}", "check", f, *extra], expect, **kw),
            run(["{pare}", "convert", f, "o.h5", *extra], expect, outputs=["o.h5"], **kw),
            run(["{pare}", "pack", f, "o.pare", *extra], expect, outputs=["o.pare"], **kw)]


def self_loop(path):
    def mutate(f):
        f[path + "/loop"] = f[path]
    return mutate


def mutual(a, b):
    def mutate(f):
        ga, gb = f.require_group(a), f.require_group(b)
        ga["to_b"] = gb
        gb["to_a"] = ga
    return mutate


def deep(depth):
    def mutate(f):
        f.create_group("/".join(["d"] * depth))
    return mutate


def generate_cycles(g):
    cycles = [
        ("plain-self", "sd.h5", self_loop("meta"), "error", "group meta hard-linked into itself"),
        ("plain-root", "sd.h5", lambda f: f["meta"].__setitem__("root", f["/"]), "error",
         "the root group hard-linked inside meta"),
        ("plain-mutual", "sd.h5", mutual("ga", "gb"), "error", "two groups linking each other"),
        ("plain-soft-cycle", "sd.h5", lambda f: (f.__setitem__("sa", h5py.SoftLink("/sb")),
                                                 f.__setitem__("sb", h5py.SoftLink("/sa"))), "error",
         "two soft links pointing at each other"),
        ("plain-elink-self-root", "sd.h5", lambda f: f.__setitem__("again", h5py.ExternalLink(
            "c6_plain-elink-self-root.h5", "/")), "error", "an external link to the file's own root"),
        ("plain-dataset-alias", "sd.h5", lambda f: f.__setitem__("alias", f["features.0.weight"]), "ok-or-error",
         "one dataset under two names (not a cycle)"),
        ("plain-deep-5000", "sd.h5", deep(5000), "ok-or-error", "groups nested 5,000 deep (not a cycle)"),
        ("legacy-weights-loop", "cnn.h5", self_loop("model_weights/conv2d"), "error",
         "a layer group hard-linked into itself"),
        ("legacy-up-link", "cnn.h5", lambda f: f["model_weights/conv2d/mnist_cnn/conv2d"].__setitem__(
            "up", f["model_weights"]), "error", "a weight group linking back to model_weights"),
        ("weights-loop", "cnn.weights.h5", self_loop("layers"), "error", "Keras 3 layers group into itself"),
    ]
    for label, src, mutate, expect, attack in cycles:
        name = f"c6_{label}.h5"
        base.mutated_copy(g, src, name, mutate)
        extra = ["--config", "cnn_config.json"] if src == "cnn.weights.h5" else []
        files = [name] + (["cnn_config.json"] if extra else [])
        g.add(f"c6-{label}", 6, attack, files, hdf5_runs(name, expect, extra, timeout=30))
    base.mutated_keras(g, "c6_keras-weights-loop.keras", self_loop("layers"))
    g.add("c6-keras-weights-loop", 6, "a .keras archive whose weights group links into itself",
          ["c6_keras-weights-loop.keras"], hdf5_runs("c6_keras-weights-loop.keras", timeout=30))


def generate_specials(g):
    """Files that are not regular files, where Pare expects one."""
    fifo = lambda name: {"fifo": name}  # noqa: E731 (a one-line table helper)
    files = ["cnn.weights.h5", "cnn_config.json", "tiny.h5", "tx.npy", "ty.npy"]
    specials = [
        ("model-fifo", [fifo("m.h5")], hdf5_runs("m.h5", timeout=5)[:2] +
         [run(["{pare}", "run", "m.h5", "--input", "tx.npy"], timeout=5)]),
        ("model-fifo-pare", [fifo("m.pare")], [run(["{pare}", "check", "m.pare"], timeout=5),
                                               run(["{pare}", "unpack", "m.pare", "o.h5"], timeout=5)]),
        ("model-fifo-keras", [fifo("m.keras")], [run(["{pare}", "inspect", "m.keras"], timeout=5)]),
        ("model-symlink-to-fifo", [fifo("p"), {"symlink": "m.h5", "to": "p"}],
         [run(["{pare}", "inspect", "m.h5"], timeout=5, names=["m.h5", "p"])]),
        ("model-chardev-zero", [ZERO], [run(["{pare}", "check", "zerodev"], timeout=5),
                                        run(["{pare}", "inspect", "zerodev"], timeout=5)]),
        ("model-directory", [{"mkdir": "m.h5"}], [run(["{pare}", "inspect", "m.h5"]),
                                                  run(["{pare}", "check", "m.h5"])]),
        ("config-fifo", [fifo("c.json")],
         [run(["{pare}", "inspect", "cnn.weights.h5", "--config", "c.json"], names=["c.json"], timeout=5),
          run(["{pare}", "convert", "cnn.weights.h5", "o.keras", "--config", "c.json"], names=["c.json"],
              timeout=5)]),
        ("config-chardev-zero", [ZERO],
         [run(["{pare}", "inspect", "cnn.weights.h5", "--config", "zerodev"], names=["zerodev"], timeout=5)]),
        ("input-fifo", [fifo("in.npy")],
         [run(["{pare}", "run", "tiny.h5", "--input", "in.npy"], names=["in.npy"], timeout=5),
          run(["{pare}", "verify", "tiny.h5", "tiny.h5", "--input", "in.npy"], names=["in.npy"], timeout=5)]),
        ("input-chardev-zero", [ZERO],
         [run(["{pare}", "run", "tiny.h5", "--input", "zerodev"], names=["zerodev"], timeout=5)]),
        ("labels-fifo", [fifo("l.npy")],
         [run(["{pare}", "eval", "tiny.h5", "--input", "tx.npy", "--labels", "l.npy"], names=["l.npy"], timeout=5)]),
        ("calibration-fifo", [fifo("c.npy")],
         [run(["{pare}", "prune", "tiny.h5", "o.h5", "--ratio", "0.5", "--criterion", "apoz", "--calibration",
               "c.npy"], names=["c.npy"], timeout=5)]),
        ("model-dev-stdin", [], [run(["{pare}", "inspect", "/dev/stdin"], names=["/dev/stdin"], timeout=5)]),
        ("input-dev-stdin", [], [run(["{pare}", "run", "tiny.h5", "--input", "/dev/stdin"], names=["/dev/stdin"],
                                     timeout=5)]),
        ("input-directory", [{"mkdir": "in.npy"}],
         [run(["{pare}", "run", "tiny.h5", "--input", "in.npy"], names=["in.npy"])]),
    ]
    subjects = {"model-fifo": "m.h5", "model-fifo-pare": "m.pare", "model-fifo-keras": "m.keras",
                "model-chardev-zero": "zerodev", "model-directory": "m.h5"}
    for label, setup, runs in specials:
        for r in runs:
            r.setdefault("names", [subjects.get(label, "?")])
        g.add(f"c6-{label}", 6, f"not a regular file: {label}", files, runs, setup=setup)


def generate(g):
    generate_cycles(g)
    generate_specials(g)
