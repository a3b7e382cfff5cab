"""Class 8: `--config config.json` (Keras's `model.to_json()` text) must work for every command; and
hostile JSON wherever Pare parses a config (a --config file, a legacy `model_config` attribute).

The good configs are the real ones: the `.keras` archive's config.json and the `model_config`
attribute of the same model's legacy `.h5` (both what `model.to_json()` gives), and tf.keras 2's for
its weights-only `.h5`. The hostile ones edit a single field of the real config.
"""
import copy
import json

import base
from common import run


def good_runs(w, cfg, inputs="x16.npy", full=True):
    c = ["--config", cfg]
    rs = [run(["{pare}", "inspect", w, *c], "ok"), run(["{pare}", "check", w, *c], "ok"),
          run(["{pare}", "run", w, *c, "--input", inputs], "ok"),
          run(["{pare}", "convert", w, "o.h5", *c], "ok", outputs=["o.h5"])]
    if not full:
        return rs
    return rs + [
        run(["{pare}", "convert", w, "o.keras", *c], "ok", outputs=["o.keras"]),
        run(["{pare}", "pack", w, "o.pare", *c], "ok", outputs=["o.pare"]),
        run(["{pare}", "prune", w, "o.h5", *c, "--ratio", "0.5", "--input", inputs], "ok", outputs=["o.h5"]),
        run(["{pare}", "mask", w, "o.h5", *c, "--ratio", "0.5"], "ok", outputs=["o.h5"]),
        run(["{pare}", "sparsify", w, "o.h5", *c, "--sparsity", "0.5"], "ok", outputs=["o.h5"]),
        run(["{pare}", "eval", w, *c, "--input", inputs, "--labels", "y16.npy"], "ok"),
        run(["{pare}", "verify", w, w, *c, "--random", "2", "--atol", "0", "--rtol", "0"], "ok"),
        run(["{pare}", "sensitivity", w, *c, "--layer", "conv2d", "--input", inputs, "--steps", "0,1"], "ok"),
        run(["{pare}", "report", w, w, *c, "--markdown", "r.md"], "ok", outputs=["r.md"]),
    ]


def generate_good(g):
    files = ["cnn.weights.h5", "x16.npy", "y16.npy"]
    g.add("c8-keras-config-json", 8, "config.json from the .keras archive with model.weights.h5",
          ["cnn_config.json", *files], good_runs("cnn.weights.h5", "cnn_config.json"))
    g.add("c8-legacy-model-config-json", 8, "the model_config attribute of keras3.h5 as --config",
          ["cnn_model_config.json", *files], good_runs("cnn.weights.h5", "cnn_model_config.json", full=False))
    g.add("c8-tfkeras2-config-json", 8, "tf.keras 2 model_config with its weights-only .h5",
          ["cnn_tf_config.json", "cnn_tf_weights.h5", "x16.npy"],
          good_runs("cnn_tf_weights.h5", "cnn_tf_config.json", full=False))
    cfg = base.json_text(g.path("cnn_config.json"))
    variants = {
        "pretty": (json.dumps(cfg, indent=2) + "\n").encode(),
        "crlf": json.dumps(cfg, indent=1).replace("\n", "\r\n").encode(),
        "surrounding-whitespace": b"\n\t  " + json.dumps(cfg).encode() + b"  \n\n",
    }
    for label, data in variants.items():
        name = f"c8_config_{label}.json"
        with open(g.path(name), "wb") as f:
            f.write(data)
        g.add(f"c8-config-{label}", 8, f"config.json, {label}", [name, *files],
              good_runs("cnn.weights.h5", name, full=False))


def conv(cfg):
    return cfg["config"]["layers"][1]["config"]


def edits():
    """label -> (edit(config) or raw bytes, expectation)."""
    def set_conv(key, value):
        return lambda c: conv(c).__setitem__(key, value)
    return {
        "filters-zero": (set_conv("filters", 0), "error"),
        "filters-negative": (set_conv("filters", -32), "error"),
        "filters-float": (set_conv("filters", 32.5), "error"),
        "filters-string": (set_conv("filters", "32"), "error"),
        "filters-null": (set_conv("filters", None), "error"),
        "filters-2^63": (set_conv("filters", 2 ** 63), "error"),
        "filters-2^64+32": (set_conv("filters", 2 ** 64 + 32), "error"),
        "kernel-zero": (set_conv("kernel_size", [0, 0]), "error"),
        "kernel-negative": (set_conv("kernel_size", [-1, 5]), "error"),
        "strides-zero": (set_conv("strides", [0, 0]), "error"),
        "dilation-zero": (set_conv("dilation_rate", [0, 0]), "error"),
        "dilation-huge": (set_conv("dilation_rate", [1 << 40, 1 << 40]), "error"),
        "groups-zero": (set_conv("groups", 0), "error"),
        "padding-unknown": (set_conv("padding", "reflect"), "error"),
        # A custom activation registered with Keras is a valid model: check may pass it; run refuses.
        "activation-unknown": (set_conv("activation", "evil"), "ok-or-error"),
        "dtype-unknown": (set_conv("dtype", "float128"), "error"),
        "dtype-policy-int8": (set_conv("dtype", {"module": "keras", "class_name": "DTypePolicy",
                                                 "config": {"name": "int8"}, "registered_name": None}), "ok-or-error"),
        "name-mismatch": (set_conv("name", "not_conv2d"), "error"),
        "batch-shape-negative": (lambda c: c["config"]["layers"][0]["config"].__setitem__(
            "batch_shape", [None, -28, 28, 1]), "error"),
        "batch-shape-huge": (lambda c: c["config"]["layers"][0]["config"].__setitem__(
            "batch_shape", [None, 1 << 40, 1 << 40, 1]), "error"),
        "layers-not-list": (lambda c: c["config"].__setitem__("layers", {"a": 1}), "error"),
        "class-unknown": (lambda c: c.__setitem__("class_name", "Evil"), "error"),
        "pool-zero": (lambda c: c["config"]["layers"][2]["config"].__setitem__("pool_size", [0, 0]), "error"),
        "dense-units-zero": (lambda c: c["config"]["layers"][6]["config"].__setitem__("units", 0), "error"),
        "other-model": (None, "error"),  # the residual net's config for the CNN's weights
        "empty": (b"", "error"),
        "null": (b"null", "error"),
        "empty-object": (b"{}", "error"),
        "empty-array": (b"[]", "error"),
        "garbage": (b"\x00\x01garbage", "error"),
        "deep-arrays-100k": (b"[" * 100000 + b"]" * 100000, "error"),
        "deep-objects-100k": (b'{"a":' * 100000 + b"1" + b"}" * 100000, "error"),
        "nan-literal": (None, "error"),
        "number-1e400": (None, "error"),
        "duplicate-class-name": (None, "ok-or-error"),  # Keras (last wins) would refuse it
        "lone-surrogate": (None, "ok-or-error"),
        "invalid-utf8": (None, "error"),
        "bom": (None, "ok-or-error"),
    }


def raw_variants(g, text):
    """The byte-level variants of a valid config text (JSON a parser may mishandle)."""
    first_conv = '"filters": 32'
    assert first_conv in text
    residual = base.keras_members(g.fixture("residual/model.keras"))["config.json"]
    return {
        "other-model": residual,
        "nan-literal": text.replace(first_conv, '"filters": NaN').encode(),
        "number-1e400": text.replace(first_conv, '"filters": 1e400').encode(),
        "duplicate-class-name": text.replace('"class_name": "Sequential"',
                                             '"class_name": "Sequential", "class_name": "Evil"', 1).encode(),
        "lone-surrogate": text.replace('"name": "conv2d"', '"name": "conv\\ud800"', 1).encode(),
        "invalid-utf8": text.replace('"name": "conv2d"', '"name": "conv\xff"', 1).encode("latin-1"),
        "bom": b"\xef\xbb\xbf" + text.encode(),
    }


def generate_hostile(g):
    text = open(g.path("cnn_config.json")).read()
    cfg = json.loads(text)
    raw = raw_variants(g, text)
    for label, (edit, expect) in edits().items():
        name = f"c8_bad_{label}.json"
        if callable(edit):
            c = copy.deepcopy(cfg)
            edit(c)
            data = json.dumps(c).encode()
        else:
            data = edit if edit is not None else raw[label]
        with open(g.path(name), "wb") as f:
            f.write(data)
        c = ["--config", name]
        runs = [run(["{pare}", "check", "cnn.weights.h5", *c], expect, names=[name]),
                run(["{pare}", "run", "cnn.weights.h5", *c, "--input", "x16.npy"], expect, names=[name])]
        if label.startswith("filters") or label in ("other-model", "name-mismatch", "kernel-zero",
                                                    "dense-units-zero", "lone-surrogate"):
            for r in runs:  # the problem is a weight that does not fit: naming the weights file is as right
                r["names"] = [name, "cnn.weights.h5"]
        g.add(f"c8-bad-{label}", 8, f"--config with {label}", [name, "cnn.weights.h5", "x16.npy"], runs)
    # The same hostile JSON as a legacy model's own model_config attribute.
    for label in ("deep-arrays-100k", "deep-objects-100k", "nan-literal", "filters-zero", "strides-zero",
                  "duplicate-class-name"):
        data = open(g.path(f"c8_bad_{label}.json"), "rb").read().decode("utf-8")
        expect = edits()[label][1]
        name = f"c8_legacy_model_config_{label}.h5"
        base.mutated_copy(g, "cnn.h5", name, lambda f, d=data: f.attrs.__setitem__("model_config", d))
        g.add(f"c8-legacy-model-config-{label}", 8, f"legacy model_config attribute: {label}", [name, "x16.npy"],
              [run(["{pare}", "check", name], expect), run(["{pare}", "convert", name, "o.h5"], expect,
                                                           outputs=["o.h5"])])


def generate(g):
    generate_good(g)
    generate_hostile(g)
