"""Class "tfm": transformer layers (MultiHeadAttention, Attention / AdditiveAttention, EinsumDense,
LayerNormalization / RMSNormalization / GroupNormalization / UnitNormalization, Softmax over several
axes or with a mask= tensor, Keras 3's newer activations and glu) and attention-head pruning, edited
the way an attacker's review did: num_heads / key_dim / output_shape far past the weights,
attention_axes that repeat once resolved, calls passing tensors under unknown names or twice, Keras 2
`[name, node, tensor]` keyword references past what a layer has, attention masks of the wrong rank or
shape (statically, and only at run time through open dimensions), EinsumDense equations Keras would
refuse (empty operands, repeated letters, letters only in the output, `...` where einsum has none,
more than 16 axes) and equations that sum the batch axis away (a tensor whose first axis is not the
batch: MultiHeadAttention's projections then read past the end of its value with sgemm, its mask
and Attention index past their ends), Attention over rank-4 inputs whose key has fewer leading
groups than the query (tf.keras 2 broadcasts it), normalization and softmax axis lists (empty, 0,
huge, repeated once resolved), GroupNormalization groups that do not divide the channels, zero-length
sequences and NaN/Inf inputs, quadratic attention over 1,500 steps (the work is quadratic in the
sequence and not capped, as in Keras: README), head
selections (--keep 0, --drop 99, a global --ratio that would leave no head, heads whose scores are an
output), a nested model and a shared layer holding MultiHeadAttention, Softmax mask= producers that
pruning must leave whole, and stray or missing variables in a .keras archive's MultiHeadAttention.

The bases are the zoo fixtures (attention, dense_attention, einsum, norm; Keras 3 and tf.keras 2)
and the vit fixture; each hostile file edits one thing in a copy's `model_config` attribute (or its
model.weights.h5), or is a small functional model written here. Each base is first run unedited
("tfm-base-…", expected to work), so an error below is the edit's and not the inputs'.

Shapes that depend on open dimensions are only seen when a batch reaches them: `check` and `convert`
may pass those files, `run`, `prune` and `verify` must refuse them in one line.
"""
import json

import h5py
import numpy as np

import base
from common import run

STR = h5py.string_dtype()
ZOO = {
    # label: (fixture, number of inputs)
    "att": ("attention_zoo", 6),
    "att2": ("attention_zoo_tfkeras2", 6),
    "dot": ("dense_attention_zoo", 4),
    "dot2": ("dense_attention_zoo_tfkeras2", 4),
    "ein": ("einsum_zoo", 4),
    "norm": ("norm_zoo", 2),
}
VIT_IN = ["tfm_vit_x.npy", "tfm_vit_p.npy"]


def zoo_file(zoo):
    return f"tfm_{zoo}.h5"


def zoo_inputs(zoo):
    return [f"tfm_{zoo}_in{i}.npy" for i in range(ZOO[zoo][1])]


def ins(inputs):
    return [a for i in inputs for a in ("--input", i)]


def model_runs(f, inputs, expect="error", static=None, timeout=None, verify=True, names=None):
    """check, convert, run, prune (and verify) of model `f` on `inputs`. `static`: what check and
    convert (which run no batch) are expected to do, when it differs from `expect`."""
    static = static or expect
    x = ins(inputs)
    rs = [run(["{pare}", "check", f], static, timeout=timeout, names=names),
          run(["{pare}", "convert", f, "o.h5"], static, outputs=["o.h5"], timeout=timeout, names=names),
          run(["{pare}", "run", f, *x], expect, timeout=timeout, names=names),
          run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *x], expect, outputs=["o.h5"], timeout=timeout,
              names=names)]
    if verify:
        rs.append(run(["{pare}", "verify", f, f, *x], expect, timeout=timeout, names=names))
    return rs


def kt(name, shape, dtype="float32", node=0, index=0):
    """A Keras 3 `__keras_tensor__` reference: output `index` of call `node` of layer `name`."""
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": dtype, "keras_history": [name, node, index]}}


def layer(c, name):
    for entry in c["config"]["layers"]:
        if entry["name"] == name:
            return entry
    raise KeyError(name)


def config_edit(*edits):
    """A mutation applying each edit(config dict) to the file's model_config attribute."""
    def mutate(f):
        c = json.loads(f.attrs["model_config"])
        for edit in edits:
            edit(c)
        f.attrs["model_config"] = json.dumps(c)
    return mutate


def set_cfg(name, **values):
    return lambda c: layer(c, name)["config"].update(values)


def pop_cfg(name, key):
    return lambda c: layer(c, name)["config"].pop(key)


def set_kwargs(name, **values):
    return lambda c: layer(c, name)["inbound_nodes"][0]["kwargs"].update(values)


def set_args(name, args):
    return lambda c: layer(c, name)["inbound_nodes"][0].__setitem__("args", args)


def set_inbound(name, nodes):
    return lambda c: layer(c, name).__setitem__("inbound_nodes", nodes)


def add_output(ref):
    return lambda c: c["config"]["output_layers"].append(ref)


def inp(name, shape):
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "name": name}}


def inp2(name, shape):
    """A tf.keras 2 InputLayer."""
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_input_shape": [None, *shape], "dtype": "float32", "name": name, "sparse": False,
                       "ragged": False}}


def add_input(name, shape, keras2=False):
    def edit(c):
        c["config"]["layers"].insert(0, (inp2 if keras2 else inp)(name, shape))
        c["config"]["input_layers"].append([name, 0, 0])
    return edit


def node(class_name, name, args, call_kwargs=None, **config):
    return {"class_name": class_name, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [{"args": args, "kwargs": call_kwargs or {}}]}


def functional(path, layers, inputs, outputs, weights=None, version="3.15.1", raw_weights=None):
    """A legacy .h5 of a Functional model: `weights` maps a layer to [(variable, array)] stored as
    `layer/variable`; `raw_weights` maps a layer to [(weight name, array)] stored under the layer's
    group as named (a nested model's `inner_layer/variable`)."""
    weights = weights or {}
    raw_weights = raw_weights or {}
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers,
                                                  "input_layers": [[i, 0, 0] for i in inputs],
                                                  "output_layers": [o if isinstance(o, list) else [o, 0, 0]
                                                                    for o in outputs]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = version
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(cfg)
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = version
        mw.attrs["backend"] = "tensorflow"
        names = [entry["name"] for entry in layers]
        mw.attrs.create("layer_names", names, dtype=STR)
        for n in names:
            lg = mw.create_group(n)
            ws = [(f"{n}/{v}", a) for v, a in weights.get(n, [])] + list(raw_weights.get(n, []))
            lg.attrs.create("weight_names", [name for name, _ in ws], dtype=STR)
            for name, a in ws:
                lg.create_dataset(name, data=np.asarray(a, dtype=np.float32))


class Weights:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape):
        return (self.rng.standard_normal(shape) * 0.5).astype(np.float32)

    def mha(self, dq, dv, dk, h, kd, vd, out, bias=True, gate=False):
        """A MultiHeadAttention's variables in Keras's order (legacy .h5 names)."""
        w = self
        ws = [("query/kernel", w(dq, h, kd))] + ([("query/bias", w(h, kd))] if bias else [])
        ws += [("key/kernel", w(dk, h, kd))] + ([("key/bias", w(h, kd))] if bias else [])
        if gate:
            ws += [("gate/kernel", w(dq, h, vd))] + ([("gate/bias", w(h, vd))] if bias else [])
        ws += [("value/kernel", w(dv, h, vd))] + ([("value/bias", w(h, vd))] if bias else [])
        o = list(out) if isinstance(out, (list, tuple)) else [out]
        ws += [("attention_output/kernel", w(h, vd, *o))] + ([("attention_output/bias", w(*o))] if bias else [])
        return ws


def mha_cfg(h, kd, vd=None, **extra):
    c = {"num_heads": h, "key_dim": kd, "value_dim": vd, "dropout": 0.0, "use_bias": True, "use_gate": False,
         "output_shape": None, "attention_axes": None, "sliding_window": None}
    c.update(extra)
    return c


def save(g, name, array):
    np.save(g.path(name), np.asarray(array))
    return name


# MARK: bases

def write_bases(g):
    for zoo, (fixture, count) in ZOO.items():
        g.copy_fixture(f"zoo/{fixture}.h5", zoo_file(zoo))
        for i in range(count):
            g.copy_fixture(f"zoo/{fixture}_in{i}.npy", f"tfm_{zoo}_in{i}.npy")
    g.copy_fixture("vit/keras3.h5", "tfm_vit.h5")
    g.copy_fixture("vit/keras3.keras", "tfm_vit.keras")
    save(g, VIT_IN[0], np.load(g.fixture("data/mnist_x.npy"))[:8])
    save(g, VIT_IN[1], np.load(g.fixture("data/vit_positions.npy"))[:8])


def generate_bases(g):
    for zoo in ZOO:
        f, inputs = zoo_file(zoo), zoo_inputs(zoo)
        g.add(f"tfm-base-{zoo}", "tfm", f"the unedited {ZOO[zoo][0]} fixture", [f, *inputs],
              [run(["{pare}", "check", f], "ok"), run(["{pare}", "run", f, *ins(inputs)], "ok"),
               run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *ins(inputs)], "ok", outputs=["o.h5"])])
    for f in ("tfm_vit.h5", "tfm_vit.keras"):
        g.add(f"tfm-base-vit-{f.split('.')[-1]}", "tfm", f"the unedited vit fixture ({f})", [f, *VIT_IN],
              [run(["{pare}", "check", f], "ok"), run(["{pare}", "run", f, *ins(VIT_IN)], "ok"),
               run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *ins(VIT_IN)], "ok", outputs=["o.h5"])])


def zoo_edit(g, cid, zoo, label, edits, attack, expect="error", static=None, extra_inputs=(), names=None):
    """A copy of zoo `zoo` with `edits` applied to its model_config, run by model_runs."""
    name = f"tfm_{zoo}_{label}.h5"
    base.mutated_copy(g, zoo_file(zoo), name, config_edit(*edits))
    inputs = zoo_inputs(zoo) + list(extra_inputs)
    g.add(cid, "tfm", attack, [name, *inputs], model_runs(name, inputs, expect, static=static, names=names))


# MARK: MultiHeadAttention configs

def generate_mha_config(g):
    edits = {
        # label: (edit, expect, attack)
        "heads-0": (set_cfg("mha_self", num_heads=0), "error", "num_heads 0"),
        "heads-negative": (set_cfg("mha_self", num_heads=-2), "error", "num_heads -2"),
        "heads-2.5": (set_cfg("mha_self", num_heads=2.5), "error", "num_heads 2.5"),
        "heads-string": (set_cfg("mha_self", num_heads="2"), "error", "num_heads '2'"),
        "heads-2^24+1": (set_cfg("mha_self", num_heads=(1 << 24) + 1), "error", "num_heads 2^24 + 1"),
        "heads-2^24": (set_cfg("mha_self", num_heads=1 << 24), "error", "num_heads 2^24 over (6, 2, 3) kernels"),
        "key-dim-2^24": (set_cfg("mha_self", key_dim=1 << 24, value_dim=1 << 24), "error",
                         "key_dim and value_dim 2^24 over (6, 2, 3) kernels"),
        "value-dim-7": (set_cfg("mha_self", value_dim=7), "error", "value_dim 7 over a (6, 2, 3) value kernel"),
        "output-shape-2^24x8": (set_cfg("mha_out_tuple", output_shape=[1 << 24] * 8), "error",
                                "output_shape eight dimensions of 2^24 (a product past 2^63)"),
        "output-shape-9-axes": (set_cfg("mha_out_tuple", output_shape=[1] * 9), "error", "output_shape of 9 axes"),
        "output-shape-0": (set_cfg("mha_out_int", output_shape=0), "error", "output_shape 0"),
        "output-shape-empty": (set_cfg("mha_out_int", output_shape=[]), "error", "output_shape []"),
        "output-shape-null-item": (set_cfg("mha_out_int", output_shape=[None]), "error", "output_shape [null]"),
        "axes-0": (set_cfg("mha_self", attention_axes=[0]), "error", "attention_axes [0] (the batch)"),
        "axes-minus-1": (set_cfg("mha_self", attention_axes=[-1]), "error", "attention_axes [-1] (the heads axis)"),
        "axes-minus-3": (set_cfg("mha_self", attention_axes=[-3]), "error", "attention_axes [-3] (the batch)"),
        "axes-repeated": (set_cfg("mha_2d", attention_axes=[1, 1]), "error", "attention_axes [1, 1]"),
        # [1, -3] on a rank-4 query resolves to axes (1, 1): Keras's einsum then names an output
        # letter twice and refuses; Pare once checked the raw list only and ran axis 1 twice.
        "axes-repeated-resolved": (set_cfg("mha_2d", attention_axes=[1, -3]), "error",
                                   "attention_axes [1, -3] on a rank-4 query (both axis 1)"),
        "axes-empty": (set_cfg("mha_self", attention_axes=[]), "error", "attention_axes []"),
        "axes-2^40": (set_cfg("mha_self", attention_axes=[1 << 40]), "error", "attention_axes [2^40]"),
        "axes-2-rank3": (set_cfg("mha_self", attention_axes=[2]), "error", "attention_axes [2] of a rank-3 query"),
        "axes-3-rank4": (set_cfg("mha_2d", attention_axes=[3]), "error", "attention_axes [3] of a rank-4 query"),
        "axes-minus-2": (set_cfg("mha_self", attention_axes=[-2]), "ok", "attention_axes [-2] (axis 1, valid)"),
        "axes-int": (set_cfg("mha_self", attention_axes=1), "ok", "attention_axes 1 as an int (valid)"),
        "axes-2-only-rank4": (set_cfg("mha_2d", attention_axes=[2]), "ok", "attention_axes [2] of a rank-4 query"),
        "window-0": (set_cfg("mha_causal", sliding_window=0), "error", "sliding_window 0"),
        "window-2^40": (set_cfg("mha_causal", sliding_window=1 << 40), "error", "sliding_window 2^40"),
        "dropout-nan": (set_cfg("mha_self", dropout=float("nan")), "error", "dropout NaN"),
        "quantized": (set_cfg("mha_self", quantization_config={"mode": "int8"}), "error", "quantization_config int8"),
        "gate-without-weights": (set_cfg("mha_self", use_gate=True), "error", "use_gate true, no gate weights"),
        "no-bias-with-biases": (set_cfg("mha_self", use_bias=False), "error", "use_bias false, 8 weights"),
    }
    for label, (edit, expect, attack) in edits.items():
        zoo_edit(g, f"tfm-mha-{label}", "att", f"mha_{label}", [edit], f"MultiHeadAttention {attack}", expect)


# MARK: calls passing tensors by name

def generate_calls(g):
    q, v = kt("q", [None, 5, 6]), kt("v", [None, 7, 6])
    am = kt("attention_mask", [None, 5, 7])
    two_calls = lambda extra_kwargs, out: lambda c: (  # noqa: E731
        layer(c, "mha_self")["inbound_nodes"].append({"args": [q, out], "kwargs": extra_kwargs}),
        c["config"]["output_layers"].append(["mha_self", 1, 0]))
    edits = {
        # label: (edits, expect, static, extra inputs, attack)
        "kw-unknown": ([set_kwargs("mha_self", foo=v)], "error", None, (), "a tensor passed as foo="),
        "kw-query-twice": ([set_kwargs("mha_self", query=q)], "error", None, (), "query positionally and as query="),
        "kw-mask": ([set_kwargs("mha_self", mask=q)], "error", None, (), "mask= a tensor (MHA takes *_mask)"),
        "kw-mask-list": ([set_kwargs("mha_self", mask=[q, q])], "error", None, (), "mask= a list"),
        "kw-training-tensor": ([set_kwargs("mha_self", training=q)], "error", None, (), "training= a tensor"),
        "kw-attention-mask-list": ([set_kwargs("mha_attention_mask", attention_mask=[am, am])], "error", None, (),
                                   "attention_mask= a list of two tensors"),
        "kw-attention-mask-dict": ([set_kwargs("mha_attention_mask", attention_mask={"a": am})], "error", None, (),
                                   "attention_mask= a dict"),
        "attention-mask-query": ([set_kwargs("mha_attention_mask", attention_mask=q)], "error", None, (),
                                 "attention_mask= the (5, 6) query for a (5, 7) score map"),
        "attention-mask-rank4": ([set_kwargs("mha_attention_mask", attention_mask=kt("x4", [None, 3, 4, 5]))],
                                 "error", None, (), "attention_mask= a rank-4 tensor"),
        "attention-mask-rank2": ([add_input("am2", [7]), set_kwargs("mha_attention_mask",
                                                                    attention_mask=kt("am2", [None, 7]))],
                                 "error", None, ("tfm_am2.npy",), "attention_mask= a (batch, 7) tensor"),
        "attention-mask-1x7": ([add_input("am17", [1, 7]), set_kwargs("mha_attention_mask",
                                                                      attention_mask=kt("am17", [None, 1, 7]))],
                               "ok", None, ("tfm_am17.npy",), "attention_mask= (batch, 1, 7), broadcast (valid)"),
        "attention-mask-5x1": ([add_input("am51", [5, 1]), set_kwargs("mha_attention_mask",
                                                                      attention_mask=kt("am51", [None, 5, 1]))],
                               "ok", None, ("tfm_am51.npy",), "attention_mask= (batch, 5, 1), broadcast (valid)"),
        "attention-mask-open-3x9": ([add_input("amo", [None, None]), set_kwargs(
            "mha_attention_mask", attention_mask=kt("amo", [None, None, None]))], "error", "ok-or-error",
            ("tfm_amo39.npy",), "attention_mask= an open (None, None) input fed (3, 9) at run time"),
        "attention-mask-on-2d": ([set_kwargs("mha_2d", attention_mask=am)], "error", None, (),
                                 "attention_mask= on attention over two axes"),
        "query-mask-wrong": ([set_kwargs("mha_attention_mask", query_mask=am)], "error", None, (),
                             "query_mask= a (5, 7) tensor for a (5, 6) query"),
        "value-mask-wrong": ([set_kwargs("mha_attention_mask", value_mask=am)], "error", None, (),
                             "value_mask= a (5, 7) tensor"),
        "value-mask-m": ([set_kwargs("mha_attention_mask", value_mask=kt("m", [None, 6, 6]))], "error", None, (),
                         "value_mask= a (6, 6) tensor for a (7, 6) value"),
        "value-mask-open-3": ([add_input("vmo", [None]), set_kwargs("mha_attention_mask",
                                                                    value_mask=kt("vmo", [None, None]))],
                              "error", "ok-or-error", ("tfm_mo3.npy",), "value_mask= an open input fed (batch, 3)"),
        "key-mask-open-3": ([add_input("kmo", [None]), set_kwargs("mha_cross_key", key_mask=kt("kmo", [None, None]))],
                            "error", "ok-or-error", ("tfm_mo3.npy",), "key_mask= an open input fed (batch, 3)"),
        "query-mask-open-2": ([add_input("qmo", [None]), set_kwargs("mha_attention_mask",
                                                                    query_mask=kt("qmo", [None, None]))],
                              "error", "ok-or-error", ("tfm_mo2.npy",), "query_mask= an open input fed (batch, 2)"),
        "args-8": ([set_args("mha_self", [q] * 8)], "error", None, (), "8 positional tensors (7 parameters)"),
        "args-null-value": ([set_args("mha_self", [q, None])], "error", None, (), "value passed as null"),
        "args-int": ([set_args("mha_self", [q, 3])], "error", None, (), "a positional 3"),
        "args-empty": ([set_args("mha_self", [])], "error", None, (), "no arguments"),
        "args-missing": ([lambda c: layer(c, "mha_self")["inbound_nodes"][0].pop("args")], "error", None, (),
                         "an inbound node without args"),
        "args-list-second": ([set_args("mha_self", [q, [q, q]])], "error", None, (), "a list as second argument"),
        "args-list-first": ([set_args("mha_self", [[q, q]])], "ok-or-error", None, (),
                            "query and value as one first-argument list"),
        "key-width-4": ([set_args("mha_self", [q]), set_kwargs("mha_self", value=v, key=kt("k", [None, 7, 4]))],
                        "error", None, (), "a width-4 key for a (6, 2, 3) key kernel"),
        "ref-output-5": ([set_args("mha_self", [kt("q", [None, 5, 6], index=5), q])], "error", "ok-or-error", (),
                         "query = output 5 of an InputLayer"),
        "ref-call-3": ([set_args("mha_self", [kt("mha_value_dim", [None, 5, 6], node=3), q])], "error", None, (),
                       "query = call 3 of a once-called layer"),
        "ref-unknown": ([set_args("mha_self", [kt("nosuch", [None, 5, 6]), q])], "error", None, (),
                        "query = a layer that does not exist"),
        "ref-self": ([set_args("mha_self", [kt("mha_self", [None, 5, 6]), q])], "error", "ok-or-error", (),
                     "query = the layer's own output (a cycle)"),
        "attention-mask-self": ([set_kwargs("mha_attention_mask", attention_mask=kt("mha_attention_mask",
                                                                                     [None, 5, 7]))],
                                "error", "ok-or-error", (), "attention_mask= the layer's own output"),
        "scores-output-2": ([add_output(["mha_scores", 0, 2])], "error", None, (),
                            "a model output mha_scores[0][2] (it has 2)"),
        "scores-not-returned": ([add_output(["mha_self", 0, 1])], "error", None, (),
                                "a model output mha_self[0][1] without return_attention_scores"),
        # Keras tests these for truth ("yes" and 1 are true there): a non-bool must not silently be false.
        "causal-string": ([set_kwargs("mha_self", use_causal_mask="yes")], "error", None, (),
                          "use_causal_mask 'yes' (Keras: true; Pare once read false)"),
        "scores-int": ([set_kwargs("mha_self", return_attention_scores=1)], "error", None, (),
                       "return_attention_scores 1 (Keras: true; Pare once read false)"),
        "shared-different-arguments": ([lambda c: layer(c, "mha_self")["inbound_nodes"].append(
            {"args": [q, v], "kwargs": {"use_causal_mask": True}})], "error", None, (),
            "a shared layer called with and without use_causal_mask"),
        "shared-same": ([two_calls({}, q)], "ok", None, (), "a shared layer called twice alike (valid)"),
        "shared-shapes": ([two_calls({}, v)], "error", "ok-or-error", (), "a shared layer called on (5, 6) and (7, 6)"),
        "mha-on-mha": ([set_args("mha_self", [kt("mha_value_dim", [None, 5, 6]), kt("mha_cross_key", [None, 5, 6])])],
                       "ok", None, (), "attention over two attention outputs (valid)"),
    }
    for label, (edits_, expect, static, extra, attack) in edits.items():
        zoo_edit(g, f"tfm-call-{label}", "att", f"call_{label}", edits_, f"MultiHeadAttention call: {attack}",
                 expect, static, extra)


def write_mask_inputs(g):
    rng = np.random.default_rng(7)
    keep = lambda *shape: (rng.random(shape) > 0.3).astype(np.float32)  # noqa: E731
    save(g, "tfm_am2.npy", keep(4, 7))
    save(g, "tfm_am17.npy", keep(4, 1, 7))
    save(g, "tfm_am51.npy", keep(4, 5, 1))
    save(g, "tfm_amo39.npy", keep(4, 3, 9))
    save(g, "tfm_mo3.npy", keep(4, 3))
    save(g, "tfm_mo2.npy", keep(4, 2))
    save(g, "tfm_m7.npy", keep(4, 7))
    save(g, "tfm_sm16.npy", keep(4, 1, 6))
    save(g, "tfm_sm99.npy", keep(4, 9, 9))
    save(g, "tfm_sm6.npy", keep(4, 6))


# MARK: tf.keras 2 calls ([name, node, tensor, {kwargs}])

def generate_keras2_calls(g):
    def k2(name, entries):
        return set_inbound(name, [entries])
    edits = {
        # label: (zoo, edits, expect, static, extra inputs, attack)
        "value-unknown-layer": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["nosuch", 0, 0]}]])], "error", None,
                                (), "value= ['nosuch', 0, 0]"),
        "value-node-7": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 7, 0]}]])], "error", None, (),
                         "value= node 7 of an input"),
        "value-tensor-3": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 0, 3]}]])], "error", "ok-or-error",
                           (), "value= tensor 3 of an input"),
        "value-node-negative": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", -1, 0]}]])], "error", None, (),
                                "value= node -1"),
        "value-tensor-negative": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 0, -1]}]])], "error", None,
                                  (), "value= tensor -1"),
        "value-node-2^62": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 1 << 62, 0]}]])], "error", None,
                            (), "value= node 2^62"),
        "value-tensor-2^62": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 0, 1 << 62]}]])], "error", None,
                              (), "value= tensor 2^62"),
        "value-4-list": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["v", 0, 0, {}]}]])], "error", None, (),
                         "value= a 4-element reference"),
        "value-nested": ("att2", [k2("mha_self", [["q", 0, 0, {"value": [["v", 0, 0]]}]])], "error", None, (),
                         "value= a nested reference list"),
        "value-self": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["mha_self", 0, 0]}]])], "error",
                       "ok-or-error", (), "value= the layer's own output"),
        "kwargs-list": ("att2", [k2("mha_self", [["q", 0, 0, [["v", 0, 0]]]])], "error", None, (),
                        "a list where the kwargs dict goes"),
        "entry-short": ("att2", [k2("mha_self", [["q", 0]])], "error", None, (), "an entry ['q', 0]"),
        "entry-string": ("att2", [k2("mha_self", ["q"])], "error", None, (), "an entry 'q'"),
        "foo": ("att2", [k2("mha_self", [["q", 0, 0, {"value": ["q", 0, 0], "foo": ["v", 0, 0]}]])], "error", None,
                (), "foo= a tensor"),
        "attention-mask-query": ("att2", [k2("mha_attention_mask", [["q", 0, 0, {
            "value": ["v", 0, 0], "attention_mask": ["q", 0, 0]}]])], "error", None, (),
            "attention_mask= the (5, 6) query"),
        "dot-mask-4": ("dot2", [k2("att_dot", [["q", 0, 0, {"mask": [["q", 0, 0], ["v", 0, 0], ["k", 0, 0],
                                                                     ["k", 0, 0]]}], ["v", 0, 0, {}]])],
                       "error", None, (), "Attention mask= a list of 4"),
        "dot-mask-not-tensor": ("dot2", [k2("att_dot", [["q", 0, 0, {"mask": [1, 2]}], ["v", 0, 0, {}]])], "error",
                                None, (), "Attention mask= [1, 2]"),
        "dot-query-mask-7": ("dot2", [add_input("m7", [7], keras2=True), k2("att_dot", [
            ["q", 0, 0, {"mask": [["m7", 0, 0], None]}], ["v", 0, 0, {}]])], "error", None, ("tfm_m7.npy",),
            "Attention query mask (batch, 7) for a (5, 6) query"),
        "dot-value-mask-open": ("dot2", [add_input("mo", [None], keras2=True), k2("att_dot", [
            ["q", 0, 0, {"mask": [None, ["mo", 0, 0]]}], ["v", 0, 0, {}]])], "error", "ok-or-error",
            ("tfm_mo3.npy",), "Attention value mask an open input fed (batch, 3)"),
        "dot-query-mask-open": ("dot2", [add_input("mo", [None], keras2=True), k2("att_dot", [
            ["q", 0, 0, {"mask": [["mo", 0, 0], None]}], ["v", 0, 0, {}]])], "error", "ok-or-error",
            ("tfm_mo3.npy",), "Attention query mask an open input fed (batch, 3)"),
        "dot-4-inputs": ("dot2", [k2("att_dot", [["q", 0, 0, {}], ["v", 0, 0, {}], ["k", 0, 0, {}],
                                                 ["k", 0, 0, {}]])], "error", None, (), "Attention of 4 inputs"),
        "dot-1-input": ("dot2", [k2("att_dot", [["q", 0, 0, {}]])], "error", None, (), "Attention of 1 input"),
        "dot-score-mode": ("dot2", [set_cfg("att_dot", score_mode="general")], "error", None, (),
                           "Attention score_mode 'general'"),
    }
    for label, (zoo, edits_, expect, static, extra, attack) in edits.items():
        zoo_edit(g, f"tfm-k2-{label}", zoo, f"k2_{label}", edits_, f"tf.keras 2 call: {attack}", expect, static,
                 extra)


# MARK: Attention / AdditiveAttention over rank-4 inputs

def generate_dot_rank4(g):
    """A key with fewer leading groups than the query: tf.keras 2's batched matmul broadcasts a
    group of 1; Pare once indexed the key as if it had the query's groups (a trap)."""
    rng = np.random.default_rng(8)
    save(g, "tfm_r4_q.npy", rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    save(g, "tfm_r4_v.npy", rng.standard_normal((2, 3, 7, 6)).astype(np.float32))
    save(g, "tfm_r4_k1.npy", rng.standard_normal((2, 1, 7, 6)).astype(np.float32))
    save(g, "tfm_r4_k5.npy", rng.standard_normal((2, 5, 7, 6)).astype(np.float32))
    q, v = kt("q", [None, 3, 5, 6]), kt("v", [None, 3, 7, 6])
    cases = {
        # label: (class, key groups, keras version, expect, static, attack)
        "key-groups-1-tfkeras2": ("Attention", 1, "2.15.0", "ok-or-error", "ok-or-error",
                                  "tf.keras 2 Attention, query (3, 5, 6), key (1, 7, 6): broadcast (valid there)"),
        "key-groups-1": ("Attention", 1, "3.15.1", "ok-or-error", "ok-or-error",
                         "Attention, query (3, 5, 6), key (1, 7, 6)"),
        "additive-key-groups-1": ("AdditiveAttention", 1, "3.15.1", "ok-or-error", "ok-or-error",
                                  "AdditiveAttention, query (3, 5, 6), key (1, 7, 6)"),
        "key-groups-5": ("Attention", 5, "3.15.1", "error", "ok-or-error",
                         "Attention, query (3, 5, 6), key (5, 7, 6): groups that match nothing"),
    }
    for label, (cls, kg, version, expect, static, attack) in cases.items():
        name = f"tfm_dot_{label}.h5"
        k = kt("k", [None, kg, 7, 6])
        config = {"use_scale": False, "dropout": 0.0}
        if cls == "Attention":
            config["score_mode"] = "dot"
        if version.startswith("2"):
            layers = [inp2("q", [3, 5, 6]), inp2("v", [3, 7, 6]), inp2("k", [kg, 7, 6]),
                      {"class_name": cls, "name": "att", "config": {"name": "att", **config},
                       "inbound_nodes": [[["q", 0, 0, {}], ["v", 0, 0, {}], ["k", 0, 0, {}]]]}]
        else:
            layers = [inp("q", [3, 5, 6]), inp("v", [3, 7, 6]), inp("k", [kg, 7, 6]),
                      node(cls, "att", [[q, v, k]], **config)]
        functional(g.path(name), layers, ["q", "v", "k"], ["att"], version=version)
        inputs = ["tfm_r4_q.npy", "tfm_r4_v.npy", f"tfm_r4_k{kg}.npy"]
        g.add(f"tfm-dot-{label}", "tfm", attack, [name, *inputs], model_runs(name, inputs, expect, static=static))


# MARK: EinsumDense

def generate_einsum(g):
    edits = {
        # label: (edit, expect, static, attack)
        "equation-empty": (set_cfg("ed_ab_bc", equation=""), "error", None, "equation ''"),
        "equation-no-arrow": (set_cfg("ed_ab_bc", equation="ab,bc"), "error", None, "equation 'ab,bc'"),
        "equation-one-operand": (set_cfg("ed_ab_bc", equation="ab->ac"), "error", None, "equation 'ab->ac'"),
        "equation-three-operands": (set_cfg("ed_ab_bc", equation="ab,bc,cd->ad"), "error", None,
                                    "equation 'ab,bc,cd->ad'"),
        "equation-two-arrows": (set_cfg("ed_ab_bc", equation="ab,bc->ac->a"), "error", None, "two arrows"),
        "equation-empty-kernel": (set_cfg("ed_ab_bc", equation="ab,->a"), "error", None, "an empty kernel operand"),
        "equation-empty-input": (set_cfg("ed_ab_bc", equation=",bc->c"), "error", None, "an empty input operand"),
        "equation-empty-output": (set_cfg("ed_ab_bc", equation="ab,bc->"), "error", None, "an empty output"),
        "equation-repeat-input": (set_cfg("ed_ab_bc", equation="aa,ac->ac"), "error", None, "'aa' (a trace)"),
        "equation-repeat-kernel": (set_cfg("ed_ab_bc", equation="ab,bb->ab"), "error", None, "kernel 'bb'"),
        "equation-repeat-output": (set_cfg("ed_ab_bc", equation="ab,bc->acc"), "error", None, "output 'acc'"),
        "equation-output-only-letter": (set_cfg("ed_ab_bc", equation="ab,bc->ad"), "error", None,
                                        "output letter d in neither operand"),
        "equation-ellipsis-kernel": (set_cfg("ed_ab_bc", equation="ab,...c->ac"), "error", None, "'...' in the kernel"),
        "equation-ellipsis-output-only": (set_cfg("ed_ab_bc", equation="ab,bc->...c"), "error", None,
                                          "'...' in the output only"),
        "equation-ellipsis-right": (set_cfg("ed_ab_bc", equation="ab,bc->ac..."), "error", None, "'...' at the end"),
        "equation-two-dots": (set_cfg("ed_ellipsis", equation="..b,bc->..c"), "error", None, "'..'"),
        "equation-ellipsis-summed": (set_cfg("ed_ellipsis", equation="...b,bc->c"), "error", None,
                                     "'...' in the input, not the output"),
        "equation-upper-case": (set_cfg("ed_ab_bc", equation="AB,BC->AC"), "error", None, "upper-case letters"),
        "equation-unicode": (set_cfg("ed_ab_bc", equation="äb,bc->äc"), "error", None, "a non-ASCII letter"),
        "equation-digits": (set_cfg("ed_ab_bc", equation="a1,1c->ac"), "error", None, "digits"),
        "equation-109-chars": (set_cfg("ed_ab_bc", equation="ab,bc->ac" + " " * 100), "error", None,
                               "a 109-character equation"),
        "equation-number": (set_cfg("ed_ab_bc", equation=5), "error", None, "equation 5"),
        "equation-spaces": (set_cfg("ed_ab_bc", equation=" a b , b c -> a c "), "ok", None, "spaces (valid)"),
        "equation-17-axes": (set_cfg("ed_ellipsis", equation="...b,bcdefghijklmnopqrs->...cdefghijklmnopqrs"),
                             "error", None, "17 output axes"),
        "equation-batch-moved": (set_cfg("ed_ab_bc", equation="ab,bc->ca"), "error", None,
                                 "'ab,bc->ca' (batch last)"),
        "equation-batch-middle": (set_cfg("ed_abc_cd", equation="abc,cd->bad"), "error", "ok-or-error",
                                  "'abc,cd->bad' (batch second)"),
        "equation-batch-in-kernel": (set_cfg("ed_ab_bc", equation="ab,ab->ab", output_shape=[6], bias_axes=None),
                                     "error", None, "'ab,ab->ab' (batch in the kernel)"),
        "output-shape-extra": (set_cfg("ed_ab_bc", output_shape=[4, 4]), "error", None, "output_shape [4, 4]"),
        "output-shape-empty": (set_cfg("ed_ab_bc", output_shape=[]), "error", None, "output_shape []"),
        "output-shape-0": (set_cfg("ed_ab_bc", output_shape=[0]), "error", None, "output_shape [0]"),
        "output-shape-negative": (set_cfg("ed_ab_bc", output_shape=[-4]), "error", None, "output_shape [-4]"),
        "output-shape-2^32+1": (set_cfg("ed_ab_bc", output_shape=[(1 << 32) + 1]), "error", None,
                                "output_shape [2^32 + 1]"),
        "output-shape-2^32": (set_cfg("ed_ab_bc", output_shape=[1 << 32]), "error", None,
                              "output_shape [2^32] over a (6, 4) kernel"),
        "output-shape-null": (set_cfg("ed_ab_bc", output_shape=[None]), "error", None, "output_shape [null]"),
        "output-shape-17": (set_cfg("ed_ab_bc", output_shape=[1] * 17), "error", None, "output_shape of 17"),
        "output-shape-int": (set_cfg("ed_ab_bc", output_shape=4), "ok", None, "output_shape 4 (valid)"),
        "output-shape-contradicts-input": (set_cfg("ed_abc_cd", output_shape=[7, 4]), "error", None,
                                           "output_shape [7, 4] for a (5, 6) input"),
        "bias-axes-not-in-output": (set_cfg("ed_ab_bc", bias_axes="x"), "error", None, "bias_axes 'x'"),
        "bias-axes-ellipsis-letter": (set_cfg("ed_ellipsis", bias_axes="B"), "error", None,
                                      "bias_axes 'B' (a letter Pare makes for '...')"),
        "bias-axes-batch": (set_cfg("ed_ab_bc", bias_axes="a"), "error", None, "bias_axes 'a' (the batch)"),
        "bias-axes-repeated": (set_cfg("ed_ab_bc", bias_axes="cc"), "ok-or-error", None, "bias_axes 'cc'"),
        "bias-axes-without-weight": (set_cfg("ed_abc_cd", bias_axes="b"), "error", None, "bias_axes 'b', no bias"),
        "lora": (set_cfg("ed_ab_bc", lora_rank=4), "error", None, "lora_rank 4"),
        "activation-glu": (set_cfg("ed_ab_bc", activation="glu"), "error", "ok-or-error", "activation glu"),
        "activation-threshold": (set_cfg("ed_ab_bc", activation="threshold"), "error", "ok-or-error",
                                 "activation threshold"),
        "activation-unknown": (set_cfg("ed_ab_bc", activation="nosuch"), "error", "ok-or-error", "activation nosuch"),
        "activation-sparsemax": (set_cfg("ed_ab_bc", activation="sparsemax"), "ok", None, "activation sparsemax"),
    }
    for label, (edit, expect, static, attack) in edits.items():
        zoo_edit(g, f"tfm-einsum-{label}", "ein", f"einsum_{label}", [edit], f"EinsumDense {attack}", expect, static)


def generate_batch_sum(g):
    """EinsumDense equations that sum the batch axis away ('ab,bc->bc', 'abcd,de->bce'): the
    output's first axis is then an input axis, not the batch, and the interpreter checks only the
    other axes. Keras refuses the first (a kernel of shape (None, 4)); for the second its symbolic
    shape says (batch, 3, 4) while the tensor is (2, 3, 4). Fed to a MultiHeadAttention's value the
    projection's sgemm read (batch - 2) × 12 floats past the value (a heap over-read: garbage
    outputs, or SIGSEGV for a large batch); as its attention_mask, or as an Attention's value, an
    index past the end (a trap)."""
    w = Weights(9)
    rng = np.random.default_rng(9)
    save(g, "tfm_bs_x6.npy", rng.standard_normal((8, 6)).astype(np.float32))
    save(g, "tfm_bs_y4.npy", rng.standard_normal((8, 4)).astype(np.float32))
    save(g, "tfm_bs_q.npy", rng.standard_normal((8, 3, 4)).astype(np.float32))
    save(g, "tfm_bs_x.npy", rng.standard_normal((8, 2, 3, 4)).astype(np.float32))

    def ed(source, shape, equation, out):
        return node("EinsumDense", "e", [kt(source, [None, *shape])], equation=equation, output_shape=out,
                    bias_axes=None, activation="linear")
    e34 = ed("x", [2, 3, 4], "abcd,de->bce", [3, 4])
    models = {
        # label: (layers, inputs, outputs, weights, input files, attack)
        "alone": ([inp("x", [6]), ed("x", [6], "ab,bc->bc", [4])], ["x"], ["e"], {"e": [("kernel", w(6, 4))]},
                  ["tfm_bs_x6.npy"], "'ab,bc->bc' as the output (6 rows for 8 examples)"),
        "dense": ([inp("x", [6]), ed("x", [6], "ab,bc->bc", [4]),
                   node("Dense", "d", [kt("e", [None, 4])], units=3, activation="linear", use_bias=True)],
                  ["x"], ["d"], {"e": [("kernel", w(6, 4))], "d": [("kernel", w(4, 3)), ("bias", w(3))]},
                  ["tfm_bs_x6.npy"], "'ab,bc->bc' into a Dense"),
        "add": ([inp("x", [6]), inp("y", [4]), ed("x", [6], "ab,bc->bc", [4]),
                 node("Add", "add", [[kt("e", [None, 4]), kt("y", [None, 4])]])], ["x", "y"], ["add"],
                {"e": [("kernel", w(6, 4))]}, ["tfm_bs_x6.npy", "tfm_bs_y4.npy"], "'ab,bc->bc' added to an input"),
        "mha-value": ([inp("q", [3, 4]), inp("x", [2, 3, 4]), e34,
                       node("MultiHeadAttention", "mha", [kt("q", [None, 3, 4]), kt("e", [None, 3, 4])],
                            **mha_cfg(2, 2, 2))], ["q", "x"], ["mha"],
                      {"e": [("kernel", w(4, 4))], "mha": w.mha(4, 4, 4, 2, 2, 2, 4)}, ["tfm_bs_q.npy", "tfm_bs_x.npy"],
                      "'abcd,de->bce' as a MultiHeadAttention's value (sgemm over-read)"),
        "mha-mask": ([inp("q", [3, 4]), inp("x", [2, 3, 4]), ed("x", [2, 3, 4], "abcd,de->bce", [3, 3]),
                      node("MultiHeadAttention", "mha", [kt("q", [None, 3, 4]), kt("q", [None, 3, 4])],
                           {"attention_mask": kt("e", [None, 3, 3])}, **mha_cfg(2, 2, 2))], ["q", "x"], ["mha"],
                     {"e": [("kernel", w(4, 3))], "mha": w.mha(4, 4, 4, 2, 2, 2, 4)}, ["tfm_bs_q.npy", "tfm_bs_x.npy"],
                     "'abcd,de->bce' as a MultiHeadAttention's attention_mask (index past the end)"),
        "softmax-mask": ([inp("q", [3, 4]), inp("x", [2, 3, 4]), e34,
                          node("Softmax", "sm", [kt("q", [None, 3, 4])], {"mask": kt("e", [None, 3, 4])}, axis=-1)],
                         ["q", "x"], ["sm"], {"e": [("kernel", w(4, 4))]}, ["tfm_bs_q.npy", "tfm_bs_x.npy"],
                         "'abcd,de->bce' as a Softmax's mask="),
        "attention-value": ([inp("q", [3, 4]), inp("x", [2, 3, 4]), e34,
                             node("Attention", "att", [[kt("q", [None, 3, 4]), kt("e", [None, 3, 4])]],
                                  use_scale=False, score_mode="dot", dropout=0.0)], ["q", "x"], ["att"],
                            {"e": [("kernel", w(4, 4))]}, ["tfm_bs_q.npy", "tfm_bs_x.npy"],
                            "'abcd,de->bce' as an Attention's value (index past the end)"),
    }
    for label, (layers, inputs, outputs, weights, files, attack) in models.items():
        name = f"tfm_batch_sum_{label}.h5"
        functional(g.path(name), layers, inputs, outputs, weights)
        g.add(f"tfm-einsum-batch-sum-{label}", "tfm", f"EinsumDense summing the batch axis: {attack}", [name, *files],
              model_runs(name, files, "error", static="ok-or-error"))
    # ovr.py: a (1, 256, 256) value reached by 'abc,cde->bde' under a (2048, 1, 256) query: the value
    # projection's sgemm reads 2047 × 65,536 floats past a 256 KB buffer (garbage outputs; SIGSEGV at 16,384).
    S = E = 256
    layers = [inp("q", [1, E]), inp("x", [1, 1]),
              node("EinsumDense", "e", [kt("x", [None, 1, 1])], equation="abc,cde->bde", output_shape=[S, E],
                   bias_axes=None, activation="linear"),
              node("MultiHeadAttention", "mha", [kt("q", [None, 1, E]), kt("e", [None, S, E])], **mha_cfg(1, 1, 1))]
    functional(g.path("tfm_batch_sum_overread.h5"), layers, ["q", "x"], ["mha"],
               {"e": [("kernel", w(1, S, E))], "mha": w.mha(E, E, E, 1, 1, 1, E)})
    save(g, "tfm_ovr_q.npy", rng.standard_normal((2048, 1, E)).astype(np.float32))
    save(g, "tfm_ovr_x.npy", rng.standard_normal((2048, 1, 1)).astype(np.float32))
    files = ["tfm_ovr_q.npy", "tfm_ovr_x.npy"]
    g.add("tfm-einsum-batch-sum-overread", "tfm",
          "a (1, 256, 256) EinsumDense output (batch summed) as the value of a 2048-example query (sgemm over-read)",
          ["tfm_batch_sum_overread.h5", *files],
          [run(["{pare}", "check", "tfm_batch_sum_overread.h5"], "ok-or-error"),
           run(["{pare}", "run", "tfm_batch_sum_overread.h5", *ins(files)], "error", timeout=60),
           run(["{pare}", "verify", "tfm_batch_sum_overread.h5", "tfm_batch_sum_overread.h5", *ins(files)], "error",
               timeout=60)])


# MARK: normalization and Softmax

def generate_norm_softmax(g):
    norm = {
        # label: (edit, expect, static, attack)
        "ln-axis-empty": (set_cfg("ln_default", axis=[]), "error", None, "LayerNormalization axis []"),
        "ln-axis-0": (set_cfg("ln_default", axis=[0]), "error", None, "LayerNormalization axis [0]"),
        "ln-axis-2^40": (set_cfg("ln_default", axis=[1 << 40]), "error", None, "LayerNormalization axis [2^40]"),
        "ln-axis-3-rank3": (set_cfg("ln_default", axis=[3]), "error", None, "LayerNormalization axis [3], rank 3"),
        "ln-axis-repeated": (set_cfg("ln_axis12", axis=[1, 1]), "error", None, "LayerNormalization axis [1, 1]"),
        "ln-axis-repeated-resolved": (set_cfg("ln_axis12", axis=[1, -3]), "error", None,
                                      "LayerNormalization axis [1, -3] (both 1)"),
        "ln-axis-null-item": (set_cfg("ln_default", axis=[None]), "error", None, "LayerNormalization axis [null]"),
        "ln-axis-2-1": (set_cfg("ln_axis12", axis=[2, 1]), "ok", None,
                        "LayerNormalization axis [2, 1] (Keras sorts it: valid)"),
        "ln-epsilon-negative": (set_cfg("ln_default", epsilon=-1.0), "error", None, "LayerNormalization epsilon -1"),
        "ln-epsilon-nan": (set_cfg("ln_default", epsilon=float("nan")), "error", None,
                           "LayerNormalization epsilon NaN"),
        "ln-epsilon-inf": (set_cfg("ln_default", epsilon=float("inf")), "error", None,
                           "LayerNormalization epsilon inf"),
        "ln-epsilon-0": (set_cfg("ln_default", epsilon=0.0), "ok", None, "LayerNormalization epsilon 0"),
        "ln-rms-scaling-with-beta": (set_cfg("ln_default", rms_scaling=True), "error", None,
                                     "LayerNormalization rms_scaling over gamma and beta"),
        "gn-groups-0": (set_cfg("gn2_rank3", groups=0), "error", None, "GroupNormalization groups 0"),
        "gn-groups-negative": (set_cfg("gn2_rank3", groups=-1), "error", None, "GroupNormalization groups -1"),
        "gn-groups-3": (set_cfg("gn2_rank3", groups=3), "error", None, "GroupNormalization 3 groups of 8 channels"),
        "gn-groups-16": (set_cfg("gn2_rank3", groups=16), "error", None, "GroupNormalization 16 groups of 8"),
        "gn-groups-2^24": (set_cfg("gn2_rank3", groups=1 << 24), "error", None, "GroupNormalization groups 2^24"),
        "gn-groups-missing": (pop_cfg("gn2_rank3", "groups"), "error", None,
                              "GroupNormalization without groups (32 of 8 channels)"),
        "gn-axis-0": (set_cfg("gn2_rank3", axis=0), "error", None, "GroupNormalization axis 0"),
        "gn-axis-5": (set_cfg("gn2_rank3", axis=5), "error", None, "GroupNormalization axis 5"),
        "gn-axis-minus-5": (set_cfg("gn2_rank3", axis=-5), "error", None, "GroupNormalization axis -5"),
        "gn-axis-1": (set_cfg("gn2_rank3", axis=1), "error", None, "GroupNormalization axis 1 over 8-channel gamma"),
        "gn-axis-list": (set_cfg("gn2_rank3", axis=[-1]), "ok-or-error", None, "GroupNormalization axis [-1]"),
        "rms-axis-empty": (set_cfg("rms_default", axis=[]), "error", None, "RMSNormalization axis []"),
        "rms-axis-0": (set_cfg("rms_default", axis=0), "error", None, "RMSNormalization axis 0"),
        "rms-axis-3-2": (set_cfg("rms_axis23", axis=[3, 2]), "ok", None, "RMSNormalization axis [3, 2] (sorted)"),
        "unit-axis-empty": (set_cfg("unit_last", axis=[]), "error", None, "UnitNormalization axis []"),
        "unit-axis-0": (set_cfg("unit_last", axis=0), "error", None, "UnitNormalization axis 0"),
        "unit-axis-repeated-resolved": (set_cfg("unit_axis12", axis=[2, -2]), "error", None,
                                        "UnitNormalization axis [2, -2] (both 2)"),
    }
    for label, (edit, expect, static, attack) in norm.items():
        zoo_edit(g, f"tfm-norm-{label}", "norm", f"norm_{label}", [edit], attack, expect, static)
    t = kt("t", [None, 5, 6])
    softmax = {
        # label: (edits, expect, static, extra inputs, attack)
        "axis-empty": ([set_cfg("softmax_axis1", axis=[])], "error", None, (), "axis []"),
        "axis-0": ([set_cfg("softmax_axis1", axis=0)], "error", None, (), "axis 0"),
        "axis-2^40": ([set_cfg("softmax_axis1", axis=1 << 40)], "error", None, (), "axis 2^40"),
        "axis-65": ([set_cfg("softmax_axis1", axis=65)], "error", None, (), "axis 65"),
        "axis-3-rank3": ([set_cfg("softmax_axis1", axis=3)], "error", None, (), "axis 3 of a rank-3 input"),
        "axis-string": ([set_cfg("softmax_axis1", axis="1")], "error", None, (), "axis '1'"),
        "axis-repeated": ([set_cfg("softmax_axis12", axis=[1, 1])], "error", None, (), "axis [1, 1]"),
        "axis-repeated-resolved": ([set_cfg("softmax_axis12", axis=[1, -3])], "error", None, (), "axis [1, -3]"),
        "axis-all": ([set_cfg("softmax_axis12", axis=[1, 2, 3])], "ok", None, (), "axis [1, 2, 3] (valid)"),
        "mask-rank4": ([set_kwargs("softmax_mask_arg", mask=kt("r4", [None, 3, 4, 6]))], "error", None, (),
                       "mask= a rank-4 tensor on a rank-3 input"),
        "mask-batch-aligned": ([set_kwargs("softmax_mask_arg", mask=kt("a", [None, 6]))], "error", "ok-or-error", (),
                               "mask= a (batch, 6) tensor (aligned from the end, its batch meets axis 1)"),
        "mask-1x6": ([add_input("sm1", [1, 6]), set_kwargs("softmax_mask_arg", mask=kt("sm1", [None, 1, 6]))],
                     "ok", None, ("tfm_sm16.npy",), "mask= (batch, 1, 6), broadcast (valid)"),
        "mask-open-9x9": ([add_input("smo", [None, None]), set_kwargs("softmax_mask_arg",
                                                                      mask=kt("smo", [None, None, None]))],
                          "error", "ok-or-error", ("tfm_sm99.npy",), "mask= an open input fed (batch, 9, 9)"),
        "mask-rank2-input": ([add_input("smr", [6]), set_kwargs("softmax_mask_arg", mask=kt("smr", [None, 6]))],
                             "error", "ok-or-error", ("tfm_sm6.npy",), "mask= a (batch, 6) input"),
        "mask-inputs-twice": ([set_kwargs("softmax_mask_arg", inputs=t)], "error", None, (), "inputs= passed twice"),
        "mask-foo": ([set_kwargs("softmax_mask_arg", foo=t)], "error", None, (), "foo= a tensor"),
        "mask-list": ([set_kwargs("softmax_mask_arg", mask=[t])], "error", None, (), "mask= a list"),
        "mask-self": ([set_kwargs("softmax_mask_arg", mask=kt("softmax_mask_arg", [None, 5, 6]))], "error",
                      "ok-or-error", (), "mask= its own output"),
    }
    for label, (edits_, expect, static, extra, attack) in softmax.items():
        zoo_edit(g, f"tfm-softmax-{label}", "ein", f"softmax_{label}", edits_, f"Softmax {attack}", expect, static,
                 extra)


# MARK: activations, NaN and empty inputs

def generate_activations(g):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    hostile = x.copy()
    hostile[0, 0, :] = np.nan
    hostile[0, 1, 2] = np.inf
    hostile[0, 2, :] = -np.inf
    hostile[1, 0, :] = np.inf
    hostile[1, 1, :] = 3e38
    hostile[1, 2, :] = -3e38
    save(g, "tfm_x46.npy", x)
    save(g, "tfm_x46_nan.npy", hostile)
    save(g, "tfm_x57.npy", rng.standard_normal((3, 5, 7)).astype(np.float32))
    save(g, "tfm_x7.npy", rng.standard_normal((3, 7)).astype(np.float32))
    save(g, "tfm_x1.npy", rng.standard_normal((3,)).astype(np.float32))

    def act(name, activation, shape):
        layers = [inp("x", shape), node("Activation", "a", [kt("x", [None, *shape])], activation=activation)]
        functional(g.path(name), layers, ["x"], ["a"])
        return name
    fn = {"module": "keras.activations", "class_name": "function", "config": "glu", "registered_name": "function"}
    cases = {
        # label: (activation, shape, input, expect, static, attack)
        "glu-odd": ("glu", [5, 7], "tfm_x57.npy", "error", None, "glu on a last axis of 7"),
        "glu-open-odd": ("glu", [None], "tfm_x7.npy", "error", "ok-or-error", "glu on an open axis fed 7"),
        "glu-rank1": ("glu", [], "tfm_x1.npy", "error", None, "glu on (batch,)"),
        "glu": ("glu", [4, 6], "tfm_x46.npy", "ok", None, "glu on 6 (valid)"),
        "glu-function": (fn, [4, 6], "tfm_x46.npy", "ok", None, "glu as a serialized function (valid)"),
        "sparsemax-nan": ("sparsemax", [4, 6], "tfm_x46_nan.npy", "ok", None, "sparsemax of NaN, ±inf, ±3e38"),
        "threshold": ("threshold", [4, 6], "tfm_x46.npy", "error", "ok-or-error", "threshold (Keras cannot call it)"),
    }
    for a in ("celu", "squareplus", "soft_shrink", "hard_shrink", "sparse_plus", "tanh_shrink", "hard_tanh",
              "log_sigmoid", "sparse_sigmoid"):
        cases[f"{a}-nan"] = (a, [4, 6], "tfm_x46_nan.npy", "ok", None, f"{a} of NaN, ±inf, ±3e38")
    for label, (activation, shape, x_in, expect, static, attack) in cases.items():
        name = act(f"tfm_act_{label}.h5", activation, shape)
        g.add(f"tfm-act-{label}", "tfm", f"Activation {attack}", [name, x_in],
              model_runs(name, [x_in], expect, static=static))
    w = Weights(10)
    layers = [inp("x", [4, 6]), node("MultiHeadAttention", "mha", [kt("x", [None, 4, 6]), kt("x", [None, 4, 6])],
                                     {"use_causal_mask": True}, **mha_cfg(2, 3, 3))]
    functional(g.path("tfm_nan_mha.h5"), layers, ["x"], ["mha"], {"mha": w.mha(6, 6, 6, 2, 3, 3, 6)})
    g.add("tfm-nan-mha", "tfm", "causal MultiHeadAttention on NaN, ±inf, ±3e38",
          ["tfm_nan_mha.h5", "tfm_x46_nan.npy"], model_runs("tfm_nan_mha.h5", ["tfm_x46_nan.npy"], "ok", verify=False))
    layers = [inp("x", [4, 6]),
              node("LayerNormalization", "ln", [kt("x", [None, 4, 6])], axis=[-1], epsilon=0.0, center=True,
                   scale=True),
              node("GroupNormalization", "gn", [kt("x", [None, 4, 6])], groups=3, axis=-1, epsilon=0.0),
              node("UnitNormalization", "un", [kt("x", [None, 4, 6])], axis=[1, 2]),
              node("RMSNormalization", "rn", [kt("x", [None, 4, 6])], axis=[-1], epsilon=0.0),
              node("Softmax", "sm", [kt("x", [None, 4, 6])], axis=[1, 2])]
    functional(g.path("tfm_nan_norm.h5"), layers, ["x"], ["ln", "gn", "un", "rn", "sm"],
               {"ln": [("gamma", w(6)), ("beta", w(6))], "gn": [("gamma", w(6)), ("beta", w(6))],
                "rn": [("scale", w(6))]})
    g.add("tfm-nan-norm", "tfm", "every normalization (epsilon 0) and a two-axis Softmax on NaN, ±inf, ±3e38",
          ["tfm_nan_norm.h5", "tfm_x46_nan.npy"], model_runs("tfm_nan_norm.h5", ["tfm_x46_nan.npy"], "ok",
                                                             verify=False))
    vit_nan = np.load(g.fixture("data/mnist_x.npy"))[:8].copy()
    vit_nan[0, 0, 0, 0] = np.nan
    vit_nan[1, 5, 5, 0] = np.inf
    vit_nan[2] = -np.inf
    save(g, "tfm_vit_x_nan.npy", vit_nan)
    x = ins(["tfm_vit_x_nan.npy", VIT_IN[1]])
    g.add("tfm-nan-vit", "tfm", "the vit fixture on images with NaN and ±inf pixels",
          ["tfm_vit.h5", "tfm_vit_x_nan.npy", VIT_IN[1]],
          [run(["{pare}", "run", "tfm_vit.h5", *x], "ok"),
           run(["{pare}", "prune", "tfm_vit.h5", "o.h5", "--ratio", "0.5", *x], "ok-or-error", outputs=["o.h5"])])


def generate_empty(g):
    """Open sequence axes fed zero steps, or zero examples."""
    w = Weights(11)
    x = kt("x", [None, None, 6])
    layers = [inp("x", [None, 6]),
              node("MultiHeadAttention", "mha", [x, x], {"use_causal_mask": True}, **mha_cfg(2, 1, 1)),
              node("LayerNormalization", "ln", [x], axis=[1, 2], epsilon=1e-3, center=False, scale=False),
              node("Softmax", "sm", [x], axis=[1]),
              node("EinsumDense", "e", [x], equation="abc,cd->abd", output_shape=[None, 3], bias_axes=None,
                   activation="linear"),
              node("Attention", "att", [[x, x]], use_scale=False, score_mode="dot", dropout=0.0)]
    functional(g.path("tfm_open.h5"), layers, ["x"], ["mha", "ln", "sm", "e", "att"],
               {"mha": w.mha(6, 6, 6, 2, 1, 1, 6), "e": [("kernel", w(6, 3))]})
    save(g, "tfm_open_steps0.npy", np.zeros((3, 0, 6), np.float32))
    save(g, "tfm_open_batch0.npy", np.zeros((0, 4, 6), np.float32))
    save(g, "tfm_open_steps1.npy", np.random.default_rng(11).standard_normal((3, 1, 6)).astype(np.float32))
    g.add("tfm-open-steps-0", "tfm", "attention, normalization, Softmax, EinsumDense on zero-step sequences",
          ["tfm_open.h5", "tfm_open_steps0.npy"], model_runs("tfm_open.h5", ["tfm_open_steps0.npy"], "error", "ok"))
    g.add("tfm-open-batch-0", "tfm", "the same on zero examples", ["tfm_open.h5", "tfm_open_batch0.npy"],
          model_runs("tfm_open.h5", ["tfm_open_batch0.npy"], "error", "ok",
                     names=["tfm_open.h5", "tfm_open_batch0.npy"]))
    g.add("tfm-open-steps-1", "tfm", "the same on one-step sequences", ["tfm_open.h5", "tfm_open_steps1.npy"],
          model_runs("tfm_open.h5", ["tfm_open_steps1.npy"], "ok"))


def generate_long(g):
    """Attention is quadratic in the sequence, and Pare does not cap it (a declared 30,000 steps run
    for minutes in the debug build; README says so): 1,500 steps, 16 random examples, in 20 s."""
    w = Weights(12)
    x = kt("x", [None, 1500, 1])
    layers = [inp("x", [1500, 1]),
              node("MultiHeadAttention", "mha", [x, x], {"use_causal_mask": True}, **mha_cfg(2, 1, 1))]
    functional(g.path("tfm_long.h5"), layers, ["x"], ["mha"], {"mha": w.mha(1, 1, 1, 2, 1, 1, 1)})
    save(g, "tfm_long_x.npy", np.random.default_rng(12).standard_normal((1, 1500, 1)).astype(np.float32))
    g.add("tfm-long-1500", "tfm", "causal MultiHeadAttention over 1,500 steps: quadratic work, done in time",
          ["tfm_long.h5", "tfm_long_x.npy"],
          [run(["{pare}", "check", "tfm_long.h5"], "ok", timeout=20),
           run(["{pare}", "run", "tfm_long.h5", "--input", "tfm_long_x.npy"], "ok-or-error", timeout=20),
           run(["{pare}", "prune", "tfm_long.h5", "o.h5", "--ratio", "0.5"], "ok-or-error", outputs=["o.h5"],
               timeout=20)])


# MARK: head pruning

def generate_heads(g):
    x = ins(VIT_IN)
    f = "tfm_vit.h5"

    def prune(*selection, expect="ok", has=None, command="prune"):
        inputs = x if command == "prune" else []  # `mask` runs nothing: it takes no --input
        return run(["{pare}", command, f, "o.h5", *selection, *inputs], expect, outputs=["o.h5"], has=has)
    selections = {
        # label: (runs, attack)
        "keep-0": ([prune("--keep", "mha0=0", expect="refused", has="at least one head")], "--keep mha0=0"),
        "keep-5": ([prune("--keep", "mha0=5", expect="refused", has="only 4 heads")], "--keep mha0=5 of 4"),
        "keep-int64-max": ([prune("--keep", "mha0=9223372036854775807", expect="refused", has="only 4 heads")],
                           "--keep mha0=2^63-1"),
        "drop-99": ([prune("--drop", "mha0=99", expect="refused", has="head 99")], "--drop mha0=99"),
        "drop-int64-max": ([prune("--drop", "mha0=9223372036854775807", expect="refused", has="head")],
                           "--drop mha0=2^63-1"),
        "drop-negative": ([prune("--drop", "mha0=-1", expect="usage", has="--drop")], "--drop mha0=-1"),
        "drop-all": ([prune("--drop", "mha0=0,1,2,3", expect="refused", has="at least one head")],
                     "--drop every head"),
        "drop-repeated": ([prune("--drop", "mha0=0,0")], "--drop mha0=0,0"),
        "ratio-layer-1": ([prune("--ratio", "mha0=1", expect="refused", has="[0, 1)")], "--ratio mha0=1"),
        "ratio-layer-nan": ([prune("--ratio", "mha0=nan", expect="refused", has="[0, 1)")], "--ratio mha0=nan"),
        "ratio-layer-0.99": ([prune("--ratio", "mha0=0.99", expect="refused", has="at least one head")],
                             "--ratio mha0=0.99 (would keep no head)"),
        # A global ratio leaves every other layer at least one channel; attention layers must keep a head too.
        "ratio-global-0.99": ([prune("--ratio", "0.99"), prune("--ratio", "0.99", command="mask")],
                              "--ratio 0.99 over every layer (once: 'an attention layer keeps at least one head')"),
        "keep-1": ([prune("--keep", "mha0=1"), prune("--keep", "mha0=1", command="mask")], "--keep mha0=1"),
        "keep-and-drop": ([prune("--keep", "mha0=1", "--drop", "mha0=0")], "--keep mha0=1 --drop mha0=0"),
        "mean-activation": ([prune("--ratio", "0.5", "--criterion", "mean-activation", "--calibration", VIT_IN[0],
                                   "--calibration", VIT_IN[1]),
                             prune("--ratio", "0.5", "--criterion", "apoz", "--calibration", VIT_IN[0],
                                   "--calibration", VIT_IN[1])], "heads ranked on calibration data"),
    }
    for label, (runs, attack) in selections.items():
        g.add(f"tfm-heads-{label}", "tfm", f"vit: {attack}", [f, *VIT_IN], runs)
    att = zoo_inputs("att")
    g.add("tfm-heads-scores-output", "tfm", "--drop the heads of a layer whose scores are a model output",
          [zoo_file("att"), *att],
          [run(["{pare}", "prune", zoo_file("att"), "o.h5", "--drop", "mha_scores=0", *ins(att)], "refused",
               outputs=["o.h5"], has="cannot be removed")])
    w = Weights(13)
    q = kt("x", [None, 5, 6])
    save(g, "tfm_x56.npy", np.random.default_rng(13).standard_normal((4, 5, 6)).astype(np.float32))
    models = {
        # label: (layers, weights, raw weights, outputs, attack)
        "one-head": ([inp("x", [5, 6]), node("MultiHeadAttention", "mha1", [q, q], **mha_cfg(1, 4, 4)),
                      node("Dense", "d", [kt("mha1", [None, 5, 6])], units=3, activation="linear", use_bias=True)],
                     {"mha1": w.mha(6, 6, 6, 1, 4, 4, 6), "d": [("kernel", w(6, 3)), ("bias", w(3))]}, {}, ["d"],
                     "--ratio 0.5 on a model with a one-head MultiHeadAttention"),
        "gate-window": ([inp("x", [5, 6]), node("MultiHeadAttention", "mha_g", [q, q], {"use_causal_mask": True},
                                                **mha_cfg(4, 3, 3, use_gate=True, sliding_window=2))],
                        {"mha_g": w.mha(6, 6, 6, 4, 3, 3, 6, gate=True)}, {}, ["mha_g"],
                        "heads of a gated, causal, sliding-window MultiHeadAttention"),
        "shared": ([inp("x", [5, 6]),
                    {"class_name": "MultiHeadAttention", "name": "mha_sh",
                     "config": {"name": "mha_sh", **mha_cfg(4, 3, 3)},
                     "inbound_nodes": [{"args": [q, q], "kwargs": {}},
                                       {"args": [kt("mha_sh", [None, 5, 6]), kt("mha_sh", [None, 5, 6])],
                                        "kwargs": {}}]}],
                   {"mha_sh": w.mha(6, 6, 6, 4, 3, 3, 6)}, {}, [["mha_sh", 1, 0]],
                   "heads of a MultiHeadAttention called twice (on its own output)"),
        # Keras 3's own layout of a nested model: the inner model's group holds `mha_in/query/kernel`…,
        # whose owner is mha_in, not `query`.
        "nested": ([inp("x", [5, 6]),
                    {"class_name": "Functional", "name": "inner", "config": {
                        "name": "inner", "layers": [
                            inp("xi", [5, 6]),
                            node("MultiHeadAttention", "mha_in", [kt("xi", [None, 5, 6]), kt("xi", [None, 5, 6])],
                                 **mha_cfg(4, 3, 3))],
                        "input_layers": ["xi", 0, 0], "output_layers": ["mha_in", 0, 0]},
                     "inbound_nodes": [{"args": [q], "kwargs": {"mask": None}}]},
                    node("Dense", "d", [kt("inner", [None, 5, 6])], units=3, activation="linear", use_bias=True)],
                   {"d": [("kernel", w(6, 3)), ("bias", w(3))]},
                   {"inner": [(f"mha_in/{v}", a) for v, a in w.mha(6, 6, 6, 4, 3, 3, 6)]}, ["d"],
                   "a nested model holding a MultiHeadAttention (as Keras 3 saves it)"),
    }
    for label, (layers, weights, raw, outputs, attack) in models.items():
        name = f"tfm_heads_{label}.h5"
        functional(g.path(name), layers, ["x"], outputs, weights, raw_weights=raw)
        xs = ins(["tfm_x56.npy"])
        g.add(f"tfm-heads-{label}", "tfm", attack, [name, "tfm_x56.npy"],
              [run(["{pare}", "check", name], "ok"), run(["{pare}", "run", name, *xs], "ok"),
               run(["{pare}", "prune", name, "o.h5", "--ratio", "0.5", *xs], "ok", outputs=["o.h5"]),
               run(["{pare}", "prune", name, "o.h5", "--drop-dead", *xs], "ok-or-error", outputs=["o.h5"]),
               run(["{pare}", "mask", name, "o.h5", "--ratio", "0.5"], "ok", outputs=["o.h5"])])


def generate_uncalled(g):
    """A MultiHeadAttention no call reaches, its weights contradicting its config (Pare checks a
    layer's weights against its first call): nothing may divide by a zero value_dim or trap."""
    w = Weights(14)
    dense = node("Dense", "d", [kt("x", [None, 5, 6])], units=4, activation="linear", use_bias=True)
    mha = {"class_name": "MultiHeadAttention", "name": "mha", "config": {"name": "mha", **mha_cfg(2, 3, 3)},
           "inbound_nodes": []}
    variants = {
        "value-dim-0": [("query/kernel", w(6, 2, 3)), ("query/bias", w(2, 3)), ("key/kernel", w(6, 2, 3)),
                        ("key/bias", w(2, 3)), ("value/kernel", np.zeros((6, 2, 0), np.float32)),
                        ("value/bias", np.ones(5, np.float32)), ("attention_output/kernel", w(2, 3, 6)),
                        ("attention_output/bias", w(6))],
        "fewer-heads": [("query/kernel", w(6, 1, 3)), ("query/bias", w(1, 3)), ("key/kernel", w(6, 2, 3)),
                        ("key/bias", w(2, 3)), ("value/kernel", w(6, 2, 3)), ("value/bias", w(2, 3)),
                        ("attention_output/kernel", w(7, 3, 6)), ("attention_output/bias", w(6))],
        "scalars": [(v, np.float32(1)) for v, _ in w.mha(6, 6, 6, 2, 3, 3, 6)],
    }
    save(g, "tfm_x56u.npy", np.random.default_rng(14).standard_normal((4, 5, 6)).astype(np.float32))
    for label, ws in variants.items():
        name = f"tfm_uncalled_{label}.h5"
        functional(g.path(name), [inp("x", [5, 6]), dense, mha], ["x"], ["d"],
                   {"d": [("kernel", w(6, 4)), ("bias", w(4))], "mha": ws})
        runs = [run(["{pare}", "check", name], "ok-or-error"),
                run(["{pare}", "run", name, "--input", "tfm_x56u.npy"], "ok-or-error")]
        for sel in (["--drop-dead"], ["--drop", "mha=0"], ["--keep", "mha=1"], ["--ratio", "0.5", "--criterion", "l2"]):
            runs.append(run(["{pare}", "mask", name, "o.h5", *sel], "ok-or-error", outputs=["o.h5"]))
            runs.append(run(["{pare}", "prune", name, "o.h5", *sel, "--input", "tfm_x56u.npy"], "ok-or-error",
                            outputs=["o.h5"]))
        g.add(f"tfm-uncalled-{label}", "tfm", f"an uncalled MultiHeadAttention with {label} weights",
              [name, "tfm_x56u.npy"], runs)


def generate_softmax_mask_pruning(g):
    """A Softmax's mask= tensor is not a channel of its input: pruning its producer changes the
    mask's shape (the pruned model is then invalid) or zeroes mask entries in the masked baseline."""
    w = Weights(15)

    def dense(name, source, shape, units):
        return node("Dense", name, [kt(source, [None, *shape])], units=units, activation="linear", use_bias=True)
    save(g, "tfm_x54.npy", np.random.default_rng(15).standard_normal((4, 5, 4)).astype(np.float32))
    save(g, "tfm_x56s.npy", np.random.default_rng(16).standard_normal((4, 5, 6)).astype(np.float32))
    models = {
        # label: (layers, weights, outputs, input, attack)
        "two-dense": ([inp("x", [5, 4]), dense("a", "x", [5, 4], 6), dense("b", "x", [5, 4], 6),
                       node("Softmax", "sm", [kt("a", [None, 5, 6])], {"mask": kt("b", [None, 5, 6])}, axis=1),
                       dense("o", "sm", [5, 6], 3)],
                      {"a": [("kernel", w(4, 6)), ("bias", w(6))], "b": [("kernel", w(4, 6)), ("bias", w(6))],
                       "o": [("kernel", w(6, 3)), ("bias", w(3))]}, ["o"], "tfm_x54.npy",
                      "Softmax(axis=1) of one Dense masked by another"),
        "one-unit": ([inp("x", [5, 4]), dense("a", "x", [5, 4], 6), dense("b", "x", [5, 4], 1),
                      node("Softmax", "sm", [kt("a", [None, 5, 6])], {"mask": kt("b", [None, 5, 1])}, axis=1),
                      dense("o", "sm", [5, 6], 3)],
                     {"a": [("kernel", w(4, 6)), ("bias", w(6))], "b": [("kernel", w(4, 1)), ("bias", w(1))],
                      "o": [("kernel", w(6, 3)), ("bias", w(3))]}, ["o"], "tfm_x54.npy",
                     "Softmax(axis=1) masked by a one-unit Dense (broadcast)"),
        "input-masked-by-dense": ([inp("x", [5, 6]), dense("b", "x", [5, 6], 6),
                                   node("Softmax", "sm", [kt("x", [None, 5, 6])], {"mask": kt("b", [None, 5, 6])},
                                        axis=1),
                                   dense("o", "sm", [5, 6], 3), dense("o2", "b", [5, 6], 2)],
                                  {"b": [("kernel", w(6, 6)), ("bias", w(6))],
                                   "o": [("kernel", w(6, 3)), ("bias", w(3))],
                                   "o2": [("kernel", w(6, 2)), ("bias", w(2))]}, ["o", "o2"], "tfm_x56s.npy",
                                  "Softmax(axis=1) of an input masked by a Dense"),
        "mha-mask-dense": ([inp("x", [5, 4]), dense("m", "x", [5, 4], 5),
                            node("MultiHeadAttention", "mha", [kt("x", [None, 5, 4]), kt("x", [None, 5, 4])],
                                 {"attention_mask": kt("m", [None, 5, 5])}, **mha_cfg(2, 2, 2))],
                           {"m": [("kernel", w(4, 5)), ("bias", w(5))], "mha": w.mha(4, 4, 4, 2, 2, 2, 4)}, ["mha"],
                           "tfm_x54.npy", "a MultiHeadAttention whose attention_mask is a Dense's output"),
        "einsum-chain": ([inp("x", [5, 4]), dense("a", "x", [5, 4], 6),
                          node("EinsumDense", "e", [kt("a", [None, 5, 6])], equation="abc,cd->abd",
                               output_shape=[None, 8], bias_axes="d", activation="relu"), dense("o", "e", [5, 8], 3)],
                         {"a": [("kernel", w(4, 6)), ("bias", w(6))], "e": [("kernel", w(6, 8)), ("bias", w(8))],
                          "o": [("kernel", w(8, 3)), ("bias", w(3))]}, ["o"], "tfm_x54.npy",
                         "Dense → dense-like EinsumDense → Dense (both pruned)"),
    }
    for label, (layers, weights, outputs, x_in, attack) in models.items():
        name = f"tfm_prune_{label}.h5"
        functional(g.path(name), layers, ["x"], outputs, weights)
        g.add(f"tfm-prune-{label}", "tfm", attack, [name, x_in],
              [run(["{pare}", "check", name], "ok"), run(["{pare}", "run", name, "--input", x_in], "ok"),
               run(["{pare}", "prune", name, "o.h5", "--ratio", "0.5", "--input", x_in], "ok", outputs=["o.h5"])])


# MARK: .keras archives

def generate_keras3_weights(g):
    members = base.keras_members(g.path("tfm_vit.keras"))
    group = "layers/multi_head_attention"

    def replace(path, array):
        def mutate(f):
            del f[path]
            f.create_dataset(path, data=array)
        return mutate

    def replace_all(f):
        for p in ("query", "key", "value"):
            replace(f"{group}/{p}_dense/vars/0", np.zeros((32, 2, 8), np.float32))(f)
            replace(f"{group}/{p}_dense/vars/1", np.zeros((2, 8), np.float32))(f)
    weights = {
        "softmax-var": (lambda f: f[f"{group}/_softmax/vars"].create_dataset("0", data=np.zeros(3, np.float32)),
                        "a dataset in the MultiHeadAttention's _softmax/vars"),
        "dropout-var": (lambda f: f[f"{group}/_dropout_layer/vars"].create_dataset("0", data=np.zeros(3, np.float32)),
                        "a dataset in its _dropout_layer/vars"),
        "own-var": (lambda f: f[f"{group}/vars"].create_dataset("0", data=np.zeros(3, np.float32)),
                    "a dataset in its own vars"),
        "no-query-bias": (lambda f: f.__delitem__(f"{group}/query_dense/vars/1"), "no query bias"),
        "query-2-heads": (replace(f"{group}/query_dense/vars/0", np.zeros((32, 2, 8), np.float32)),
                          "a (32, 2, 8) query kernel for 4 heads"),
        "qkv-2-heads": (replace_all, "query, key and value kernels of 2 heads, output of 4"),
        "output-2-heads": (replace(f"{group}/output_dense/vars/0", np.zeros((2, 8, 32), np.float32)),
                           "a (2, 8, 32) output kernel for 4 heads"),
        "gate-group": (lambda f: f[group].create_group("_gate_dense/vars").create_dataset(
            "0", data=np.zeros((32, 4, 8), np.float32)), "a _gate_dense without use_gate"),
        "key-scalar": (replace(f"{group}/key_dense/vars/0", np.float32(1)), "a scalar key kernel"),
        "key-dense-missing": (lambda f: f.__delitem__(f"{group}/key_dense"), "no key_dense group"),
    }
    for label, (mutate, attack) in weights.items():
        name = f"tfm_k3w_{label}.keras"
        path = g.path(f"tfm_k3w_{label}.weights.h5")
        with open(path, "wb") as out:
            out.write(members["model.weights.h5"])
        with h5py.File(path, "r+") as f:
            mutate(f)
        base.write_keras(g.path(name), members, path)
        g.add(f"tfm-k3w-{label}", "tfm", f"vit.keras with {attack}", [name, *VIT_IN], model_runs(name, VIT_IN))

    def mha0(**values):
        def edit(c):
            for entry in c["config"]["layers"]:
                if entry["name"] == "mha0":
                    entry["config"].update(values)
        return edit
    configs = {
        "heads-2": (mha0(num_heads=2), "num_heads 2 over 4-head kernels"),
        "heads-2^24": (mha0(num_heads=1 << 24), "num_heads 2^24"),
        "gate": (mha0(use_gate=True), "use_gate true without a gate"),
    }
    for label, (edit, attack) in configs.items():
        name = f"tfm_k3c_{label}.keras"
        m = dict(members)
        c = json.loads(m["config.json"])
        edit(c)
        m["config.json"] = json.dumps(c).encode()
        base.write_keras(g.path(name), m)
        g.add(f"tfm-k3c-{label}", "tfm", f"vit.keras config.json: {attack}", [name, *VIT_IN], model_runs(name, VIT_IN))


def generate(g):
    write_bases(g)
    write_mask_inputs(g)
    generate_bases(g)
    generate_mha_config(g)
    generate_calls(g)
    generate_keras2_calls(g)
    generate_dot_rank4(g)
    generate_einsum(g)
    generate_batch_sum(g)
    generate_norm_softmax(g)
    generate_activations(g)
    generate_empty(g)
    generate_long(g)
    generate_heads(g)
    generate_uncalled(g)
    generate_softmax_mask_pruning(g)
    generate_keras3_weights(g)

