"""Class "k1": Keras 1.2.2 legacy .h5 files, which Pare reads in Keras 2's terms (Formats/Keras1: config
rewrite, weight layouts, Theano kernel flips, gate-by-gate recurrent weights joined, a Sequential `Merge`
as a functional model), and channels-first layers run as channels-last twins (Inference/LayerOp), attacked
the way a review of that code did:

- the weights of every converted class in the wrong count, rank, shape or type (Conv 'th' kernels of rank
  3 and 5, a Conv1D kernel whose unit axis is 2, recurrent gates of unequal widths that still join into a
  kernel of the right size, an odd Bidirectional, a TimeDistributed without its weights, PReLU alphas
  holding an axis once where the input does not), huge declared shapes over a tiny file, a compressed
  256 MiB 'th' kernel (the conversion copies it element by element: compared with its tf.keras 2 twin);
- configs Keras 1 never wrote or refused to load, where Pare must refuse too rather than compute a
  guess: BatchNormalization modes "2", "0", null and true (Keras 1: mode 1), Merge modes null and 5,
  a Merge of one input or one branch, ZeroPadding2D dicts with unknown keys, dim_ordering on Flatten,
  Convolution1D and the 1-D pools (Keras 1 rejects the keyword; Pare runs them channels-first), a layer
  named like the `<first>_input` Keras 1 adds, mixed ':0' and Theano weight names;
- Theano's 'same' padding where Pare checks it only on top-level layers (inside a TimeDistributed, inside
  a nested Sequential), and a nested Sequential whose inner layer shares its name, which makes Pare
  convert the nested model's weights as that layer's (a 'th' kernel left untransposed: wrong numbers);
- a weights-only Keras 1 file (save_weights: layer groups at the root) run with `--config` a Keras 1
  model: the weights are not converted (Theano kernels not flipped: wrong numbers) or must be refused;
- keras_version spellings ('1.0', '1.x', '1', ' 1.2.2', missing, a number, an array), a tf.keras 2 or
  Keras 3 file labelled 1.2.2, Sequential Merge shapes (no branches, a Model or nested Merge branch,
  branches without an input shape, the same branch twice, a Merge inside a nested Sequential or in the
  middle of a Sequential), Merge dot/concat axes, 400- and 150-deep nesting, 10,000 layers, 4,000
  branches;
- channels-first runtime (the twins): 2-D and 3-D 'th' pipelines (ZeroPadding, Conv, UpSampling,
  Cropping, pools, global pools), SeparableConvolution2D and AtrousConvolution2D 'th', TimeDistributed
  convolutions, Bidirectional(GRU 'mem'), LSTM 'mem', each checked with `verify` against a tf.keras 2
  reference written here (channels-last layers between Permutes, kernels transposed and flipped in
  numpy; the references were checked against numpy), and a mask reaching a 'th' convolution;
- writing back: convert to .h5, .keras, .pare and .weights.h5, prune, sparsify, mask; outputs written by
  Pare at generation time are read back and verified against the Keras 1 file (a second conversion,
  e.g. a second flip, would drift).

Bases: copies of fixtures/keras1 (real Keras 1.2.2 / Theano files) with their inputs, run unedited first
("k1-base-…"), and small Keras 1.2.2 files written here with h5py in Keras 1's layout (root keras_version
and model_config as bytes, model_weights with layer_names only, weights named `<layer>_W` without ':0'
for Theano or with it for TensorFlow).

Silent mis-conversions show as exit 0 where "error" is expected, or as "beyond tolerance" in a `verify`
against a reference. Every Keras 1 read prints one or two `note:` lines, so an error found after reading
(an interpreter refusal, a wrong --input) is reported in more than one stderr line.
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

import base
from common import run

BUG = ("crashed", "a bug in Pare")  # a hostile file is the file's fault, not Pare's
DRIFT = BUG + ("beyond tolerance",)  # a `verify` that finds other numbers
K1 = b"1.2.2"
STR = h5py.string_dtype()

FIXTURES = {
    # fixture name: number of inputs
    "cnn_th": 1, "cnn_tf": 1, "cnn_th_quirks": 1, "conv1d": 1, "rnn_lstm": 1, "rnn_gru": 1, "rnn_simple": 1,
    "functional_merge": 2, "merge_sequential": 2, "misc": 1,
}
REFUSED = {"cnn_th_quirks": "Theano 'same' with strides (refused by name)",
           "misc": "Highway and MaxoutDense (refused by name)"}
MERGE = {"mode_type": "raw", "concat_axis": -1, "dot_axes": -1, "output_shape": None, "output_shape_type": "raw",
         "output_mask": None, "output_mask_type": "raw", "arguments": {}}


def fx(label):
    return f"k1_{label}.h5"


def fx_inputs(label):
    n = FIXTURES[label]
    return ["k1_%s_in.npy" % label] if n == 1 else [f"k1_{label}_in{i}.npy" for i in range(n)]


def ins(inputs):
    return [a for i in inputs for a in ("--input", i)]


# MARK: Keras 1 configs

def L(cls, name, **config):
    """A Sequential entry (Keras 1 writes no `name` beside `config`)."""
    return {"class_name": cls, "config": {"name": name, "trainable": True, **config}}


def seq(*layers):
    """Keras 1's Sequential config: the bare list."""
    return {"class_name": "Sequential", "config": list(layers)}


def node(cls, lname, calls, **config):
    """A functional entry; `calls` lists calls of [layer or (layer, node, tensor)]."""
    config = {k: v for k, v in config.items() if k not in ("name", "trainable")}
    return {"name": lname, "class_name": cls, "config": {"name": lname, "trainable": True, **config},
            "inbound_nodes": [[[r, 0, 0] if isinstance(r, str) else list(r) for r in call] for call in calls]}


def inp(name, shape, dtype="float32"):
    return {"name": name, "class_name": "InputLayer", "inbound_nodes": [],
            "config": {"batch_input_shape": [None, *shape], "input_dtype": dtype, "sparse": False, "name": name}}


def model(name, layers, inputs, outputs):
    """Keras 1's Model config; an output is a name (call 0) or (name, node)."""
    outs = [[o, 0, 0] if isinstance(o, str) else [o[0], o[1], 0] for o in outputs]
    return {"class_name": "Model", "config": {"name": name, "layers": layers,
                                              "input_layers": [[i, 0, 0] for i in inputs], "output_layers": outs}}


def dense(name, units, activation="linear", **config):
    return L("Dense", name, **{**dict(
        output_dim=units, init="glorot_uniform", activation=activation, W_regularizer=None, b_regularizer=None,
        activity_regularizer=None, W_constraint=None, b_constraint=None, bias=True), **config})


def conv2d(name, filters, rows, cols, dim="th", border="valid", sub=(1, 1), activation="linear", **config):
    return L("Convolution2D", name, **{**dict(
        nb_filter=filters, nb_row=rows, nb_col=cols, init="glorot_uniform", activation=activation,
        border_mode=border, subsample=list(sub), dim_ordering=dim, W_regularizer=None, b_regularizer=None,
        activity_regularizer=None, W_constraint=None, b_constraint=None, bias=True), **config})


def pool(cls, name, size, strides, border="valid", dim="tf", **config):
    return L(cls, name, pool_size=list(size), strides=list(strides), border_mode=border, dim_ordering=dim, **config)


def first(shape, dtype="float32"):
    """The keys Keras 1 writes on a Sequential's first layer."""
    return {"batch_input_shape": [None, *shape], "input_dtype": dtype}


def layer_names(config):
    """model_weights' layer_names as Keras 1 writes them: a Sequential's flattened layers (a Merge's
    branches in its place), a Model's layers."""
    out = []

    def flat(entries):
        for e in entries:
            if e.get("class_name") == "Merge" and "layers" in e.get("config", {}):
                for b in e["config"]["layers"]:
                    flat(b["config"] if isinstance(b["config"], list) else b["config"]["layers"])
            else:
                out.append(e.get("name") or e["config"]["name"])
    inner = config["config"]
    if config["class_name"] == "Sequential":
        flat(inner if isinstance(inner, list) else inner["layers"])
    else:
        out += [e.get("name") or e["config"]["name"] for e in inner["layers"]]
    return out


def write_k1(g, name, config, weights=None, names=None, tf=False, version=K1, latest=False):
    """A Keras 1.2.2 full-model .h5 as `model.save` writes it: root keras_version, model_config (bytes),
    model_weights with layer_names only; each layer's weight_names and datasets as given (':0' appended
    under TensorFlow)."""
    weights = weights or {}
    names = layer_names(config) if names is None else names
    with h5py.File(g.path(name), "w", libver="latest" if latest else "earliest") as f:
        if version is not None:
            f.attrs["keras_version"] = np.bytes_(version)
        f.attrs["model_config"] = np.bytes_(json.dumps(config).encode())
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in dict.fromkeys(names):
            lg = mw.create_group(n)
            ws = [(w + (":0" if tf else ""), a) for w, a in weights.get(n, [])]
            lg.attrs["weight_names"] = (np.array([w.encode() for w, _ in ws]) if ws
                                        else np.array([], dtype=np.float64))
            for w, a in ws:
                lg.create_dataset(w, data=a)
    return name


def write_k2(g, name, layers, shape, weights):
    """A tf.keras 2.15 legacy .h5 Sequential (the references): `weights` maps a layer to
    [(role, array)], stored as `<layer>/<role>:0` (a wrapper's roles may hold a path)."""
    config = {"class_name": "Sequential", "config": {"name": "ref", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, *shape], "dtype": "float32",
                                                "sparse": False, "ragged": False, "name": "ref_in"}}] + layers}}
    with h5py.File(g.path(name), "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = "2.15.0"
        mw.attrs["backend"] = "tensorflow"
        names = [e["config"]["name"] for e in layers]
        mw.attrs.create("layer_names", names, dtype=STR)
        for n in names:
            lg = mw.create_group(n)
            ws = [(f"{n}/{role}:0", a) for role, a in weights.get(n, [])]
            lg.attrs.create("weight_names", [w for w, _ in ws], dtype=STR)
            for w, a in ws:
                lg.create_dataset(w, data=np.asarray(a, dtype=np.float32))
    return name


def k2(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, "trainable": True, "dtype": "float32", **config}}


def k2conv(cls, name, filters, kernel, strides=None, padding="valid", dilation=None, activation="linear", **config):
    n = len(kernel)
    return k2(cls, name, filters=filters, kernel_size=list(kernel), strides=list(strides or [1] * n), padding=padding,
              data_format="channels_last", dilation_rate=list(dilation or [1] * n), activation=activation,
              use_bias=True, **config)


class Rng:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape, scale=0.5):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)


def save(g, name, array):
    np.save(g.path(name), np.asarray(array, dtype=np.float32))
    return name


def config_edit(*edits):
    def mutate(f):
        c = json.loads(f.attrs["model_config"])
        for edit in edits:
            edit(c)
        f.attrs["model_config"] = np.bytes_(json.dumps(c).encode())
    return mutate


def seq_layer(c, name):
    for e in c["config"]:
        if e["config"]["name"] == name:
            return e
    raise KeyError(name)


def set_cfg(name, **values):
    return lambda c: seq_layer(c, name)["config"].update(values)


def pop_cfg(name, key):
    return lambda c: seq_layer(c, name)["config"].pop(key)


def replace(path, data):
    """A mutation replacing dataset model_weights/`path` with `data` (an array or f(old array))."""
    def mutate(f):
        group, leaf = f"model_weights/{path}".rsplit("/", 1)
        old = f[group][leaf][()]
        del f[group][leaf]
        f[group].create_dataset(leaf, data=data(old) if callable(data) else data)
    return mutate


def resize(path, shape):
    return replace(path, lambda a: np.resize(a, shape))


def unlist(group, weight):
    """weight_names without `weight` (and the dataset gone)."""
    def mutate(f):
        g = f[f"model_weights/{group}"]
        del g[weight]
        kept = [n for n in g.attrs["weight_names"] if n.decode() != weight]
        g.attrs["weight_names"] = np.array(kept) if kept else np.array([], dtype=np.float64)
    return mutate


def relist(group, weight):
    """weight_names with `weight` listed a second time."""
    def mutate(f):
        g = f[f"model_weights/{group}"]
        g.attrs["weight_names"] = np.array(list(g.attrs["weight_names"]) + [weight.encode()])
    return mutate


def both(*mutations):
    def mutate(f):
        for m in mutations:
            m(f)
    return mutate


def edited(g, label, name, mutate):
    base.mutated_copy(g, fx(label), name, mutate)
    return name, fx_inputs(label)


# MARK: runs

def read_runs(f, inputs, expect="error", run_expect=None, lacks=BUG, timeout=None):
    """check, convert to .h5, and run: a file Pare must refuse is refused by all three."""
    return [run(["{pare}", "check", f], expect, lacks=lacks, timeout=timeout),
            run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"], lacks=lacks, timeout=timeout),
            run(["{pare}", "run", f, *ins(inputs)], run_expect or expect, lacks=lacks, timeout=timeout)]


def verify(ref, cand, inputs, expect="ok", extra=(), timeout=None):
    """`verify ref cand`: exit 0 only within tolerance."""
    return run(["{pare}", "verify", ref, cand, *ins(inputs), *extra], expect, names=[ref, cand],
               lacks=DRIFT if expect != "ok" else BUG, timeout=timeout)


# MARK: bases

def write_bases(g):
    for label, n in FIXTURES.items():
        g.copy_fixture(f"keras1/{label}.h5", fx(label))
        sources = [f"keras1/{label}_input.npy"] if n == 1 else [f"keras1/{label}_input{i}.npy" for i in range(n)]
        for src, dst in zip(sources, fx_inputs(label)):
            g.copy_fixture(src, dst)


def generate_bases(g):
    for label in FIXTURES:
        f, inputs = fx(label), fx_inputs(label)
        if label in REFUSED:
            g.add(f"k1-base-{label.replace('_', '-')}", "k1", f"the unedited fixture {label}.h5: {REFUSED[label]}",
                  [f, *inputs], read_runs(f, inputs) + [
                      run(["{pare}", "convert", f, "o.keras", *ins(inputs)], "error", outputs=["o.keras"],
                          lacks=BUG)])
            continue
        x = ins(inputs)
        g.add(f"k1-base-{label.replace('_', '-')}", "k1", f"the unedited fixture {label}.h5 (real Keras 1.2.2)",
              [f, *inputs], [
                  run(["{pare}", "check", f], "ok"),
                  run(["{pare}", "inspect", f], "ok"),
                  run(["{pare}", "run", f, *x], "ok"),
                  verify(f, f, inputs),
                  run(["{pare}", "convert", f, "o.h5"], "ok", outputs=["o.h5"]),
                  run(["{pare}", "convert", f, "o.keras", *x], "ok", outputs=["o.keras"]),
                  run(["{pare}", "convert", f, "o.weights.h5", *x], "ok", outputs=["o.weights.h5"]),
                  run(["{pare}", "convert", f, "o.pare"], "ok", outputs=["o.pare"]),
                  run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *x], "ok", outputs=["o.h5"]),
                  run(["{pare}", "sparsify", f, "o.h5", "--sparsity", "0.5"], "ok", outputs=["o.h5"]),
              ])


def generate_notes_and_usage(g):
    f, inputs = fx("cnn_th"), fx_inputs("cnn_th")
    wrong = fx_inputs("cnn_tf")[0]
    g.add("k1-notes-wrong-input", "k1", "cnn_th.h5 run on cnn_tf's (12, 28, 28, 1) inputs: the error must be one "
          "line, but every Keras 1 read prints its notes first", [f, wrong],
          [run(["{pare}", "run", f, "--input", wrong], "error", names=[wrong, f], lacks=BUG)])
    g.add("k1-usage", "k1", "--keras on a Keras 1 file", [f, *inputs], [
        run(["{pare}", "convert", f, "o.keras", "--keras", "2"], "usage", has="--keras 2"),
        run(["{pare}", "convert", f, "o.h5", "--keras", "3"], "usage", has="--keras 3"),
        run(["{pare}", "convert", f, "o.h5", "--keras", "2"], "ok", outputs=["o.h5"]),
    ])


def generate_readback(g):
    """What Pare writes of a Keras 1 file is a Keras 2 file: read back, it computes what the Keras 1 file
    computes (a second conversion would flip the Theano kernels back, or transpose them again)."""
    writes = {
        # suffix: (command after the input, extra verify arguments)
        "h5": (lambda f, o, x: ["convert", f, o], ()),
        "keras": (lambda f, o, x: ["convert", f, o, *x], ()),
        "pare": (lambda f, o, x: ["convert", f, o], ()),
        "weights.h5": (lambda f, o, x: ["convert", f, o, *x], "config"),
        "sparsify0.h5": (lambda f, o, x: ["sparsify", f, o, "--sparsity", "0"], ()),
        "mask-dead.h5": (lambda f, o, x: ["mask", f, o, "--drop-dead"], ()),
    }
    for label in ("cnn_th", "cnn_tf", "conv1d", "rnn_lstm", "rnn_gru", "merge_sequential", "functional_merge"):
        f, inputs = fx(label), fx_inputs(label)
        x = ins(inputs)
        for suffix, (command, extra) in writes.items():
            out = f"k1_{label}_by_pare.{suffix}"
            r = subprocess.run([g.pare, *command(g.path(f), g.path(out), [g.path(i) if i.endswith(".npy") else i
                                                                          for i in x])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0 or not os.path.exists(g.path(out)):
                continue  # k1-base-… runs the same command and fails visibly
            cfg = ["--config", f] if extra == "config" else []
            runs = [verify(f, out, inputs, extra=cfg)]
            if suffix in ("h5", "sparsify0.h5", "mask-dead.h5"):
                runs.append(run(["{pare}", "convert", out, "o.h5"], "ok", outputs=["o.h5"]))
            g.add(f"k1-readback-{label.replace('_', '-')}-{suffix.replace('.', '-')}", "k1",
                  f"{label}.h5 written by Pare as {suffix}, read back and verified against the Keras 1 file",
                  [f, out, *inputs], runs)


# MARK: versions

def generate_versions(g):
    f0, inputs = fx("cnn_th"), fx_inputs("cnn_th")

    def root(key, value):
        def mutate(f):
            if value is None:
                del f.attrs[key]
            elif isinstance(value, str):
                f.attrs.create(key, value, dtype=STR)
            else:
                f.attrs[key] = value
        return mutate
    cases = {
        # label: (mutation, expect, attack)
        "1.0": (root("keras_version", np.bytes_(b"1.0")), "ok", "keras_version '1.0'"),
        "1.x": (root("keras_version", np.bytes_(b"1.x")), "ok", "keras_version '1.x'"),
        "vlen": (root("keras_version", "1.2.2"), "ok", "keras_version as a variable-length string"),
        "1": (root("keras_version", np.bytes_(b"1")), "ok-or-error",
              "keras_version '1' (what Keras 2's loader takes for a Keras 1 file; Pare reads Keras 2 terms)"),
        "missing": (root("keras_version", None), "ok-or-error",
                    "no keras_version (Keras 2's loader: Keras 1); Pare reads the Keras 1 config as Keras 2's"),
        "space": (root("keras_version", np.bytes_(b" 1.2.2")), "error", "keras_version ' 1.2.2'"),
        "10": (root("keras_version", np.bytes_(b"10.0")), "error", "keras_version '10.0' (starts with '1')"),
        "2.2.4": (root("keras_version", np.bytes_(b"2.2.4")), "error", "a Keras 1 config labelled 2.2.4"),
        "number": (root("keras_version", 1.2), "error", "keras_version the number 1.2"),
        "array": (root("keras_version", np.array([b"1.2.2", b"1.2.2"])), "error", "keras_version an array of two"),
        "weights-group-2": (lambda f: f["model_weights"].attrs.__setitem__("keras_version", np.bytes_(b"2.2.4")),
                            "ok", "root 1.2.2, model_weights keras_version 2.2.4"),
        "backend-tf": (root("backend", np.bytes_(b"tensorflow")), "ok-or-error",
                       "a Theano-named Keras 1 file saying backend 'tensorflow' (Keras 2 would not flip)"),
        "backend-theano": (root("backend", np.bytes_(b"theano")), "ok", "backend 'theano' (Keras 1 wrote none)"),
    }
    for label, (mutate, expect, attack) in cases.items():
        f = base.mutated_copy(g, f0, f"k1_ver_{label}.h5", mutate)
        runs = read_runs(f, inputs, expect)
        if expect == "ok":
            runs.append(verify(f0, f, inputs))
        g.add(f"k1-ver-{label}", "k1", f"cnn_th.h5 with {attack}", [f, f0, *inputs], runs)
    # Keras 2 and 3 files labelled 1.2.2
    for label, fixture, expect in (("tfkeras2", "mnist_cnn/tfkeras2.h5", "error"),
                                   ("keras3", "mnist_cnn/keras3.h5", "error"),
                                   ("tfkeras2-dense", "upgrade/thresholded_seq.h5", "ok-or-error")):
        f = g.copy_fixture(fixture, f"k1_labelled_{label}.h5")
        with h5py.File(g.path(f), "r+") as h:
            h.attrs["keras_version"] = np.bytes_(K1)
        g.add(f"k1-ver-labelled-{label}", "k1", f"{fixture} (Keras 2/3 config and weight names) labelled 1.2.2",
              [f], [run(["{pare}", "check", f], expect, lacks=BUG),
                    run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"], lacks=BUG)])


# MARK: BatchNormalization modes

def generate_bn(g):
    f0, inputs = fx("cnn_th"), fx_inputs("cnn_th")
    cases = {
        # label: (mode or a deletion, expect, attack)
        "string-2": ("2", "error", "mode '2' (Keras 1 matches no branch: it cannot run; Pare: mode 0)"),
        "string-0": ("0", "error", "mode '0' (a string is not 0 in Keras 1: it cannot run)"),
        "null": (None, "error", "mode null (Keras 1: no branch; Pare: mode 0)"),
        "true": (True, "error", "mode true (Python: True == 1, sample-wise normalization; Pare computed mode 0)"),
        "half": (0.5, "error", "mode 0.5"),
        "1.0": (1.0, "error", "mode 1.0 (Keras 1: mode 1)"),
        "2": (2, "error", "mode 2 (batch statistics at inference)"),
        "false": (False, "ok", "mode false (False == 0: mode 0)"),
        "0.0": (0.0, "ok", "mode 0.0"),
        "missing": (..., "ok", "no mode key (Keras 1's default 0)"),
    }
    for label, (mode, expect, attack) in cases.items():
        edit = pop_cfg("bn", "mode") if mode is ... else set_cfg("bn", mode=mode)
        f, _ = edited(g, "cnn_th", f"k1_bn_mode_{label}.h5", config_edit(edit))
        runs = read_runs(f, inputs, expect)
        if expect == "ok":
            runs.append(verify(f0, f, inputs))
        g.add(f"k1-bn-mode-{label}", "k1", f"cnn_th.h5's BatchNormalization with {attack}", [f, f0, *inputs], runs)


# MARK: weights

def generate_weights(g):
    th, lstm, gru, c1 = "cnn_th", "rnn_lstm", "rnn_gru", "conv1d"
    W = "conv_same/conv_same_W"

    def gates(group, prefix, parts, widths, inputs_dim, units):
        """Per-gate W, U, b of unequal widths (summing to the layer's) under `prefix`."""
        ms = []
        for gate, width in zip(parts, widths):
            ms += [resize(f"{group}/{prefix}_W_{gate}", (inputs_dim, width)),
                   resize(f"{group}/{prefix}_U_{gate}", (units, width)), resize(f"{group}/{prefix}_b_{gate}", (width,))]
        return both(*ms)
    cases = {
        # label: (base, mutation, expect, attack)
        "conv-th-rank3": (th, resize(W, (8, 3, 3)), "error", "a 'th' kernel of rank 3"),
        "conv-th-rank5": (th, resize(W, (8, 1, 3, 3, 1)), "error", "a 'th' kernel of rank 5"),
        "conv-th-scalar": (th, replace(W, np.float32(1)), "error", "a scalar 'th' kernel"),
        "conv-th-zero-filters": (th, replace(W, np.zeros((0, 1, 3, 3), np.float32)), "error", "a (0, 1, 3, 3) kernel"),
        "conv-th-tf-layout": (th, replace(W, lambda a: a.transpose(2, 3, 1, 0).copy()), "error",
                              "a 'th' layer holding a (rows, cols, in, out) kernel"),
        "conv-th-one-weight": (th, unlist("conv_same", "conv_same_b"), "error", "W without b"),
        "conv-th-three-weights": (th, relist("conv_same", "conv_same_b"), "error", "b listed twice"),
        "conv-th-bool": (th, replace(W, lambda a: a > 0), "error", "a bool kernel"),
        "conv-th-complex": (th, replace(W, lambda a: a.astype("c8")), "error", "a complex64 kernel"),
        "conv-th-strings": (th, replace(W, np.array([b"abc"] * 72).reshape(8, 1, 3, 3)), "error", "a string kernel"),
        "conv-th-float64": (th, replace(W, lambda a: a.astype("f8")), "ok", "a float64 kernel (Keras 1 casts)"),
        "conv-th-float16": (th, replace(W, lambda a: a.astype("f2")), "ok", "a float16 kernel"),
        "conv-th-big-endian": (th, replace(W, lambda a: a.astype(">f4")), "ok", "a big-endian kernel"),
        "conv-th-int32": (th, replace(W, lambda a: (a * 10).astype("i4")), "ok-or-error", "an int32 kernel"),
        "conv-th-nan": (th, replace(W, np.full((8, 1, 3, 3), np.nan, np.float32)), "ok-or-error", "a NaN kernel"),
        "conv1d-unit-2": (c1, resize("conv1d_same/conv1d_same_W", (3, 2, 28, 8)), "error",
                          "a Conv1D kernel (3, 2, 28, 8): neither Keras 1.1's (length, 1, in, out) nor 1.0's"),
        "conv1d-rank3": (c1, replace("conv1d_same/conv1d_same_W", lambda a: a[:, 0].copy()), "error",
                         "a Conv1D kernel of rank 3 (Keras 2's layout)"),
        "lstm-11": (lstm, unlist("lstm_cpu", "lstm_cpu_b_o"), "error", "a gate-by-gate LSTM of 11 weights"),
        "lstm-rank1-gate": (lstm, resize("lstm_cpu/lstm_cpu_W_f", (320,)), "error", "one LSTM gate kernel flat"),
        "lstm-scalar-gate": (lstm, replace("lstm_cpu/lstm_cpu_b_f", np.float32(1)), "error", "a scalar gate bias"),
        "lstm-empty-gate": (lstm, replace("lstm_cpu/lstm_cpu_b_f", np.zeros((0,), np.float32)), "error",
                            "an empty gate bias"),
        "lstm-unequal-gates": (lstm, gates("lstm_cpu", "lstm_cpu", "icfo", (19, 21, 20, 20), 16, 20), "error",
                               "LSTM gates of widths 19, 21, 20, 20 (Keras 1 cannot run them; joined they make the "
                               "80 columns Keras 2 wants, and Pare ran them)"),
        "gru-8": (gru, unlist("gru_mem_backwards", "gru_mem_backwards_b_h"), "error", "a gate-by-gate GRU of 8"),
        "gru-unequal-gates": (gru, gates("gru_mem_backwards", "gru_mem_backwards", "zr", (15, 17), 8, 16), "error",
                              "GRU gates z, r of widths 15 and 17 (joined: the 48 columns wanted)"),
        "bidir-odd": (lstm, unlist("bilstm_gpu", "backward_lstm_1_b"), "error", "a Bidirectional of 5 weights"),
        "td-none": (lstm, both(unlist("td_dense", "dense_1_W"), unlist("td_dense", "dense_1_b")), "error",
                    "a TimeDistributed(Dense) without weights"),
        "td-one": (lstm, unlist("td_dense", "dense_1_b"), "error", "a TimeDistributed(Dense) with W only"),
        "embedding-2": (lstm, relist("embed", "embed_W"), "error", "an Embedding listing W twice"),
        "bn-3": (th, unlist("bn", "bn_running_std"), "error", "a BatchNormalization without running_std"),
        "bn-5": (th, relist("bn", "bn_beta"), "error", "a BatchNormalization of 5 weights"),
        "huge-declared": (th, lambda f: (f["model_weights/conv_same"].__delitem__("conv_same_W"),
                                         f["model_weights/conv_same"].create_dataset(
                                             "conv_same_W", shape=(1 << 16, 1 << 15, 1, 1), dtype="f4",
                                             chunks=(64, 64, 1, 1), fillvalue=0.5)), "error",
                          "an 8 GiB kernel declared over a tiny file (chunks never written)"),
    }
    for label, (base_label, mutate, expect, attack) in cases.items():
        f, inputs = edited(g, base_label, f"k1_w_{label}.h5", mutate)
        runs = read_runs(f, inputs, expect)
        if label == "conv-th-float64" or label == "conv-th-big-endian":
            runs.append(verify(fx(base_label), f, inputs))
        g.add(f"k1-w-{label}", "k1", f"{base_label}.h5 with {attack}", [f, fx(base_label), *inputs], runs)
    # Keras 1.0's Conv1D layout (filters, in, length, 1): converted, it computes what the fixture does
    f, inputs = edited(g, c1, "k1_w_conv1d-keras-1.0-layout.h5",
                       replace("conv1d_same/conv1d_same_W", lambda a: a.transpose(3, 2, 0, 1).copy()))
    g.add("k1-w-conv1d-keras-1.0-layout", "k1", "conv1d.h5 with its first kernel in Keras 1.0's (filters, in, "
          "length, 1) layout", [f, fx(c1), *inputs], read_runs(f, inputs, "ok") + [verify(fx(c1), f, inputs)])
    generate_small_weights(g)


def generate_small_weights(g):
    w = Rng(21)
    save(g, "k1_x_5_5_4.npy", w(4, 5, 5, 4, scale=2))
    save(g, "k1_x_5_3.npy", w(4, 5, 3, scale=1.5))
    save(g, "k1_x_3_7_6.npy", w(5, 3, 7, 6, scale=2))
    prelu = lambda alphas: write_k1(  # noqa: E731
        g, f"k1_prelu_{'x'.join(map(str, alphas.shape))}.h5",
        seq(L("PReLU", "prelu", init="zero", **first([5, 5, 4])), L("Flatten", "fl"), dense("d", 3)),
        {"prelu": [("prelu_alphas", alphas)], "d": [("d_W", w(100, 3)), ("d_b", w(3))]})
    for shape, expect, attack in (((5, 5, 4), "ok", "alphas of the input's shape (5, 5, 4)"),
                                  ((1, 1, 4), "error", "alphas (1, 1, 4) on (5, 5, 4) inputs: Keras 1 (alphas always "
                                                       "the input's shape) cannot run it; Pare inferred "
                                                       "shared_axes [1, 2] and ran it"),
                                  ((1, 5, 1), "error", "alphas (1, 5, 1) on (5, 5, 4) inputs")):
        f = prelu(w(*shape))
        g.add(f"k1-w-prelu-{'x'.join(map(str, shape))}", "k1", f"a PReLU with {attack}", [f, "k1_x_5_5_4.npy"],
              read_runs(f, ["k1_x_5_5_4.npy"], expect))
    lstm = L("LSTM", "l", return_sequences=False, go_backwards=False, stateful=False, unroll=False,
             consume_less="cpu", output_dim=4, activation="tanh", inner_activation="hard_sigmoid", dropout_W=0.0,
             dropout_U=0.0, **first([5, 3]))
    f = write_k1(g, "k1_lstm_cpu_3_weights.h5", seq(lstm), {"l": [("l_W", w(3, 16)), ("l_U", w(4, 16)),
                                                                   ("l_b", w(16))]})
    g.add("k1-w-lstm-cpu-3-weights", "k1", "an LSTM consume_less 'cpu' (12 weights in Keras 1) holding the 3 of "
          "'gpu' (Keras 1 refuses the count; the joined reading is the obvious one)", [f, "k1_x_5_3.npy"],
          read_runs(f, ["k1_x_5_3.npy"], "ok-or-error"))
    sep = L("SeparableConvolution2D", "sep", nb_filter=5, nb_row=3, nb_col=3, activation="linear",
            border_mode="valid", subsample=[1, 1], depth_multiplier=2, dim_ordering="th", bias=True,
            **first([3, 7, 6]))
    for label, ws, tf, expect, attack in (
            ("2-weights", [("sep_depthwise_kernel", w(2, 3, 3, 3)), ("sep_pointwise_kernel", w(5, 6, 1, 1))], True,
             "error", "a SeparableConvolution2D with bias but 2 weights"),
            ("rank3", [("sep_depthwise_kernel", w(2, 3, 9)), ("sep_pointwise_kernel", w(5, 6, 1, 1)),
                       ("sep_b", w(5))], True, "error", "a 'th' depthwise kernel of rank 3"),
            ("theano", [("sep_depthwise_kernel", w(2, 3, 3, 3)), ("sep_pointwise_kernel", w(5, 6, 1, 1)),
                        ("sep_b", w(5))], False, "ok-or-error",
             "a SeparableConvolution2D in a Theano-named file (Keras 1 had it under TensorFlow only)")):
        f = write_k1(g, f"k1_sep_{label}.h5", seq(sep, L("Flatten", "fl")), {"sep": ws}, tf=tf)
        g.add(f"k1-w-sep-{label}", "k1", attack, [f, "k1_x_3_7_6.npy"], read_runs(f, ["k1_x_3_7_6.npy"], expect))
    # Mixed names: one ':0' makes the whole Theano file "TensorFlow": its kernels are no longer flipped
    f, inputs = edited(g, "cnn_tf", "k1_w_mixed-names.h5", lambda h: (
        h["model_weights/classifier"].move("classifier_b", "classifier_b:0"),
        h["model_weights/classifier"].attrs.__setitem__("weight_names", np.array([b"classifier_W",
                                                                                  b"classifier_b:0"]))))
    ref = keras2_twin(g, "cnn_tf")
    g.add("k1-w-mixed-names", "k1", "cnn_tf.h5 (Theano) with one weight renamed to end in ':0': Pare took the "
          "whole file for TensorFlow and left its kernels unflipped (other numbers, exit 0)",
          list(dict.fromkeys([f, ref, *inputs])), read_runs(f, inputs) + [verify(ref, f, inputs, "ok-or-error")])


# MARK: configs

def generate_configs(g):
    w = Rng(22)
    save(g, "k1_x_6_6_3.npy", w(4, 6, 6, 3, scale=2))
    conv_w = {"c": [("c_W", w(3, 3, 3, 2)), ("c_b", w(2))]}
    pads = {
        # label: (padding, expect, attack)
        "dict-unknown-key": ({"top": 1, "bottom_pad": 1}, "error",
                             "{'top': 1, 'bottom_pad': 1}: Keras 1 raises on the unknown key; Pare padded 0 on top"),
        "dict-empty": ({}, "ok", "{} (Keras 1: no padding)"),
        "dict-negative": ({"top_pad": -1, "bottom_pad": 0, "left_pad": 0, "right_pad": 0}, "error", "top_pad -1"),
        "dict-string": ({"top_pad": "1", "bottom_pad": 1, "left_pad": 1, "right_pad": 1}, "error", "top_pad '1'"),
        "negative": ([-1, 1], "error", "(-1, 1)"),
        "flat4-negative": ([0, -1, 0, 0], "error", "(0, -1, 0, 0)"),
        "three": ([1, 2, 3], "error", "three numbers"),
        "huge": ([1 << 40, 1], "error", "2^40 rows"),
        "float": ([1.5, 1], "error", "1.5 rows"),
        "int": (1, "ok-or-error", "the int 1 (Keras 1: TypeError; Keras 2: all sides)"),
    }
    for label, (padding, expect, attack) in pads.items():
        f = write_k1(g, f"k1_zeropad_{label}.h5", seq(L("ZeroPadding2D", "zp", padding=padding, **first([6, 6, 3])),
                                                      conv2d("c", 2, 3, 3, dim="tf"), L("Flatten", "fl")), conv_w)
        g.add(f"k1-cfg-zeropad-{label}", "k1", f"ZeroPadding2D padding {attack}", [f, "k1_x_6_6_3.npy"],
              read_runs(f, ["k1_x_6_6_3.npy"], expect))
    # Keras 1's flat 4-tuple (top, bottom, left, right), checked against tf.keras 2's [[0, 1], [2, 3]]
    f = write_k1(g, "k1_zeropad_flat4.h5", seq(L("ZeroPadding2D", "zp", padding=[0, 1, 2, 3], **first([6, 6, 3])),
                                               conv2d("c", 2, 3, 3, dim="tf"), L("Flatten", "fl")), conv_w)
    ref = write_k2(g, "k1_zeropad_flat4_ref.h5", [
        k2("ZeroPadding2D", "zp", padding=[[0, 1], [2, 3]], data_format="channels_last"),
        k2conv("Conv2D", "c", 2, [3, 3]), k2("Flatten", "fl")], [6, 6, 3],
        {"c": [("kernel", conv_w["c"][0][1][::-1, ::-1].copy()), ("bias", conv_w["c"][1][1])]})
    g.add("k1-cfg-zeropad-flat4", "k1", "ZeroPadding2D padding (0, 1, 2, 3) (top, bottom, left, right) in a Theano "
          "model, against a tf.keras 2 reference", [f, ref, "k1_x_6_6_3.npy"],
          read_runs(f, ["k1_x_6_6_3.npy"], "ok") + [verify(ref, f, ["k1_x_6_6_3.npy"])])
    # dim_ordering and border_mode values
    save(g, "k1_x_3_4_4.npy", w(4, 3, 4, 4, scale=2))
    cw = {"c": [("c_W", w(2, 3, 2, 2)), ("c_b", w(2))]}
    for label, dim in {"default": "default", "channels-first": "channels_first", "upper": "TH", "number": 1,
                       "null": None, "list": ["th"]}.items():
        f = write_k1(g, f"k1_dim_{label}.h5", seq(conv2d("c", 2, 2, 2, dim=dim, **first([3, 4, 4])),
                                                  L("Flatten", "fl")), cw)
        g.add(f"k1-cfg-dim-{label}", "k1", f"dim_ordering {json.dumps(dim)}", [f, "k1_x_3_4_4.npy"],
              read_runs(f, ["k1_x_3_4_4.npy"]))
    f = write_k1(g, "k1_dim_mixed.h5", seq(conv2d("c", 2, 2, 2, dim="th", **first([3, 4, 4])),
                                           conv2d("c2", 2, 1, 1, dim="tf"), L("Flatten", "fl")),
                 {**cw, "c2": [("c2_W", w(1, 1, 3, 2)), ("c2_b", w(2))]})
    g.add("k1-cfg-dim-mixed", "k1", "a 'th' and a 'tf' convolution in one model", [f, "k1_x_3_4_4.npy"],
          read_runs(f, ["k1_x_3_4_4.npy"]))
    for label, mode in {"full": "full", "null": None, "upper": "SAME", "causal": "causal", "number": 1}.items():
        f = write_k1(g, f"k1_border_{label}.h5", seq(conv2d("c", 2, 3, 3, dim="tf", border=mode, **first([6, 6, 3])),
                                                     L("Flatten", "fl")), conv_w, tf=True)
        g.add(f"k1-cfg-border-{label}", "k1", f"border_mode {json.dumps(mode)}", [f, "k1_x_6_6_3.npy"],
              read_runs(f, ["k1_x_6_6_3.npy"]))
    # dim_ordering on layers that never had one: Keras 1 rejects the keyword ("Keyword argument not
    # understood"); Pare turned it into data_format and ran them channels-first
    save(g, "k1_x_6_5.npy", w(4, 6, 5, scale=2))
    foreign = {
        # label: (layers, weights, input file, attack)
        "flatten": ([conv2d("c", 2, 2, 2, dim="th", **first([3, 4, 4])), L("Flatten", "fl", dim_ordering="th")],
                    cw, "k1_x_3_4_4.npy", "Flatten(dim_ordering='th'): Pare flattened in channels-last order"),
        "conv1d": ([L("Convolution1D", "c", nb_filter=2, filter_length=3, activation="linear", border_mode="valid",
                      subsample_length=1, dim_ordering="th", bias=True, **first([6, 5])), L("Flatten", "fl")],
                   {"c": [("c_W", w(3, 1, 6, 2)), ("c_b", w(2))]}, "k1_x_6_5.npy",
                   "Convolution1D(dim_ordering='th'): Pare convolved along the features, steps as channels"),
        "maxpool1d": ([L("MaxPooling1D", "p", pool_length=2, stride=2, border_mode="valid", dim_ordering="th",
                         **first([6, 5])), L("Flatten", "fl"), dense("d", 2)],
                      {"d": [("d_W", w(12, 2)), ("d_b", w(2))]}, "k1_x_6_5.npy",
                      "MaxPooling1D(dim_ordering='th'): Pare pooled the features"),
        "gap1d": ([L("GlobalAveragePooling1D", "p", dim_ordering="th", **first([6, 5])), dense("d", 2)],
                  {"d": [("d_W", w(6, 2)), ("d_b", w(2))]}, "k1_x_6_5.npy",
                  "GlobalAveragePooling1D(dim_ordering='th'): Pare averaged the features"),
        "dense": ([dense("d", 2, dim_ordering="th", **first([4]))], {"d": [("d_W", w(4, 2)), ("d_b", w(2))]},
                  "k1_x_4.npy", "Dense(dim_ordering='th') (harmless, but not a Keras 1 config)"),
    }
    save(g, "k1_x_4.npy", w(4, 4, scale=2))
    for label, (layers, weights, x, attack) in foreign.items():
        f = write_k1(g, f"k1_foreign_dim_{label}.h5", seq(*layers), weights)
        g.add(f"k1-cfg-foreign-dim-{label}", "k1", attack, [f, x],
              read_runs(f, [x], "ok-or-error" if label == "dense" else "error"))
    # missing keys and model classes
    def without(entry, key):
        return {"class_name": entry["class_name"], "config": {k: v for k, v in entry["config"].items() if k != key}}
    dw = {"d": [("d_W", w(4, 2)), ("d_b", w(2))]}
    broken = {
        # label: (config, weights, names, expect, attack)
        "no-output-dim": (seq(without(dense("d", 2, **first([4])), "output_dim")), dw, None, "error",
                          "a Dense without output_dim"),
        "no-nb-row": (seq(without(conv2d("c", 2, 3, 3, dim="tf", **first([6, 6, 3])), "nb_row"), L("Flatten", "f")),
                      conv_w, None, "error", "a Convolution2D without nb_row"),
        "input-dim-only": (seq(without(dense("d", 2, input_dim=4), "batch_input_shape")), dw, None, "ok-or-error",
                           "a first Dense with input_dim but no batch_input_shape (Keras 1 built its input from it)"),
        "entry-no-config": (seq({"class_name": "Dense"}), {}, ["d"], "error", "a layer entry without config"),
        "entry-no-class": (seq({"config": {"name": "d"}}), {}, ["d"], "error", "a layer entry without class_name"),
        "sequential-no-layers": ({"class_name": "Sequential"}, {}, [], "error", "a Sequential without config"),
        "graph": ({"class_name": "Graph", "config": {}}, {}, [], "error", "Keras 1's Graph container"),
        "functional": ({"class_name": "Functional", "config": {"layers": []}}, {}, [], "error",
                       "a Keras 2.4 class name"),
        "bias-null-one-weight": (seq(dense("d", 2, bias=None, **first([4]))), {"d": dw["d"][:1]}, None,
                                 "ok-or-error", "bias null with W only (Keras 1: no bias)"),
        "bias-string-false": (seq(dense("d", 2, bias="false", **first([4]))), dw, None, "ok-or-error",
                              "bias 'false' (truthy in Keras 1: W and b)"),
    }
    for label, (config, weights, names, expect, attack) in broken.items():
        f = write_k1(g, f"k1_cfg_{label}.h5", config, weights, names=names)
        x = "k1_x_6_6_3.npy" if label == "no-nb-row" else "k1_x_4.npy"
        g.add(f"k1-cfg-{label}", "k1", attack, [f, x], read_runs(f, [x], expect))
    # a Sequential whose second layer is named like the input Keras 1 adds (Keras 1: two layers of one name)
    f = write_k1(g, "k1_cfg_input-name-taken.h5", seq(dense("d", 4, **first([4])),
                                                      L("Activation", "d_input", activation="relu")),
                 {"d": [("d_W", w(4, 4)), ("d_b", w(4))]})
    g.add("k1-cfg-input-name-taken", "k1", "a Sequential [Dense 'd', Activation 'd_input']: Keras 1 names its input "
          "'d_input' and refuses the model (names must be unique); Pare ran it with two layers 'd_input'",
          [f, "k1_x_4.npy"], read_runs(f, ["k1_x_4.npy"]))


# MARK: merges

def generate_merges(g):
    w = Rng(23)
    save(g, "k1_v4.npy", w(4, 4, scale=2))
    save(g, "k1_v3.npy", w(4, 3, scale=2))
    save(g, "k1_v5.npy", w(4, 5, scale=2))
    save(g, "k1_m34.npy", w(4, 3, 4, scale=2))
    functional = {
        # label: (input shape, Merge config, expect, attack)
        "cos": ([4], dict(mode="cos", dot_axes=[1, 1]), "error", "mode cos"),
        "lambda": ([4], dict(mode="lambda x: x[0]", mode_type="lambda"), "error", "a lambda mode"),
        "function": ([4], dict(mode=["code", None, None], mode_type="function"), "error", "a function mode"),
        "mode-null": ([4], dict(mode=None), "error",
                      "mode null (Keras 1: 'Invalid merge mode'; Pare summed the inputs)"),
        "mode-5": ([4], dict(mode=5), "error", "mode 5 (Keras 1 refuses; Pare summed)"),
        "mode-missing": ([4], {}, "ok", "no mode key (Keras 1's default 'sum')"),
        "mode-type-null": ([4], dict(mode="sum", mode_type=None), "ok", "mode_type null (raw)"),
        "dot-3d": ([3, 4], dict(mode="dot", dot_axes=[2, 2]), "error", "dot over axes [2, 2] of 3-D inputs"),
        "dot-3d-axes-1": ([3, 4], dict(mode="dot", dot_axes=[1, 1]), "error", "dot over axes [1, 1] of 3-D inputs"),
        "dot-axes-0": ([4], dict(mode="dot", dot_axes=[0, 0]), "error", "dot over the batch axis"),
        "dot-axes-string": ([4], dict(mode="dot", dot_axes="1"), "error", "dot_axes '1'"),
        "dot-axes-three": ([4], dict(mode="dot", dot_axes=[1, 1, 1]), "error", "dot_axes [1, 1, 1]"),
        "dot-axes-nested": ([4], dict(mode="dot", dot_axes=[[1], [1]]), "error", "dot_axes [[1], [1]]"),
        "dot-axes-1-minus-1": ([4], dict(mode="dot", dot_axes=[1, -1]), "ok", "dot_axes [1, -1] of vectors"),
        "dot-axes-int": ([4], dict(mode="dot", dot_axes=-1), "ok", "dot_axes -1 (an int)"),
        "concat-axis-0": ([4], dict(mode="concat", concat_axis=0), "error", "concat along the batch axis"),
        "concat-axis-2^62": ([4], dict(mode="concat", concat_axis=1 << 62), "error", "concat_axis 2^62"),
        "concat-axis--2^62": ([4], dict(mode="concat", concat_axis=-(1 << 62)), "error", "concat_axis -2^62"),
        "concat-axis-string": ([4], dict(mode="concat", concat_axis="1"), "error", "concat_axis '1'"),
        "concat-axis-null": ([4], dict(mode="concat", concat_axis=None), "error", "concat_axis null"),
        "concat-axis-1-3d": ([3, 4], dict(mode="concat", concat_axis=1), "ok", "concat_axis 1 of 3-D inputs"),
        "concat-axis--2-3d": ([3, 4], dict(mode="concat", concat_axis=-2), "ok", "concat_axis -2 of 3-D inputs"),
    }
    for label, (shape, mcfg, expect, attack) in functional.items():
        config = model("m", [inp("a", shape), inp("b", shape), node("Merge", "mg", [["a", "b"]], **{**MERGE, **mcfg})],
                       ["a", "b"], ["mg"])
        f = write_k1(g, f"k1_merge_{label}.h5", config)
        x = "k1_m34.npy" if len(shape) == 2 else "k1_v4.npy"
        g.add(f"k1-merge-{label}", "k1", f"a functional Merge with {attack}", [f, x], read_runs(f, [x, x], expect))
    # shapes only known at run time, and one input
    for label, shapes, xs, attack in (
            ("dot-unknown-lengths", ([None], [None]), ("k1_v4.npy", "k1_v3.npy"),
             "dot of (None,) inputs given 4 and 3"),
            ("dot-half-unknown", ([4], [None]), ("k1_v4.npy", "k1_v5.npy"), "dot of (4,) and (None,) given 4 and 5")):
        config = model("m", [inp("a", shapes[0]), inp("b", shapes[1]),
                             node("Merge", "mg", [["a", "b"]], **{**MERGE, "mode": "dot", "dot_axes": [1, 1]})],
                       ["a", "b"], ["mg"])
        f = write_k1(g, f"k1_merge_{label}.h5", config)
        g.add(f"k1-merge-{label}", "k1", attack, [f, *xs], [run(["{pare}", "check", f], "ok"),
                                                           run(["{pare}", "run", f, *ins(xs)], "error", lacks=BUG)])
    for mode in ("concat", "sum"):
        config = model("m", [inp("x", [4]), node("Dense", "d", [["x"]], **dense("d", 4)["config"]),
                             node("Merge", "mg", [["d"]], **{**MERGE, "mode": mode})], ["x"], ["mg"])
        f = write_k1(g, f"k1_merge_one-input-{mode}.h5", config, {"d": [("d_W", w(4, 4)), ("d_b", w(4))]})
        g.add(f"k1-merge-one-input-{mode}", "k1", f"a functional Merge '{mode}' of one input (Keras 1: 'Merge must be "
              "called on a list of tensors (at least 2)')", [f, "k1_v4.npy"], read_runs(f, ["k1_v4.npy"]))
    generate_sequential_merges(g, w)


def generate_sequential_merges(g, w):
    def branch(name, units=3, shape=(4,), extra=()):
        return seq(dense(name, units, **first(list(shape))), *extra)

    def merge(branches, mode="concat", name="mg"):
        return L("Merge", name, **{**MERGE, "mode": mode}, layers=branches)
    wa, wb = [("a_W", w(4, 3)), ("a_b", w(3))], [("b_W", w(4, 3)), ("b_b", w(3))]
    out6 = {"out": [("out_W", w(6, 2)), ("out_b", w(2))]}
    cases = {
        # label: (config, weights, layer_names or None, inputs, expect, attack)
        "one-branch": (seq(merge([branch("a")]), dense("out", 2)), {"a": wa, "out": [("out_W", w(3, 2)),
                                                                                      ("out_b", w(2))]},
                       None, 1, "error", "a Sequential Merge of one branch (Keras 1: 'A Merge should only be applied "
                                         "to a list of layers with at least 2 elements'; Pare concatenated one)"),
        "zero-branches": (seq(merge([]), dense("out", 2, **first([4]))), {"out": [("out_W", w(4, 2)),
                                                                                   ("out_b", w(2))]},
                          ["out"], 1, "error", "a Sequential Merge of no branches"),
        "model-branch": (seq(merge([branch("a"), model("bm", [inp("bi", [4]), node("Dense", "bd", [["bi"]],
                                                                                     **dense("bd", 3)["config"])],
                                                          ["bi"], ["bd"])]), dense("out", 2)),
                         {"a": wa, "bd": wb, "out": out6["out"]}, ["a", "bd", "out"], 2, "error",
                         "a Merge branch that is a Model"),
        "nested-merge": (seq(merge([seq(merge([branch("a"), branch("b")], "sum", "inner")), branch("c")]),
                             dense("out", 2)), {"a": wa, "b": wb, "c": [("c_W", w(4, 3)), ("c_b", w(3))],
                                                **out6}, None, 2, "error", "a Merge branch that starts with a Merge"),
        "no-input-shape": (seq(merge([branch("a"), seq(dense("c", 3))]), dense("out", 2)),
                           {"a": wa, "c": [("c_W", w(4, 3)), ("c_b", w(3))], **out6}, None, 2, "error",
                           "a Merge branch without batch_input_shape"),
        "same-branch-twice": (seq(merge([branch("a"), branch("a")]), dense("out", 2)), {"a": wa, **out6},
                              ["a", "a", "out"], 2, "error", "the same branch (layer 'a') twice"),
        "input-name-taken": (seq(merge([branch("a"), branch("b", extra=[L("Activation", "a_input",
                                                                          activation="relu")])]), dense("out", 2)),
                             {"a": wa, "b": wb, **out6}, None, 2, "error",
                             "a branch layer named 'a_input', the input Pare makes for branch 'a'"),
        "in-the-middle": (seq(dense("first", 4, **first([4])), merge([branch("a"), branch("b")]), dense("out", 2)),
                          {"first": [("first_W", w(4, 4)), ("first_b", w(4))], "a": wa, "b": wb, **out6},
                          ["first", "a", "b", "out"], 1, "error", "a Merge with branches after a Sequential's first "
                                                                   "layer"),
        "inputlayer-branch": (seq(merge([branch("a"), seq(L("InputLayer", "ii", sparse=False, **first([4])),
                                                          dense("d2", 3))]), dense("out", 2)),
                              {"a": wa, "d2": [("d2_W", w(4, 3)), ("d2_b", w(3))], **out6}, None, 2, "ok",
                              "a branch starting with an explicit InputLayer (Keras 1 loads it: Sequential.add uses "
                              "the InputLayer's own node; Pare put its own input before it and could not run it)"),
    }
    for label, (config, weights, names, n_inputs, expect, attack) in cases.items():
        f = write_k1(g, f"k1_seqmerge_{label}.h5", config, weights, names=names)
        xs = ["k1_v4.npy"] * n_inputs
        g.add(f"k1-seqmerge-{label}", "k1", attack, [f, "k1_v4.npy"], read_runs(f, xs, expect))
    # a Sequential-with-Merge inside a Model, called on two inputs
    inner = {"name": "sm", "class_name": "Sequential", "config": [merge([branch("a"), branch("b")])],
             "inbound_nodes": [[["x1", 0, 0], ["x2", 0, 0]]]}
    config = model("m", [inp("x1", [4]), inp("x2", [4]), inner,
                         node("Dense", "out", [[("sm", 1, 0)]], **dense("out", 2)["config"])], ["x1", "x2"], ["out"])
    f = write_k1(g, "k1_seqmerge_nested.h5", config, {"sm": wa + wb, **out6}, names=["x1", "x2", "sm", "out"])
    g.add("k1-seqmerge-nested", "k1", "a Sequential-with-Merge nested in a Model", [f, "k1_v4.npy"],
          read_runs(f, ["k1_v4.npy", "k1_v4.npy"]))


# MARK: Theano's padding where Pare does not look, nested weights

def generate_theano(g):
    w = Rng(24)
    save(g, "k1_x_2_6_6_3.npy", w(4, 2, 6, 6, 3, scale=2))
    save(g, "k1_x_5_5_3.npy", w(4, 5, 5, 3, scale=2))
    save(g, "k1_x_3_5_5.npy", w(4, 3, 5, 5, scale=2))
    cases = {}
    # top level: refused (the guard the others lack)
    cases["pool-same"] = (seq(pool("MaxPooling2D", "p", (2, 2), (2, 2), "same", **first([5, 5, 3])), L("Flatten", "f"),
                              dense("d", 3)), {"d": [("d_W", w(27, 3)), ("d_b", w(3))]}, "k1_x_5_5_3.npy", "error",
                          "a top-level Theano MaxPooling2D 'same'")
    cases["conv-same-even"] = (seq(conv2d("c", 2, 2, 2, dim="tf", border="same", **first([5, 5, 3])),
                                   L("Flatten", "f")), {"c": [("c_W", w(2, 2, 3, 2)), ("c_b", w(2))]},
                               "k1_x_5_5_3.npy", "error", "a top-level Theano 2x2 'same' convolution")
    cases["td-pool-same"] = (
        seq(L("TimeDistributed", "td", **first([2, 6, 6, 3]), layer={"class_name": "MaxPooling2D", "config": pool(
            "MaxPooling2D", "p", (2, 2), (2, 2), "same")["config"]}), L("Flatten", "f"), dense("d", 3)),
        {"d": [("d_W", w(54, 3)), ("d_b", w(3))]}, "k1_x_2_6_6_3.npy", "error",
        "TimeDistributed(MaxPooling2D 2x2 stride 2 'same') in a Theano model: Theano pads one row before (windows "
        "-1..0, 1..2, 3..4), TensorFlow none; Pare checks 'same' on top-level layers only and ran it")
    cases["td-conv-same-s2"] = (
        seq(L("TimeDistributed", "td", **first([2, 6, 6, 3]), layer={"class_name": "Convolution2D", "config": conv2d(
            "c", 2, 3, 3, dim="tf", border="same", sub=(2, 2))["config"]}), L("Flatten", "f")),
        {"td": [("c_W", w(3, 3, 3, 2)), ("c_b", w(2))]}, "k1_x_2_6_6_3.npy", "error",
        "TimeDistributed(Convolution2D 3x3 stride 2 'same', tf) trained under Theano: not checked, ran")
    nested = {"name": "inner", "class_name": "Sequential", "inbound_nodes": [[["x", 0, 0]]],
              "config": [pool("MaxPooling2D", "p", (2, 2), (2, 2), "same", **first([5, 5, 3]))]}
    cases["nested-pool-same"] = (
        model("m", [inp("x", [5, 5, 3]), nested, node("Flatten", "f", [[("inner", 1, 0)]]),
                    node("Dense", "d", [["f"]], **dense("d", 3)["config"])], ["x"], ["d"]),
        {"d": [("d_W", w(27, 3)), ("d_b", w(3))]}, "k1_x_5_5_3.npy", "error",
        "a nested Sequential holding a MaxPooling2D 'same' in a Theano model: not checked, ran")
    # a nested Sequential whose layer shares its name: its weights converted as that layer's top-level entry
    collide = {"name": "seq", "class_name": "Sequential", "inbound_nodes": [[["x", 0, 0]]],
               "config": [conv2d("seq", 3, 3, 3, dim="th", **first([3, 5, 5]))]}
    cases["nested-name-collision"] = (
        model("m", [inp("x", [3, 5, 5]), collide, node("Flatten", "f", [[("seq", 1, 0)]])], ["x"], ["f"]),
        {"seq": [("seq_W", w(3, 3, 3, 3)), ("seq_b", w(3))]}, "k1_x_3_5_5.npy", "error",
        "a nested Sequential 'seq' holding a 'th' Convolution2D also named 'seq': Pare took the nested model's "
        "weights for the convolution's, flipped but did not transpose the (3, 3, 3, 3) kernel, and ran other "
        "numbers (max abs 19 against Keras 1's)")
    plain = {"name": "seq", "class_name": "Sequential", "inbound_nodes": [[["x", 0, 0]]],
             "config": [conv2d("c", 3, 3, 3, dim="th", **first([3, 5, 5]))]}
    cases["nested-weights"] = (
        model("m", [inp("x", [3, 5, 5]), plain, node("Flatten", "f", [[("seq", 1, 0)]])], ["x"], ["f"]),
        {"seq": [("c_W", w(3, 3, 3, 3)), ("c_b", w(3))]}, "k1_x_3_5_5.npy", "error",
        "a nested Sequential with weights (not converted: refused)")
    # a functional entry whose name differs from its config's name
    entry = {"name": "d", "class_name": "Convolution2D", "config": conv2d("conv", 2, 3, 3)["config"],
             "inbound_nodes": [[["x", 0, 0]]]}
    for label, group in (("entry-name-differs", "d"), ("entry-name-differs-config", "conv")):
        config = model("m", [inp("x", [3, 5, 5]), entry, node("Flatten", "f", [["d"]])], ["x"], ["f"])
        f = write_k1(g, f"k1_theano_{label}.h5", config, {group: [("conv_W", w(2, 3, 3, 3)), ("conv_b", w(2))]},
                     names=["x", group, "f"])
        g.add(f"k1-theano-{label}", "k1", f"a 'th' convolution entry named 'd' whose config says 'conv', weights "
              f"under '{group}'", [f, "k1_x_3_5_5.npy"], read_runs(f, ["k1_x_3_5_5.npy"]))
    for label, (config, weights, x, expect, attack) in cases.items():
        f = write_k1(g, f"k1_theano_{label}.h5", config, weights)
        g.add(f"k1-theano-{label}", "k1", attack, [f, x], read_runs(f, [x], expect))
    # the same 'same' convolution trained under TensorFlow (':0' names): Keras 2's padding, no refusal
    kw, kb = w(3, 3, 3, 2), w(2)
    f = write_k1(g, "k1_tf_conv_same_s2.h5", seq(conv2d("c", 2, 3, 3, dim="tf", border="same", sub=(2, 2),
                                                        **first([6, 6, 3])), L("Flatten", "f")),
                 {"c": [("c_W", kw), ("c_b", kb)]}, tf=True)
    ref = write_k2(g, "k1_tf_conv_same_s2_ref.h5", [k2conv("Conv2D", "c", 2, [3, 3], [2, 2], "same"),
                                                    k2("Flatten", "f")], [6, 6, 3],
                   {"c": [("kernel", kw), ("bias", kb)]})
    g.add("k1-theano-tf-names-same-s2", "k1", "a 3x3 stride-2 'same' convolution with ':0' weight names (TensorFlow: "
          "no flip, TensorFlow's padding), against tf.keras 2", [f, ref, "k1_x_6_6_3.npy"],
          read_runs(f, ["k1_x_6_6_3.npy"], "ok") + [verify(ref, f, ["k1_x_6_6_3.npy"])])


# MARK: weights-only Keras 1 files with --config

def keras2_twin(g, label):
    """The Keras 1 fixture as Pare writes it for tf.keras 2 (a reference that prints no Keras 1 notes), or the
    Keras 1 file itself when Pare cannot write it (k1-base-… then fails)."""
    out = f"k1_{label}_k2.h5"
    r = subprocess.run([g.pare, "convert", g.path(fx(label)), g.path(out)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return out if r.returncode == 0 and os.path.exists(g.path(out)) else fx(label)


def generate_weights_only(g):
    ref = keras2_twin(g, "cnn_tf")
    for label in ("cnn_tf", "cnn_th", "rnn_lstm"):
        f, inputs = fx(label), fx_inputs(label)
        wonly = f"k1_{label}_weights_only.h5"
        with h5py.File(g.fixture(f"keras1/{label}.h5"), "r") as src, h5py.File(g.path(wonly), "w") as out:
            mw = src["model_weights"]
            out.attrs["layer_names"] = mw.attrs["layer_names"]
            for k in mw:
                src.copy(mw[k], out, name=k)
        attack = (f"{label}.h5's weights as Keras 1's save_weights writes them (layer groups at the root, no "
                  f"keras_version) with --config {label}.h5")
        if label == "cnn_tf":
            attack += (": the weights are not converted, the Theano kernels not flipped, and Pare ran other "
                       "numbers (max abs 0.61 against Keras 1's output)")
        runs = [run(["{pare}", "check", wonly], "ok"),
                run(["{pare}", "run", wonly, "--config", f, *ins(inputs)], "ok-or-error", names=[wonly, f], lacks=BUG),
                run(["{pare}", "convert", wonly, "o.h5", "--config", f], "ok-or-error", names=[wonly, f],
                    outputs=["o.h5"], lacks=BUG)]
        files = [wonly, f, *inputs]
        if label == "cnn_tf":
            runs.append(verify(ref, wonly, inputs, "ok-or-error", extra=["--config", f]))
            files.append(ref)
        g.add(f"k1-weights-only-{label.replace('_', '-')}", "k1", attack, list(dict.fromkeys(files)), runs)
    # Keras 1's model.to_json() as --config
    with h5py.File(g.fixture("keras1/cnn_tf.h5"), "r") as src:
        c = json.loads(src.attrs["model_config"])
    with open(g.path("k1_cnn_tf_to_json.json"), "w") as out:
        json.dump(dict(c, keras_version="1.2.2"), out)
    g.add("k1-weights-only-json-config", "k1", "cnn_tf's Keras 1 weights with --config Keras 1's model.to_json()",
          ["k1_cnn_tf_weights_only.h5", "k1_cnn_tf_to_json.json", *fx_inputs("cnn_tf")],
          [run(["{pare}", "run", "k1_cnn_tf_weights_only.h5", "--config", "k1_cnn_tf_to_json.json",
                *ins(fx_inputs("cnn_tf"))], "error", names=["k1_cnn_tf_weights_only.h5", "k1_cnn_tf_to_json.json"],
               lacks=BUG)])


# MARK: channels-first runtime, against tf.keras 2 references

def generate_channels_first(g):
    w = Rng(25)
    x2, x3 = "k1_x_3_7_6.npy", save(g, "k1_x_3_4_5_6.npy", w(3, 3, 4, 5, 6, scale=2))
    flip2 = lambda k: k.transpose(2, 3, 1, 0)[::-1, ::-1].copy()  # noqa: E731 ('th', Theano) -> Keras 2
    cases = {}
    # 2-D 'th' pipeline: formatless padding / upsampling / cropping take 'th' from the model
    W, b = w(4, 3, 3, 2), w(4)
    cases["2d"] = (
        seq(L("ZeroPadding2D", "zp", padding=[1, 2], **first([3, 7, 6])), conv2d("conv", 4, 3, 2, activation="relu"),
            L("UpSampling2D", "up", size=[2, 1]), L("Cropping2D", "crop", cropping=[[1, 0], [0, 2]]),
            pool("MaxPooling2D", "mp", (2, 2), (1, 2), dim="th"), pool("AveragePooling2D", "ap", (3, 2), (2, 1),
                                                                       dim="th"), L("Flatten", "fl")),
        {"conv": [("conv_W", W), ("conv_b", b)]}, False,
        [k2("Permute", "p1", dims=[2, 3, 1]), k2("ZeroPadding2D", "zp", padding=[[1, 1], [2, 2]],
                                                 data_format="channels_last"),
         k2conv("Conv2D", "conv", 4, [3, 2], activation="relu"),
         k2("UpSampling2D", "up", size=[2, 1], data_format="channels_last", interpolation="nearest"),
         k2("Cropping2D", "crop", cropping=[[1, 0], [0, 2]], data_format="channels_last"),
         k2("MaxPooling2D", "mp", pool_size=[2, 2], strides=[1, 2], padding="valid", data_format="channels_last"),
         k2("AveragePooling2D", "ap", pool_size=[3, 2], strides=[2, 1], padding="valid", data_format="channels_last"),
         k2("Permute", "p2", dims=[3, 1, 2]), k2("Flatten", "fl")],
        [3, 7, 6], {"conv": [("kernel", flip2(W)), ("bias", b)]}, x2,
        "ZeroPadding2D, Convolution2D, UpSampling2D, Cropping2D, MaxPooling2D, AveragePooling2D, 'th' (Theano)")
    cases["2d-global"] = (
        seq(conv2d("conv", 4, 3, 2, **first([3, 7, 6])), L("GlobalMaxPooling2D", "gp", dim_ordering="th")),
        {"conv": [("conv_W", W), ("conv_b", b)]}, False,
        [k2("Permute", "p1", dims=[2, 3, 1]), k2conv("Conv2D", "conv", 4, [3, 2]),
         k2("GlobalMaxPooling2D", "gp", data_format="channels_last")],
        [3, 7, 6], {"conv": [("kernel", flip2(W)), ("bias", b)]}, x2, "Convolution2D then GlobalMaxPooling2D, 'th'")
    W3, b3 = w(2, 3, 2, 3, 2), w(2)
    cases["3d"] = (
        seq(L("ZeroPadding3D", "zp", padding=[1, 0, 1], **first([3, 4, 5, 6])),
            L("Convolution3D", "conv", nb_filter=2, kernel_dim1=2, kernel_dim2=3, kernel_dim3=2, activation="linear",
              border_mode="valid", subsample=[1, 2, 1], dim_ordering="th", bias=True),
            L("UpSampling3D", "up", size=[1, 2, 1]), L("Cropping3D", "crop", cropping=[[0, 1], [1, 0], [0, 0]]),
            pool("MaxPooling3D", "mp", (2, 2, 2), (1, 1, 2), dim="th"), L("Flatten", "fl")),
        {"conv": [("conv_W", W3), ("conv_b", b3)]}, False,
        [k2("Permute", "p1", dims=[2, 3, 4, 1]), k2("ZeroPadding3D", "zp", padding=[[1, 1], [0, 0], [1, 1]],
                                                    data_format="channels_last"),
         k2conv("Conv3D", "conv", 2, [2, 3, 2], [1, 2, 1]),
         k2("UpSampling3D", "up", size=[1, 2, 1], data_format="channels_last"),
         k2("Cropping3D", "crop", cropping=[[0, 1], [1, 0], [0, 0]], data_format="channels_last"),
         k2("MaxPooling3D", "mp", pool_size=[2, 2, 2], strides=[1, 1, 2], padding="valid",
            data_format="channels_last"),
         k2("Permute", "p2", dims=[4, 1, 2, 3]), k2("Flatten", "fl")],
        [3, 4, 5, 6], {"conv": [("kernel", W3.transpose(2, 3, 4, 1, 0)[::-1, ::-1, ::-1].copy()), ("bias", b3)]}, x3,
        "ZeroPadding3D, Convolution3D, UpSampling3D, Cropping3D, MaxPooling3D, 'th' (Theano)")
    D, P, bs = w(2, 3, 3, 3), w(5, 6, 1, 1), w(5)
    cases["separable"] = (
        seq(L("SeparableConvolution2D", "sep", nb_filter=5, nb_row=3, nb_col=3, activation="linear",
              border_mode="valid", subsample=[1, 1], depth_multiplier=2, dim_ordering="th", bias=True,
              **first([3, 7, 6])), L("Flatten", "fl")),
        {"sep": [("sep_depthwise_kernel", D), ("sep_pointwise_kernel", P), ("sep_b", bs)]}, True,
        [k2("Permute", "p1", dims=[2, 3, 1]), k2conv("SeparableConv2D", "sep", 5, [3, 3], depth_multiplier=2),
         k2("Permute", "p2", dims=[3, 1, 2]), k2("Flatten", "fl")],
        [3, 7, 6], {"sep": [("depthwise_kernel", D.transpose(2, 3, 1, 0)),
                            ("pointwise_kernel", P.transpose(2, 3, 1, 0)), ("bias", bs)]}, x2,
        "SeparableConvolution2D 'th' (TensorFlow names)")
    Wa, ba, Ws, bs2 = w(2, 3, 3, 3), w(2), w(2, 2, 3, 3), w(2)
    cases["atrous-same"] = (
        seq(L("AtrousConvolution2D", "at", nb_filter=2, nb_row=3, nb_col=3, activation="linear", border_mode="valid",
              subsample=[1, 1], atrous_rate=[2, 1], dim_ordering="th", bias=True, **first([3, 7, 6])),
            conv2d("cs", 2, 3, 3, border="same"), L("Flatten", "fl")),
        {"at": [("at_W", Wa), ("at_b", ba)], "cs": [("cs_W", Ws), ("cs_b", bs2)]}, False,
        [k2("Permute", "p1", dims=[2, 3, 1]), k2conv("Conv2D", "at", 2, [3, 3], dilation=[2, 1]),
         k2conv("Conv2D", "cs", 2, [3, 3], padding="same"), k2("Permute", "p2", dims=[3, 1, 2]), k2("Flatten", "fl")],
        [3, 7, 6], {"at": [("kernel", flip2(Wa)), ("bias", ba)], "cs": [("kernel", flip2(Ws)), ("bias", bs2)]}, x2,
        "AtrousConvolution2D (atrous_rate (2, 1)) and a 3x3 stride-1 'same' Convolution2D, 'th' (Theano)")
    Wt, bt = w(3, 2, 3, 2), w(2)
    cases["td-conv"] = (
        seq(L("TimeDistributed", "td", **first([2, 6, 5, 3]), layer={"class_name": "Convolution2D", "config": conv2d(
            "c", 2, 3, 2, dim="tf")["config"]}), L("Flatten", "fl")),
        {"td": [("c_W", Wt), ("c_b", bt)]}, False,
        [k2("TimeDistributed", "td", layer={"class_name": "Conv2D", "config": k2conv("Conv2D", "c", 2, [3, 2])[
            "config"]}), k2("Flatten", "fl")],
        [2, 6, 5, 3], {"td": [("kernel", Wt[::-1, ::-1].copy()), ("bias", bt)]},
        save(g, "k1_x_2_6_5_3.npy", w(3, 2, 6, 5, 3, scale=2)), "TimeDistributed(Convolution2D 'tf') (Theano: flipped)")
    n, d = 4, 3
    fw = [[w(d, n), w(n, n), w(n)] for _ in range(3)]
    bw = [[w(d, n), w(n, n), w(n)] for _ in range(3)]
    per_gate = lambda gs, p: [(f"{p}_{part}_{gate}", a) for gate, G in zip("zrh", gs)  # noqa: E731
                              for part, a in zip("WUb", G)]
    cat = lambda gs, i: np.concatenate([G[i] for G in gs], axis=-1)  # noqa: E731
    gru = L("GRU", "gru_1", return_sequences=True, go_backwards=False, stateful=False, unroll=False,
            consume_less="mem", input_dim=d, input_length=None, output_dim=n, activation="tanh",
            inner_activation="hard_sigmoid", dropout_W=0.0, dropout_U=0.0)
    rnn = dict(activation="tanh", recurrent_activation="hard_sigmoid", use_bias=True, return_state=False,
               stateful=False, unroll=False, dropout=0.0, recurrent_dropout=0.0)
    cases["bigru-mem"] = (
        seq(L("Bidirectional", "bi", layer=gru, merge_mode="sum", **first([5, d]))),
        {"bi": per_gate(fw, "forward_gru_1") + per_gate(bw, "backward_gru_1")}, False,
        [k2("Bidirectional", "bi", merge_mode="sum", layer={"class_name": "GRU", "config": k2(
            "GRU", "g", units=n, return_sequences=True, go_backwards=False, reset_after=False, implementation=1,
            **rnn)["config"]})],
        [5, d], {"bi": [("forward_g/gru_cell/kernel", cat(fw, 0)), ("forward_g/gru_cell/recurrent_kernel", cat(fw, 1)),
                        ("forward_g/gru_cell/bias", cat(fw, 2)), ("backward_g/gru_cell/kernel", cat(bw, 0)),
                        ("backward_g/gru_cell/recurrent_kernel", cat(bw, 1)),
                        ("backward_g/gru_cell/bias", cat(bw, 2))]},
        "k1_x_5_3.npy", "Bidirectional(GRU consume_less 'mem', per-gate z r h), merge_mode 'sum'")
    lg = [[w(d, n), w(n, n), w(n)] for _ in range(4)]  # i c f o
    lstm = L("LSTM", "lstm", return_sequences=False, go_backwards=True, stateful=False, unroll=False,
             consume_less="mem", output_dim=n, activation="tanh", inner_activation="sigmoid", forget_bias_init="one",
             dropout_W=0.0, dropout_U=0.0, **first([5, d]))
    order = [lg[0], lg[2], lg[1], lg[3]]
    cases["lstm-mem"] = (
        seq(lstm), {"lstm": [(f"lstm_{part}_{gate}", a) for gate, G in zip("icfo", lg) for part, a in zip("WUb", G)]},
        False, [k2("LSTM", "lstm", units=n, return_sequences=False, go_backwards=True, unit_forget_bias=True,
                   implementation=1, **dict(rnn, recurrent_activation="sigmoid"))],
        [5, d], {"lstm": [("lstm_cell/kernel", cat(order, 0)), ("lstm_cell/recurrent_kernel", cat(order, 1)),
                          ("lstm_cell/bias", cat(order, 2))]},
        "k1_x_5_3.npy", "LSTM consume_less 'mem' (per-gate i c f o), go_backwards")
    for label, (config, weights, tf, ref_layers, shape, ref_weights, x, attack) in cases.items():
        f = write_k1(g, f"k1_cf_{label}.h5", config, weights, tf=tf)
        ref = write_k2(g, f"k1_cf_{label}_ref.h5", ref_layers, shape, ref_weights)
        g.add(f"k1-cf-{label}", "k1", f"{attack}, against a tf.keras 2 reference", [f, ref, x],
              [run(["{pare}", "check", f], "ok"), verify(ref, f, [x]),
               run(["{pare}", "convert", f, "o.keras", "--input", x], "ok", outputs=["o.keras"])])
    generate_twins(g, w)
    # runtime refusals: a mask reaching a 'th' convolution (Keras 1: the convolution does not support masking),
    # TimeDistributed of a 'th' convolution
    xm = w(4, 3, 4, 4, scale=2)
    xm[:, :, :, 1] = 0
    save(g, "k1_x_3_4_4_masked.npy", xm)
    f = write_k1(g, "k1_cf_mask.h5", seq(L("Masking", "mk", mask_value=0.0, **first([3, 4, 4])), conv2d("c", 2, 2, 2),
                                         L("Flatten", "fl")), {"c": [("c_W", w(2, 3, 2, 2)), ("c_b", w(2))]})
    g.add("k1-cf-mask", "k1", "Masking feeding a 'th' Convolution2D", [f, "k1_x_3_4_4_masked.npy"],
          [run(["{pare}", "run", f, "--input", "k1_x_3_4_4_masked.npy"], "error", lacks=BUG)])
    f = write_k1(g, "k1_cf_td_th.h5", seq(L("TimeDistributed", "td", **first([2, 3, 6, 6]), layer={
        "class_name": "Convolution2D", "config": conv2d("c", 2, 3, 3)["config"]}), L("Flatten", "fl")),
        {"td": [("c_W", w(2, 3, 3, 3)), ("c_b", w(2))]})
    save(g, "k1_x_2_3_6_6.npy", w(3, 2, 3, 6, 6, scale=2))
    g.add("k1-cf-td-th", "k1", "TimeDistributed(Convolution2D 'th'): the twin is not made for a wrapped layer",
          [f, "k1_x_2_3_6_6.npy"], [run(["{pare}", "check", f], "ok-or-error"),
                                    run(["{pare}", "run", f, "--input", "k1_x_2_3_6_6.npy"], "ok-or-error",
                                        lacks=BUG)])


def generate_twins(g, w):
    """The channels-last twins run for any file: tf.keras 2 layers written channels_first, against the same
    layers channels_last between Permutes."""
    x2, x1 = save(g, "k1_tw_x.npy", w(3, 3, 7, 6, scale=2)), save(g, "k1_tw_x1.npy", w(3, 3, 9, scale=2))
    cf, cl = "channels_first", "channels_last"
    twins = {
        # label: (layer of a data format, weights, input shape, input, Permute in, Permute out, attack)
        "conv2d-transpose": (lambda fmt: k2("Conv2DTranspose", "ct", filters=4, kernel_size=[3, 3], strides=[2, 1],
                                            padding="same", output_padding=None, data_format=fmt,
                                            dilation_rate=[1, 1], activation="linear", use_bias=True),
                             {"ct": [("kernel", w(3, 3, 4, 3)), ("bias", w(4))]}, [3, 7, 6], x2, [2, 3, 1], [3, 1, 2],
                             "Conv2DTranspose stride (2, 1) 'same'"),
        "depthwise": (lambda fmt: k2("DepthwiseConv2D", "dw", kernel_size=[3, 3], strides=[2, 2], padding="valid",
                                     depth_multiplier=2, data_format=fmt, dilation_rate=[1, 1], activation="linear",
                                     use_bias=True),
                      {"dw": [("depthwise_kernel", w(3, 3, 3, 2)), ("bias", w(6))]}, [3, 7, 6], x2, [2, 3, 1],
                      [3, 1, 2], "DepthwiseConv2D depth_multiplier 2, stride 2"),
        "gap-keepdims": (lambda fmt: k2("GlobalAveragePooling2D", "gp", data_format=fmt, keepdims=True), {},
                         [3, 7, 6], x2, [2, 3, 1], [3, 1, 2], "GlobalAveragePooling2D keepdims (output of the input's "
                                                               "rank)"),
        "flatten": (lambda fmt: k2("Flatten", "fl", data_format=fmt), {}, [3, 7, 6], x2, [2, 3, 1], None,
                    "Flatten(data_format) (Keras flattens channels-last)"),
        "conv1d-causal": (lambda fmt: k2("Conv1D", "c1", filters=5, kernel_size=[3], strides=[2], padding="causal",
                                         data_format=fmt, dilation_rate=[1], activation="linear", use_bias=True),
                          {"c1": [("kernel", w(3, 3, 5)), ("bias", w(5))]}, [3, 9], x1, [2, 1], [2, 1],
                          "Conv1D 'causal' stride 2"),
        "maxpool1d-same": (lambda fmt: k2("MaxPooling1D", "mp", pool_size=[2], strides=[2], padding="same",
                                          data_format=fmt), {}, [3, 9], x1, [2, 1], [2, 1], "MaxPooling1D 'same'"),
    }
    for label, (layer, weights, shape, x, p_in, p_out, attack) in twins.items():
        f = write_k2(g, f"k1_tw_{label}.h5", [layer(cf)], shape, weights)
        ref = write_k2(g, f"k1_tw_{label}_ref.h5", [k2("Permute", "p1", dims=p_in), layer(cl)] +
                       ([k2("Permute", "p2", dims=p_out)] if p_out else []), shape, weights)
        g.add(f"k1-cf-twin-{label}", "k1", f"tf.keras 2 {attack} channels_first (a twin), against channels_last "
              "between Permutes", [f, ref, x], [verify(ref, f, [x])])


# MARK: size

def write_many(g, name, config):
    names = layer_names(config)
    with h5py.File(g.path(name), "w", libver="latest") as f:  # attributes past 64 KiB
        f.attrs["keras_version"] = np.bytes_(K1)
        f.attrs["model_config"] = np.bytes_(json.dumps(config).encode())
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            lg = mw.create_group(n)
            if n.startswith("dense"):
                lg.attrs["weight_names"] = np.array([f"{n}_W".encode(), f"{n}_b".encode()])
                lg.create_dataset(f"{n}_W", data=np.eye(2, dtype=np.float32))
                lg.create_dataset(f"{n}_b", data=np.zeros(2, np.float32))
            else:
                lg.attrs["weight_names"] = np.array([], dtype=np.float64)
    return name


def generate_scale(g):
    w = Rng(26)
    save(g, "k1_x_2.npy", w(4, 2))
    n = 10000
    chain = seq(L("Activation", "a0", activation="relu", **first([2])),
                *[L("Activation", f"a{i}", activation="relu") for i in range(1, n)])
    write_many(g, "k1_chain_seq.h5", chain)
    layers = [inp("x", [2])] + [node("Activation", f"a{i}", [["x" if i == 0 else f"a{i - 1}"]], activation="relu")
                                for i in range(n)]
    write_many(g, "k1_chain_model.h5", model("m", layers, ["x"], [f"a{n - 1}"]))
    dense_chain = seq(dense("dense0", 2, **first([2])), *[dense(f"dense{i}", 2) for i in range(1, 5000)])
    write_many(g, "k1_chain_dense.h5", dense_chain)
    branches = [seq(L("Activation", f"b{i}", activation="relu", **first([2]))) for i in range(4000)]
    write_many(g, "k1_branches.h5", seq(L("Merge", "mg", **{**MERGE, "mode": "sum"}, layers=branches),
                                        L("Activation", "out", activation="linear")))
    for label, f, runs, attack in (
            ("chain-sequential", "k1_chain_seq.h5", [run(["{pare}", "run", "k1_chain_seq.h5", "--input", "k1_x_2.npy"],
                                                         "ok", timeout=25)], f"a Sequential of {n} Activations"),
            ("chain-model", "k1_chain_model.h5", [run(["{pare}", "run", "k1_chain_model.h5", "--input", "k1_x_2.npy"],
                                                      "ok", timeout=25)], f"a Model of {n} Activations"),
            ("chain-dense", "k1_chain_dense.h5", [run(["{pare}", "check", "k1_chain_dense.h5"], "ok", timeout=25)],
             "a Sequential of 5,000 Dense layers (10,000 weights converted)"),
            ("merge-4000-branches", "k1_branches.h5", [run(["{pare}", "check", "k1_branches.h5"], "ok", timeout=25)],
             "a Sequential Merge of 4,000 branches")):
        g.add(f"k1-size-{label}", "k1", attack, [f, "k1_x_2.npy"], runs)
    # nested Models: 150 deep (read), 400 deep (JSON deeper than Pare's reader allows)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    for depth in (150, 400):
        inner = model(f"m{depth}", [inp(f"i{depth}", [2]), node("Activation", "a", [[f"i{depth}"]],
                                                                 activation="relu")], [f"i{depth}"], ["a"])
        for d in range(depth - 1, 0, -1):
            inner = model(f"m{d}", [inp(f"i{d}", [2]), dict(inner, name=f"m{d + 1}",
                                                              inbound_nodes=[[[f"i{d}", 0, 0]]])],
                          [f"i{d}"], [(f"m{d + 1}", 1)])
        config = model("top", [inp("x", [2]), dict(inner, name="m1", inbound_nodes=[[["x", 0, 0]]])], ["x"],
                       [("m1", 1)])
        f = write_k1(g, f"k1_deep{depth}.h5", config, names=["x", "m1"], latest=True)
        g.add(f"k1-size-deep-{depth}", "k1", f"{depth} nested Models", [f, "k1_x_2.npy"],
              read_runs(f, ["k1_x_2.npy"], "ok" if depth == 150 else "error", timeout=25))
    # a 256 MiB 'th' kernel of zeros, gzip-compressed into a few hundred KiB, and its tf.keras 2 twin
    filters = channels = 2048
    shape = (filters, channels, 4, 4)
    config = seq(conv2d("c", filters, 4, 4, **first([channels, 6, 6])), L("Flatten", "f"))
    write_k1(g, "k1_big_kernel.h5", config, {"c": [("c_b", np.zeros(filters, np.float32))]})
    with h5py.File(g.path("k1_big_kernel.h5"), "r+") as f:
        lg = f["model_weights/c"]
        d = lg.create_dataset("c_W", shape=shape, dtype="f4", chunks=(64, 64, 4, 4), compression="gzip",
                              compression_opts=9)
        zeros = np.zeros((256, channels, 4, 4), np.float32)
        for i in range(0, filters, 256):
            d[i:i + 256] = zeros
        lg.attrs["weight_names"] = np.array([b"c_W", b"c_b"])
    write_k2(g, "k1_big_kernel_k2.h5", [k2("Conv2D", "c", filters=filters, kernel_size=[4, 4], strides=[1, 1],
                                           padding="valid", data_format="channels_first", dilation_rate=[1, 1],
                                           activation="linear", use_bias=True), k2("Flatten", "f")], [channels, 6, 6],
             {"c": [("bias", np.zeros(filters, np.float32))]})
    with h5py.File(g.path("k1_big_kernel_k2.h5"), "r+") as f:
        lg = f["model_weights/c"]
        d = lg.create_dataset("c/kernel:0", shape=(4, 4, channels, filters), dtype="f4", chunks=(4, 4, 64, 64),
                              compression="gzip", compression_opts=9)
        zeros = np.zeros((4, 4, 256, filters), np.float32)
        for i in range(0, channels, 256):
            d[:, :, i:i + 256] = zeros
        lg.attrs.create("weight_names", ["c/kernel:0", "c/bias:0"], dtype=STR)
    g.add("k1-size-big-kernel", "k1", "a 256 MiB 'th' Theano kernel of zeros compressed into a small file: the "
          "Keras 1 conversion (floats, transpose and flip element by element) must take about as long as reading "
          "the same tensor from a tf.keras 2 file (k1-size-big-kernel-k2)", ["k1_big_kernel.h5"],
          [run(["{pare}", "check", "k1_big_kernel.h5"], "ok", timeout=30)])
    g.add("k1-size-big-kernel-k2", "k1", "the control: the same 256 MiB kernel in a tf.keras 2 file",
          ["k1_big_kernel_k2.h5"], [run(["{pare}", "check", "k1_big_kernel_k2.h5"], "ok", timeout=30)])


def generate(g):
    write_bases(g)
    generate_bases(g)
    generate_notes_and_usage(g)
    generate_readback(g)
    generate_versions(g)
    generate_bn(g)
    generate_weights(g)
    generate_configs(g)
    generate_merges(g)
    generate_theano(g)
    generate_weights_only(g)
    generate_channels_first(g)
    generate_scale(g)
