"""Class 7: many objects, where listing them one index at a time is quadratic.

These files are legitimate: each must be read correctly (exit 0) and quickly; `max_seconds` fails a
run that finishes but takes longer than a linear walk should, even in a debug build.
"""
import h5py
import numpy as np

import base
import legacy_model
from common import run

STR = h5py.string_dtype()


def many_attributes(count, on_dataset=False):
    def mutate(f):
        obj = f["features.0.weight"] if on_dataset else f
        for i in range(count):
            obj.attrs[f"attr_{i:05d}"] = np.int32(i)
    return mutate


def many_datasets(count):
    def mutate(f):
        grp = f.create_group("many")
        for i in range(count):
            grp.create_dataset(f"t{i:05d}", data=np.full(2, i, "<f4"))
    return mutate


def many_groups(count):
    def mutate(f):
        grp = f.create_group("many")
        for i in range(count):
            grp.create_group(f"g{i:05d}")
    return mutate


def stray_layer_groups(count):
    def mutate(f):
        mw = f["model_weights"]
        for i in range(count):
            mw.create_group(f"stray_{i:05d}")
    return mutate


def deep_model(g, n):
    """A legitimate Sequential of n small Dense layers: graph work must stay near linear in layers."""
    layers = [legacy_model.simple("Flatten", "flatten")]
    layers += [legacy_model.dense(f"d{i}", 4, activation="relu") for i in range(n)]
    legacy_model.write(g.path(f"c7_dense_chain_{n}.h5"), layers, (8, 8, 1), flatten_size=64)


def generate(g):
    plain = lambda f, s: [run(["{pare}", "inspect", f], "ok", max_seconds=s),  # noqa: E731
                          run(["{pare}", "convert", f, "o.h5"], "ok", outputs=["o.h5"], max_seconds=s),
                          run(["{pare}", "pack", f, "o.pare"], "ok", outputs=["o.pare"], max_seconds=s)]
    cases = [
        ("attrs-4000-root", many_attributes(4000), "4,000 attributes on the root"),
        ("attrs-4000-dataset", many_attributes(4000, on_dataset=True), "4,000 attributes on one dataset"),
        ("datasets-10000", many_datasets(10000), "10,000 datasets in one group"),
        ("groups-10000", many_groups(10000), "10,000 groups in one group"),
    ]
    for label, mutate, attack in cases:
        name = f"c7_{label}.h5"
        base.mutated_copy(g, "sd.h5", name, mutate)
        g.add(f"c7-{label}", 7, attack, [name], plain(name, 15))
    base.mutated_copy(g, "cnn.h5", "c7_legacy_stray_groups.h5", stray_layer_groups(10000))
    g.add("c7-legacy-stray-groups-10000", 7, "10,000 unlisted groups beside the layers of a legacy model",
          ["c7_legacy_stray_groups.h5"],
          [run(["{pare}", "inspect", "c7_legacy_stray_groups.h5"], "ok-or-error", max_seconds=15),
           run(["{pare}", "convert", "c7_legacy_stray_groups.h5", "o.h5"], "ok-or-error", outputs=["o.h5"],
               max_seconds=15)])
    deep_model(g, 1000)
    f = "c7_dense_chain_1000.h5"
    g.add("c7-dense-chain-1000", 7, "a Sequential of 1,000 Dense layers", [f, "tx.npy"],
          [run(["{pare}", "inspect", f], "ok", max_seconds=10, timeout=30),
           run(["{pare}", "run", f, "--input", "tx.npy"], "ok", max_seconds=10, timeout=30),
           run(["{pare}", "prune", f, "o.h5", "--ratio", "0.25", "--input", "tx.npy"], "ok-or-error",
               outputs=["o.h5"], max_seconds=10, timeout=30)])
