"""Class "upg": `convert OLD.h5 NEW.keras` (a Keras 2 / tf.keras 2 file upgraded to Keras 3, verified)
and `convert NEW.keras OUT.h5 --keras 2` (a Keras 3 model written for tf.keras 2), attacked the way a
review of the upgrade code did:

- calls the two Keras lines read differently from Pare: a Keras 2 inbound node whose entries carry
  different keyword arguments (tf.keras and Keras 3's legacy loader take the *last* entry's, Pare
  the first's), node indices that only Pare's "shift where indices overflow" rule resolves (tf.keras
  numbers a nested model's calls from 1 only when it was built on its own Input, and never shifts a
  plain layer), nested Functional models whose calls are model outputs (Keras 3 writes and reads
  `output_layers` one above the call for a nested Functional, not for a Sequential), `_CONSTANT_VALUE`
  entries, Keras 3 calls inside a Keras 2 config;
- keyword arguments Pare's Keras 2 reader skips (`training=True` on a Dropout, a constant `foo=3` on a
  Dense, tensors pointing at unknown layers or far past their calls): refused in one line that names
  the file and does not blame "a bug in Pare";
- configs only Pare accepts: unknown keys, keys the upgrade renames onto a key that is already there
  (the written config.json then holds a key twice, which Pare itself cannot read back), dtype policies
  without a name, integer dtypes on a Dense, a `string` model input, ThresholdedReLU thetas, an
  unknown initializer class;
- BatchNormalization axis lists and renorm weights, CuDNNLSTM / CuDNNGRU weights of the wrong size,
  time_major / stateful recurrent layers, a Sequential with an InputLayer after its first layer and a
  layer named like the input the upgrade adds;
- Keras 2's hard_sigmoid: a shared Activation whose producer is read elsewhere too, a TimeDistributed
  producer (a tanh inside: the fold into its weights is wrong, a Rescaling would be exact), a
  Bidirectional whose explicit backward_layer alone uses it;
- a recurrent layer inside a nested model (a plain tf.keras 2 model Pare refused: "has 0 weights");
- masks: with no --input the upgrade is verified on uniform [0, 1) inputs and token ids that are
  almost never 0, which exercise no mask, so models whose Keras 2 and Keras 3 mask rules differ
  (Masking + Add, attention over fully masked rows, Softmax with mask=) pass the verification and
  are written although real (padded) data drifts: expected refused, as with their own inputs;
- `--keras 2`: calls that pass every tensor by keyword (tf.keras's list form cannot carry them),
  quantization_config, lora_rank, a quantized dtype policy, a mask operation feeding a layer,
  MultiHeadAttention use_gate, a nested model whose InputLayer is not listed first;
- size: 8,000 layers (the upgrade and the rewrite were quadratic in the layer count: 53 s to upgrade
  8,000 in a debug build; killed at 25 s here), nested models 150, 168 (the written config would nest
  deeper than Pare's JSON reader allows: refused, so Pare never writes what it cannot read back) and
  200 deep.

Bases: copies of fixtures/upgrade and the zoo files (tf.keras 2 and Keras 3) with their inputs, and
small models written here with h5py in tf.keras 2.15's and Keras 3.15's legacy layouts. Each base is
run unedited first ("upg-base-…").

Silent mis-conversions whose only symptom is wrong numbers (the run exits 0) cannot be told apart here
from right ones; those cases are "ok" or "ok-or-error" and guard against crashes only: their numbers
are checked by loading the outputs in Keras (tools/crosscheck).
"""
import json
import os
import subprocess

import h5py
import numpy as np

import base
from common import run

STR = h5py.string_dtype()
K2 = "2.15.0"
K3 = "3.15.1"
BUG = ("crashed", "a bug in Pare")  # a hostile file is the file's fault, not Pare's
CHAIN = 8000  # layers: ~7 s to upgrade or rewrite in a debug build (53 s while it was quadratic)

FIXTURES = {
    # label: (fixture without .h5, number of inputs)
    "nested": ("upgrade/nested_shared", 2),
    "thr": ("upgrade/thresholded_seq", 1),
    "misc": ("upgrade/keras2_misc", 2),
    "hs": ("upgrade/hard_sigmoid_zoo", 2),
    "dot2": ("zoo/dense_attention_zoo_tfkeras2", 4),
    "att2": ("zoo/attention_zoo_tfkeras2", 6),
    "ein2": ("zoo/einsum_zoo_tfkeras2", 4),
    "att3": ("zoo/attention_zoo", 6),
    "ein3": ("zoo/einsum_zoo", 4),
    "nest3": ("zoo/nested_zoo", 2),
    "mask3": ("zoo/mask_zoo", 3),
    "cudnn": ("zoo/cudnn_zoo_tfkeras2", 1),
}


def fx(label):
    return f"upg_{label}.h5"


def fx_inputs(label):
    return [f"upg_{label}_in{i}.npy" for i in range(FIXTURES[label][1])]


def ins(inputs):
    return [a for i in inputs for a in ("--input", i)]


def up(f, inputs=(), expect="ok", out="o.keras", extra=(), **kw):
    """`convert f out` (an upgrade when f is a Keras 2 model and out a Keras 3 file)."""
    return run(["{pare}", "convert", f, out, *ins(inputs), *extra], expect, outputs=[out], **kw)


def down(f, inputs=(), expect="ok", extra=(), **kw):
    """`convert f o.h5 --keras 2`."""
    return run(["{pare}", "convert", f, "o.h5", "--keras", "2", *ins(inputs), *extra], expect, outputs=["o.h5"],
               **kw)


# MARK: config edits

def entries(c):
    """A model config's layer list (Sequential: possibly the bare list of Keras <= 2.2.2)."""
    inner = c["config"]
    return inner if isinstance(inner, list) else inner["layers"]


def layer(c, name):
    for entry in entries(c):
        if entry.get("name", entry.get("config", {}).get("name")) == name:
            return entry
    raise KeyError(name)


def set_cfg(layer_name, **values):
    return lambda c: layer(c, layer_name)["config"].update(values)


def pop_cfg(name, key):
    return lambda c: layer(c, name)["config"].pop(key)


def set_inbound(name, nodes):
    return lambda c: layer(c, name).__setitem__("inbound_nodes", nodes)


def config_edit(*edits):
    def mutate(f):
        c = json.loads(f.attrs["model_config"])
        for edit in edits:
            edit(c)
        f.attrs["model_config"] = json.dumps(c)
    return mutate


def edited(g, label, name, *edits, weights=None):
    """A copy of base `label` with `edits` applied to its model_config and `weights(h5py.File)` to its
    weights; returns its name and the base's inputs."""
    def mutate(f):
        config_edit(*edits)(f)
        if weights:
            weights(f)
    base.mutated_copy(g, fx(label), name, mutate)
    return name, fx_inputs(label)


def kt(name, shape, dtype="float32", node=0, index=0):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": dtype, "keras_history": [name, node, index]}}


# MARK: writing small models

def inp2(name, shape, dtype="float32"):
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_input_shape": [None, *shape], "dtype": dtype, "sparse": False, "ragged": False,
                       "name": name}}


def inp3(name, shape):
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "sparse": False, "ragged": False,
                       "name": name}}


def lay(class_name, name, nodes, **config):
    return {"class_name": class_name, "name": name, "inbound_nodes": nodes,
            "config": {"name": name, "trainable": True, "dtype": "float32", **config}}


def dense(name, units, nodes, activation="linear"):
    return lay("Dense", name, nodes, units=units, activation=activation, use_bias=True,
               kernel_initializer={"class_name": "GlorotUniform", "config": {"seed": None}},
               bias_initializer={"class_name": "Zeros", "config": {}}, kernel_regularizer=None,
               bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None)


LSTM = {"return_sequences": False, "return_state": False, "go_backwards": False, "stateful": False, "unroll": False,
        "time_major": False, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
        "unit_forget_bias": True, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2}


def call2(*refs):
    """One Keras 2 call: `[[layer, node, tensor, kwargs], …]`."""
    return [[r[0], r[1] if len(r) > 1 else 0, r[2] if len(r) > 2 else 0, r[3] if len(r) > 3 else {}] for r in refs]


def call3(*refs, **kwargs):
    """One Keras 3 call of tensors `(layer, node, shape)`."""
    return {"args": [kt(r[0], r[2], node=r[1]) for r in refs], "kwargs": kwargs}


def functional(name, layers, inputs, outputs):
    return {"class_name": "Functional",
            "config": {"name": name, "trainable": True, "layers": layers,
                       "input_layers": [[i, 0, 0] for i in inputs], "output_layers": outputs}}


def write_model(path, config, weights=None, version=K2):
    """A legacy .h5 of `config`; `weights` maps a top-level layer to [(weight name, array)], each
    stored under the layer's group as named (`d/kernel:0`, or a nested model's `ed/kernel:0`)."""
    weights = weights or {}
    with h5py.File(path, "w", libver="latest") as f:  # "latest": attributes past 64 KiB (the long chains)
        f.attrs["keras_version"] = version
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = version
        mw.attrs["backend"] = "tensorflow"
        names = [e.get("name", e["config"]["name"]) for e in entries(config)]
        mw.attrs.create("layer_names", names, dtype=STR)
        for n in names:
            lg = mw.create_group(n)
            ws = weights.get(n, [])
            lg.attrs.create("weight_names", [w for w, _ in ws], dtype=STR)
            for w, a in ws:
                lg.create_dataset(w, data=np.asarray(a, dtype=np.float32))


class Rng:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape, scale=0.7):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)


def save(g, name, array):
    np.save(g.path(name), np.asarray(array, dtype=np.float32))
    return name


# MARK: bases

def write_bases(g):
    for label, (fixture, count) in FIXTURES.items():
        g.copy_fixture(f"{fixture}.h5", fx(label))
        for i in range(count):
            g.copy_fixture(f"{fixture}_in{i}.npy", f"upg_{label}_in{i}.npy")
    w = Rng(31)
    # Dense -> Dropout -> Dense (tf.keras 2)
    write_model(g.path("upg_drop.h5"), functional("drop", [
        inp2("x", [4]), dense("d1", 5, [call2(("x",))]), lay("Dropout", "drop", [call2(("d1",))], rate=0.5),
        dense("d2", 2, [call2(("drop",))])], ["x"], [["d2", 0, 0]]),
        {"d1": [("d1/kernel:0", w(4, 5)), ("d1/bias:0", w(5))], "d2": [("d2/kernel:0", w(5, 2)), ("d2/bias:0", w(2))]})
    save(g, "upg_drop_in0.npy", w(8, 4, scale=2))
    # Masking + Masking -> Add -> LSTM (tf.keras 2); padded inputs
    write_model(g.path("upg_masking_add.h5"), functional("masking_add", [
        inp2("p", [5, 3]), inp2("q", [5, 3]), lay("Masking", "mp", [call2(("p",))], mask_value=0.0),
        lay("Masking", "mq", [call2(("q",))], mask_value=0.0), lay("Add", "add", [call2(("mp",), ("mq",))]),
        lay("LSTM", "lstm", [call2(("add",))], units=4, **LSTM)], ["p", "q"], [["lstm", 0, 0]]),
        {"lstm": [("lstm/lstm_cell/kernel:0", w(3, 16)), ("lstm/lstm_cell/recurrent_kernel:0", w(4, 16)),
                  ("lstm/lstm_cell/bias:0", w(16))]})
    p, q = w(8, 5, 3, scale=2), w(8, 5, 3, scale=2)
    p[:, 1] = 0
    q[:, 3] = 0
    p[:4, 4] = 0
    save(g, "upg_masking_add_in0.npy", p)
    save(g, "upg_masking_add_in1.npy", q)
    # a nested Functional (built on its own Input) called on a and b; one call is a model output
    enc2 = functional("enc", [inp2("ei", [4]), dense("ed", 3, [call2(("ei",))])], ["ei"], [["ed", 0, 0]])
    enc_w = [("ed/kernel:0", w(4, 3)), ("ed/bias:0", w(3))]
    for label, out, other in (("first", 1, 2), ("second", 2, 1)):
        enc = dict(enc2, name="enc", inbound_nodes=[call2(("a",)), call2(("b",))])
        write_model(g.path(f"upg_nested_out_k2_{label}.h5"), functional("nf", [
            inp2("a", [4]), inp2("b", [4]), enc, dense("d", 2, [call2(("enc", other))])], ["a", "b"],
            [["enc", out, 0], ["d", 0, 0]]),
            {"enc": enc_w, "d": [("d/kernel:0", w(3, 2)), ("d/bias:0", w(2))]})
    # the same in Keras 3's legacy .h5: calls counted from 0, output_layers one above for a Functional
    enc3 = functional("enc", [inp3("ei", [4]), dict(dense("ed", 3, [call3(("ei", 0, [None, 4]))]))],
                      ["ei"], [["ed", 0, 0]])
    enc3["config"]["input_layers"], enc3["config"]["output_layers"] = ["ei", 0, 0], ["ed", 0, 0]
    enc3_w = [("ed/kernel", w(4, 3)), ("ed/bias", w(3))]
    for label, out, other in (("first", 1, 1), ("second", 2, 0), ("past", 3, 0)):
        enc = dict(enc3, name="enc", inbound_nodes=[call3(("a", 0, [None, 4]), mask=None),
                                                    call3(("b", 0, [None, 4]), mask=None)])
        write_model(g.path(f"upg_nested_out_k3_{label}.h5"), functional("nf", [
            inp3("a", [4]), inp3("b", [4]), enc, dense("d", 2, [call3(("enc", other, [None, 3]))])], ["a", "b"],
            [["enc", out, 0], ["d", 0, 0]]),
            {"enc": enc3_w, "d": [("d/kernel", w(3, 2)), ("d/bias", w(2))]}, version=K3)
    save(g, "upg_nf_in0.npy", w(8, 4, scale=2))
    save(g, "upg_nf_in1.npy", w(8, 4, scale=2))
    # an LSTM inside a nested Functional (tf.keras 2)
    enc = functional("enc", [inp2("ei", [5, 4]), lay("LSTM", "enc_lstm", [call2(("ei",))], units=3, **LSTM)],
                     ["ei"], [["enc_lstm", 0, 0]])
    enc.update(name="enc", inbound_nodes=[call2(("x",))])
    write_model(g.path("upg_nested_lstm.h5"), functional("nl", [inp2("x", [5, 4]), enc], ["x"], [["enc", 1, 0]]),
                {"enc": [("enc_lstm/lstm_cell/kernel:0", w(4, 12)),
                         ("enc_lstm/lstm_cell/recurrent_kernel:0", w(3, 12)), ("enc_lstm/lstm_cell/bias:0", w(12))]})
    save(g, "upg_nested_lstm_in0.npy", w(8, 5, 4, scale=2))
    # hard_sigmoid after TimeDistributed(Dense(tanh)); a shared hard_sigmoid Activation; a producer
    # that is also a model output
    td_inner = {"class_name": "Dense", "config": dense("tdin", 4, [], activation="tanh")["config"]}
    write_model(g.path("upg_hs_td_tanh.h5"), functional("hs_td", [
        inp2("t", [4, 3]), lay("TimeDistributed", "td", [call2(("t",))], layer=td_inner),
        lay("Activation", "hs", [call2(("td",))], activation="hard_sigmoid")], ["t"], [["hs", 0, 0]]),
        {"td": [("td/kernel:0", w(3, 4, scale=2)), ("td/bias:0", w(4))]})
    save(g, "upg_hs_td_tanh_in0.npy", w(8, 4, 3, scale=2))
    write_model(g.path("upg_hs_shared.h5"), functional("hs_shared", [
        inp2("x", [4]), dense("d1", 3, [call2(("x",))]), dense("d2", 3, [call2(("x",))]),
        lay("Activation", "shs", [call2(("d1",)), call2(("d2",))], activation="hard_sigmoid"),
        lay("Concatenate", "cat", [call2(("shs", 0), ("shs", 1))], axis=-1),
        dense("out", 3, [call2(("d1",))])], ["x"], [["cat", 0, 0], ["out", 0, 0]]),
        {"d1": [("d1/kernel:0", w(4, 3, scale=2)), ("d1/bias:0", w(3))],
         "d2": [("d2/kernel:0", w(4, 3, scale=2)), ("d2/bias:0", w(3))],
         "out": [("out/kernel:0", w(3, 3)), ("out/bias:0", w(3))]})
    save(g, "upg_hs_shared_in0.npy", w(8, 4, scale=2))
    # long chains of Activation layers (no weights) in both dialects
    write_chain(g.path("upg_chain_k2.h5"), CHAIN, keras3=False)
    write_chain(g.path("upg_chain_k3.h5"), CHAIN, keras3=True)
    for depth in (150, 168, 200):
        write_deep(g.path(f"upg_deep{depth}.h5"), depth)


def write_chain(path, n, keras3):
    layers = [inp3("x", [2]) if keras3 else inp2("x", [2])]
    prev = "x"
    for i in range(n):
        node = call3((prev, 0, [None, 2])) if keras3 else call2((prev,))
        layers.append(lay("Activation", f"l{i}", [node], activation="relu"))
        prev = f"l{i}"
    write_model(path, functional("chain", layers, ["x"], [[prev, 0, 0]]), version=K3 if keras3 else K2)


def write_deep(path, depth):
    """`depth` Functional models each holding the next, the innermost an Activation (tf.keras 2)."""
    inner = functional(f"m{depth}", [inp2(f"i{depth}", [2]),
                                     lay("Activation", "a", [call2((f"i{depth}",))], activation="relu")],
                       [f"i{depth}"], [["a", 0, 0]])
    for d in range(depth - 1, 0, -1):
        inner.update(name=f"m{d + 1}", inbound_nodes=[call2((f"i{d}",))])
        inner = functional(f"m{d}", [inp2(f"i{d}", [2]), inner], [f"i{d}"], [[f"m{d + 1}", 1, 0]])
    inner.update(name="m1", inbound_nodes=[call2(("x",))])
    write_model(path, functional("top", [inp2("x", [2]), inner], ["x"], [["m1", 1, 0]]))


# MARK: cases

def generate_bases(g):
    for label, (fixture, _) in FIXTURES.items():
        f, inputs = fx(label), fx_inputs(label)
        keras3 = not fixture.endswith("tfkeras2") and not fixture.startswith("upgrade/")
        if keras3:
            drifts = label in ("att3", "ein3", "mask3")
            rs = [down(f, inputs, "error" if drifts else "ok")]
            if drifts:
                rs.append(down(f, inputs, extra=["--accept-drift"]))
        else:
            # hard_sigmoid_zoo's lstm_act_hs and the attention/einsum/mask zoos' masked outputs differ
            # between the lines by design: refused, and written with --accept-drift.
            drifts = label in ("hs", "att2", "ein2")
            rs = [up(f, inputs, "error" if drifts else "ok")]
            if drifts:
                rs.append(up(f, inputs, extra=["--accept-drift"]))
            else:
                rs.append(up(f, inputs, out="o.weights.h5"))
        g.add(f"upg-base-{label}", "upg", f"the unedited {fixture} fixture", [f, *inputs], rs)
    nf = ["upg_nf_in0.npy", "upg_nf_in1.npy"]
    models = {
        # file: (inputs, attack)
        "upg_drop.h5": (["upg_drop_in0.npy"], "Dense -> Dropout -> Dense (the keyword cases' base)"),
        "upg_nested_lstm.h5": (["upg_nested_lstm_in0.npy"],
                               "an LSTM inside a nested Functional, as tf.keras 2.21 writes it (Pare refused it: "
                               "'enc/enc_lstm (LSTM): has 0 weights')"),
        "upg_hs_shared.h5": (["upg_hs_shared_in0.npy"], "a shared Activation(hard_sigmoid) (the Rescaling path)"),
        "upg_nested_out_k2_first.h5": (nf, "a nested Functional called on a and b, its first call a model output "
                                           "(Keras 3 reads output_layers one above for it: the upgrade must write 1)"),
        "upg_nested_out_k2_second.h5": (nf, "the same with its second call the model output"),
    }
    for name, (inputs, attack) in models.items():
        g.add(f"upg-base-{name[4:-3].replace('_', '-')}", "upg", attack, [name, *inputs],
              [up(name, inputs), up(name, inputs, out="o.weights.h5"), run(["{pare}", "check", name], "ok")])


def generate_masks(g):
    """Models whose masks Keras 2 and Keras 3 treat differently: without --input the verification runs
    no mask and the upgrade was written; with the models' own (padded) inputs it drifts."""
    cases = {
        # label: (file, inputs, direction, attack)
        "masking-add": ("upg_masking_add.h5", ["upg_masking_add_in0.npy", "upg_masking_add_in1.npy"], up,
                        "Masking + Masking -> Add -> LSTM: tf.keras keeps a step both keep, Keras 3 one either keeps"),
        "attention-up": (fx("att2"), fx_inputs("att2"), up, "tf.keras 2 MultiHeadAttention over fully masked rows"),
        "einsum-up": (fx("ein2"), fx_inputs("ein2"), up, "tf.keras 2 Softmax with mask= over fully masked rows"),
        "attention-down": (fx("att3"), fx_inputs("att3"), down, "Keras 3 MultiHeadAttention written for tf.keras 2"),
        "einsum-down": (fx("ein3"), fx_inputs("ein3"), down, "Keras 3 Softmax with mask= written for tf.keras 2"),
    }
    for label, (f, inputs, direction, attack) in cases.items():
        g.add(f"upg-mask-{label}", "upg", f"{attack}: verified on random inputs (no mask) it must still be refused",
              [f, *inputs],
              [direction(f, (), "error"), direction(f, (), "error", extra=["--random", "64", "--seed", "7"]),
               direction(f, inputs, "error"), direction(f, inputs, "ok", extra=["--accept-drift"])])


def generate_calls(g):
    """Keras 2 calls: entries that disagree, indices only Pare's shift resolves, constants, dialects."""
    q, v = ["q", 0, 0, {}], ["v", 0, 0, {}]
    nosuch = {"mask": [None, ["nosuch", 0, 0]]}
    cases = {
        # label: (base, edits, expect, attack)
        "kwargs-last-invalid": ("dot2", [set_inbound("att_dot", [[q, ["v", 0, 0, nosuch]]])], "error",
                                "an Attention whose last entry passes mask= [None, nosuch]: tf.keras reads the last "
                                "entry's keywords and cannot load it; Pare read only the first"),
        "kwargs-first-invalid": ("dot2", [set_inbound("att_dot", [[["q", 0, 0, nosuch], v]])], "error",
                                 "an Attention whose first entry alone passes mask= [None, nosuch] (tf.keras resolves "
                                 "every entry's keywords, then calls with the last one's)"),
        "kwargs-causal-last": ("dot2", [set_inbound("att_causal", [[q, ["q", 0, 0, {"use_causal_mask": True}]]])],
                               "ok-or-error", "use_causal_mask on the last entry only (tf.keras: causal; Pare: not)"),
        "kwargs-causal-first": ("dot2", [set_inbound("att_causal", [[["q", 0, 0, {"use_causal_mask": True}], q]])],
                                "ok-or-error", "use_causal_mask on the first entry only (tf.keras: not causal)"),
        "node-plain-past": ("nested", [set_inbound("probs", [[["merge", 1, 0, {}]]])], "error",
                            "a once-called Concatenate referenced as node 1 (tf.keras never resolves it: it loops)"),
        "node-nested-0": ("nested", [set_inbound("block", [[["encoder", 0, 0, {}]], [["encoder", 1, 0, {}]]]),
                                     set_inbound("diff", [[["encoder", 0, 0, {}], ["encoder", 1, 0, {}]]])], "error",
                          "a nested Functional built on its own Input referenced as nodes 0 and 1 (tf.keras numbers "
                          "its calls from 1 and cannot resolve node 0; Pare's shift read them as calls 0 and 1)"),
        "node-nested-skip": ("nested", [set_inbound("block", [[["encoder", 1, 0, {}]], [["encoder", 1, 0, {}]]]),
                                        set_inbound("diff", [[["encoder", 1, 0, {}], ["encoder", 1, 0, {}]]])],
                             "ok-or-error",
                             "a nested model called twice whose second call nothing reads (tf.keras: [encoder, 1] is "
                             "its first call; Pare's overflow shift read the second)"),
        "node-negative": ("nested", [set_inbound("probs", [[["merge", -1, 0, {}]]])], "error", "node -1"),
        "node-2^62": ("nested", [set_inbound("probs", [[["merge", 1 << 62, 0, {}]]])], "error", "node 2^62"),
        "tensor-2^62": ("nested", [set_inbound("probs", [[["merge", 0, 1 << 62, {}]]])], "error", "tensor 2^62"),
        "node-float": ("nested", [set_inbound("probs", [[["merge", 0.0, 0, {}]]])], "ok-or-error", "node 0.0"),
        "constant": ("nested", [set_inbound("probs", [[["_CONSTANT_VALUE", -1, 3.0, {}]]])], "error",
                     "a _CONSTANT_VALUE entry as a Dense's input"),
        "keras3-call": ("nested", [set_inbound("probs", [{"args": [kt("merge", [None, 14])], "kwargs": {}}])], "error",
                        "a Keras 3 {args, kwargs} call in a tf.keras 2 config"),
        "keras3-entry": ("nested", [set_inbound("probs", [[kt("merge", [None, 14])]])], "error",
                         "a Keras 3 tensor as a Keras 2 entry"),
        "empty-call": ("nested", [set_inbound("probs", [[]])], "error", "an empty call"),
    }
    for label, (base_label, edits, expect, attack) in cases.items():
        f, inputs = edited(g, base_label, f"upg_call_{label}.h5", *edits)
        g.add(f"upg-call-{label}", "upg", attack, [f, *inputs],
              [up(f, inputs, expect, lacks=BUG, timeout=20), run(["{pare}", "check", f], "ok-or-error", timeout=20)])


def generate_keywords(g):
    """Keyword arguments on layers whose calls Pare's Keras 2 reader does not read."""
    def kw(layer_name, src, kwargs):
        return set_inbound(layer_name, [[[src, 0, 0, kwargs]]])
    cases = {
        # label: (edit, expect, attack)
        "training-true": (kw("drop", "d1", {"training": True}), "error",
                          "Dropout(training=True): tf.keras drops units at inference; Pare ignored it"),
        "dense-constant": (kw("d2", "drop", {"foo": 3}), "error",
                           "Dense(foo=3): neither line can call it; Pare ignored it and wrote a .keras Keras refuses"),
        "dense-tensor": (kw("d2", "drop", {"foo": ["d1", 0, 0]}), "error", "Dense(foo=<d1>)"),
        "mask-unknown": (kw("d2", "drop", {"mask": ["nosuch", 0, 0]}), "error", "mask= a layer that does not exist"),
        "mask-2^40": (kw("d2", "drop", {"mask": ["d1", 1 << 40, 0]}), "error", "mask= call 2^40 of d1"),
        "mask-negative": (kw("d2", "drop", {"mask": ["d1", -5, 0]}), "error", "mask= call -5 of d1"),
        "mask-4": (kw("d2", "drop", {"mask": ["d1", 0, 0, {}]}), "error", "mask= a 4-element entry"),
        "mask-dense": (kw("d2", "drop", {"mask": ["d1", 0, 0]}), "ok-or-error",
                       "mask= a float (batch, 5) tensor on a Dense (both lines pass it on; Pare's rewrite blamed "
                       "itself)"),
    }
    for label, (edit, expect, attack) in cases.items():
        f = f"upg_kw_{label}.h5"
        base.mutated_copy(g, "upg_drop.h5", f, config_edit(edit))
        rs = [up(f, ["upg_drop_in0.npy"], expect, lacks=BUG)]
        if label == "training-true":
            rs.append(up(f, (), expect, lacks=BUG))
        g.add(f"upg-kw-{label}", "upg", attack, [f, "upg_drop_in0.npy"], rs)


def generate_configs(g):
    """Layer configs: keys only Pare accepts, keys renamed onto keys already there, dtypes, thetas."""
    thr = {
        # label: (edits, expect, extra runs' expect with --accept-drift or None, attack)
        "theta-negative": ([set_cfg("thr", theta=-0.5)], "error", None, "theta -0.5"),
        "theta-nan": ([set_cfg("thr", theta=float("nan"))], "error", None, "theta NaN"),
        "theta-inf": ([set_cfg("thr", theta=float("inf"))], "error", None, "theta Infinity"),
        "theta-string": ([set_cfg("thr", theta="0.5")], "error", None, "theta '0.5'"),
        "theta-list": ([set_cfg("thr", theta=[0.5])], "error", None, "theta [0.5]"),
        "theta-null": ([set_cfg("thr", theta=None)], "error", None, "theta null (tf.keras refuses None)"),
        "theta-missing": ([pop_cfg("thr", "theta")], "ok", None, "no theta (tf.keras's default 1.0)"),
        "theta-0": ([set_cfg("thr", theta=0)], "ok", None, "theta 0"),
        "theta-1e300": ([set_cfg("thr", theta=1e300)], "ok-or-error", None,
                        "theta 1e300 (float32 +inf: every output 0 in both lines; Pare refused it as drifting "
                        "with 'max abs 0.0, relative 0.0')"),
        "thr-threshold": ([set_cfg("thr", threshold=0.9)], "error", "error",
                          "ThresholdedReLU with a threshold key too: the upgrade adds a second 'threshold'"),
        "thr-max-value": ([set_cfg("thr", max_value=0.2)], "error", "error",
                          "ThresholdedReLU with max_value: written twice in the ReLU"),
        "leaky-both": ([set_cfg("leaky", negative_slope=0.9)], "error", "error",
                       "LeakyReLU with alpha and negative_slope: alpha is renamed onto negative_slope"),
        "leaky-no-alpha": ([pop_cfg("leaky", "alpha")], "ok", None, "LeakyReLU without alpha (default 0.3)"),
        "input-both-shapes": ([set_cfg("x", batch_shape=[None, 10])], "error", "error",
                              "InputLayer with batch_input_shape and batch_shape: config.json gets batch_shape twice"),
        "input-both-dtypes": ([set_cfg("x", input_dtype="float64")], "error", "error",
                              "InputLayer with dtype and input_dtype: config.json gets dtype twice"),
        "input-string": ([set_cfg("x", dtype="string")], "ok-or-error", None,
                         "a string model input feeding a Dense (Pare ignores input dtypes; tf.keras casts to them)"),
        "dense-unknown-key": ([set_cfg("d1", foo=1)], "error", None, "a Dense config key no Keras takes"),
        "dense-int32": ([set_cfg("d1", dtype="int32")], "error", None,
                        "a Dense of dtype int32 (tf.keras cannot build it; the upgrade made it float32)"),
        "dtype-no-name": ([set_cfg("d1", dtype={"class_name": "Policy", "config": {}})], "error", None,
                          "a dtype policy without a name"),
        "dtype-object": ([set_cfg("d1", dtype={"foo": 1})], "error", None, "a dtype that is an unknown object"),
        "initializer-unknown": ([set_cfg("d1", kernel_initializer={"class_name": "NoSuchInit", "config": {}})],
                                "error", None, "an initializer class no Keras has (Keras 3 cannot load the result)"),
        "input-second": ([lambda c: entries(c).insert(2, dict(entries(c)[0], config=dict(entries(c)[0]["config"],
                                                                                            name="x2")))],
                         "error", None, "a Sequential with a second InputLayer after its first layer"),
        "name-twice": ([set_cfg("d1", name="x")], "error", None, "a layer named like the InputLayer"),
    }
    for label, (edits, expect, drift_expect, attack) in thr.items():
        f, inputs = edited(g, "thr", f"upg_cfg_{label}.h5", *edits)
        rs = [up(f, inputs, expect, lacks=BUG + (("max abs 0.0, relative 0.0",) if label == "theta-1e300" else ()))]
        if label in ("theta-missing", "input-both-shapes", "dense-unknown-key"):
            rs.append(up(f, inputs, expect, out="o.weights.h5", lacks=BUG))
        if drift_expect:
            rs.append(up(f, inputs, drift_expect, extra=["--accept-drift"], lacks=BUG))
        g.add(f"upg-cfg-{label}", "upg", attack, [f, *inputs], rs)
    # a Sequential without an InputLayer whose second layer takes the name of the input Keras makes
    def rename_weights(f):
        mw = f["model_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in mw.attrs["layer_names"]]
        mw.move("dense_relu", "dense_hs_input")
        lg = mw["dense_hs_input"]
        lg.move("dense_relu", "dense_hs_input")
        wn = [n.decode() if isinstance(n, bytes) else n for n in lg.attrs["weight_names"]]
        lg.attrs.create("weight_names", [n.replace("dense_relu", "dense_hs_input") for n in wn], dtype=STR)
        mw.attrs.create("layer_names", [n.replace("dense_relu", "dense_hs_input") for n in names], dtype=STR)
    g.copy_fixture("upgrade/seq_no_input.h5", "upg_seq.h5")
    g.copy_fixture("upgrade/seq_no_input_in0.npy", "upg_seq_in0.npy")
    f = "upg_cfg_input-name-taken.h5"
    base.mutated_copy(g, "upg_seq.h5", f, lambda h: (config_edit(lambda c: entries(c)[1]["config"].update(
        name="dense_hs_input"))(h), rename_weights(h)))
    g.add("upg-cfg-input-name-taken", "upg",
          "a Sequential without InputLayer whose second layer is named <first>_input (the input Keras adds)",
          [f, "upg_seq_in0.npy"], [up(f, ["upg_seq_in0.npy"], "error", lacks=BUG)])
    g.add("upg-base-seq", "upg", "the unedited upgrade/seq_no_input fixture (Keras 2.2 bare-list Sequential)",
          ["upg_seq.h5", "upg_seq_in0.npy"], [up("upg_seq.h5", ["upg_seq_in0.npy"])])


def generate_layers(g):
    """BatchNormalization, recurrent and cuDNN layers edited against their weights."""
    def weight_names(path, keep):
        def w(f):
            lg = f["model_weights"][path]
            names = [n.decode() if isinstance(n, bytes) else n for n in lg.attrs["weight_names"]]
            lg.attrs.create("weight_names", keep(names), dtype=STR)
        return w

    def resize(path, shape):
        def w(f):
            mw = f["model_weights"]
            data = mw[path][()]
            del mw[path]
            mw.create_dataset(path, data=np.resize(data, shape))
        return w
    cases = {
        # label: (base, edits, weights, expect, attack)
        "bn-axis-empty": ("misc", [set_cfg("bn", axis=[])], None, "error", "BatchNormalization axis []"),
        "bn-axis-two": ("misc", [set_cfg("bn", axis=[1, 3])], None, "error", "BatchNormalization axis [1, 3]"),
        "bn-axis-string": ("misc", [set_cfg("bn", axis=["3"])], None, "error", "BatchNormalization axis ['3']"),
        "bn-axis-null": ("misc", [set_cfg("bn", axis=[None])], None, "error", "BatchNormalization axis [null]"),
        "bn-axis-nested": ("misc", [set_cfg("bn", axis=[[3]])], None, "error", "BatchNormalization axis [[3]]"),
        "bn-axis-2.5": ("misc", [set_cfg("bn", axis=[2.5])], None, "error", "BatchNormalization axis [2.5]"),
        "bn-axis-3.0": ("misc", [set_cfg("bn", axis=[3.0])], None, "ok-or-error",
                        "BatchNormalization axis [3.0] (tf.keras cannot index a list with it)"),
        "bn-axis-int": ("misc", [set_cfg("bn", axis=3)], None, "ok", "BatchNormalization axis 3 (not a list)"),
        "bn-axis-minus-1": ("misc", [set_cfg("bn", axis=[-1])], None, "ok", "BatchNormalization axis [-1]"),
        "renorm-missing": ("misc", [], weight_names("bn_renorm", lambda n: [x for x in n if "renorm_mean" not in x]),
                           "error", "renorm with its renorm_mean left out of weight_names"),
        "renorm-on-plain": ("misc", [set_cfg("bn", renorm=True)], None, "error", "renorm true over 4 weights"),
        "renorm-off": ("misc", [set_cfg("bn_renorm", renorm=False)], None, "error", "renorm false over 7 weights"),
        "renorm-string": ("misc", [set_cfg("bn_renorm", renorm="yes")], None, "error", "renorm 'yes'"),
        "time-major-string": ("misc", [set_cfg("lstm_impl1", time_major="false")], None, "error",
                              "LSTM time_major 'false'"),
        "time-major-0": ("misc", [set_cfg("lstm_impl1", time_major=0)], None, "error", "LSTM time_major 0"),
        "time-major-true": ("misc", [set_cfg("lstm_impl1", time_major=True)], None, "error", "LSTM time_major true"),
        "stateful": ("misc", [set_cfg("lstm_impl1", stateful=True)], None, "error", "a stateful LSTM"),
        "implementation-string": ("misc", [set_cfg("lstm_impl1", implementation="fast")], None, "ok",
                                  "LSTM implementation 'fast' (a compute mode)"),
        "cudnn-bias-16": ("cudnn", [], resize("cudnn_lstm_seq/cudnn_lstm_seq/bias:0", (16,)), "error",
                          "CuDNNLSTM bias of 16 values (32 needed)"),
        "cudnn-bias-48": ("cudnn", [], resize("cudnn_lstm_seq/cudnn_lstm_seq/bias:0", (48,)), "error",
                          "CuDNNLSTM bias of 48 values"),
        "cudnn-bias-2x16": ("cudnn", [], resize("cudnn_lstm_seq/cudnn_lstm_seq/bias:0", (2, 16)), "error",
                            "CuDNNLSTM bias (2, 16)"),
        "cudnn-gru-bias-2x12": ("cudnn", [], resize("cudnn_gru_seq/cudnn_gru_seq/bias:0", (2, 12)), "error",
                                "CuDNNGRU bias (2, 12) (Keras's GRU layout, not cuDNN's flat one)"),
        "cudnn-kernel-transposed": ("cudnn", [], resize("cudnn_lstm_seq/cudnn_lstm_seq/kernel:0", (16, 3)), "error",
                                    "CuDNNLSTM kernel (16, 3)"),
        "cudnn-recurrent-16x4": ("cudnn", [], resize("cudnn_lstm_seq/cudnn_lstm_seq/recurrent_kernel:0", (16, 4)),
                                 "error", "CuDNNLSTM recurrent kernel (16, 4)"),
        "cudnn-bi-bias-12": ("cudnn", [], resize("bi_cudnn_lstm/bi_cudnn_lstm/backward_cu_dnnlstm/bias:0", (12,)),
                             "error", "Bidirectional(CuDNNLSTM) backward bias of 12 values"),
        "cudnn-units-string": ("cudnn", [set_cfg("cudnn_lstm_seq", units="4")], None, "error", "CuDNNLSTM units '4'"),
        "cudnn-time-major": ("cudnn", [set_cfg("cudnn_gru_seq", time_major=True)], None, "error",
                             "CuDNNGRU time_major true"),
        "cudnn-backward-gru": ("cudnn", [lambda c: layer(c, "bi_cudnn_lstm")["config"].__setitem__(
            "backward_layer", {"class_name": "CuDNNGRU", "config": dict(
                layer(c, "bi_cudnn_lstm")["config"]["layer"]["config"], name="backward_gru", go_backwards=True)})],
            None, "error", "Bidirectional(CuDNNLSTM) with a CuDNNGRU backward_layer"),
    }
    for label, (base_label, edits, weights, expect, attack) in cases.items():
        f, inputs = edited(g, base_label, f"upg_layer_{label}.h5", *edits, weights=weights)
        g.add(f"upg-layer-{label}", "upg", attack, [f, *inputs], [up(f, inputs, expect, lacks=BUG)])


def generate_hard_sigmoid(g):
    cases = {
        # label: (file, inputs, expect, attack)
        "td-tanh": ("upg_hs_td_tanh.h5", ["upg_hs_td_tanh_in0.npy"], "ok",
                    "Activation(hard_sigmoid) after TimeDistributed(Dense(tanh)): a Rescaling makes it exact; "
                    "Pare folded 1.2 into the Dense under the tanh and refused its own drift"),
        "shared": ("upg_hs_shared.h5", ["upg_hs_shared_in0.npy"], "ok",
                   "one Activation(hard_sigmoid) called on two Dense layers, one of them also read elsewhere"),
    }
    for label, (f, inputs, expect, attack) in cases.items():
        g.add(f"upg-hs-{label}", "upg", attack, [f, *inputs],
              [up(f, inputs, expect, lacks=BUG), up(f, (), expect, lacks=BUG)])

    def backward_only(c):
        cfg = layer(c, "bi_lstm_rec_hs")["config"]
        inner = cfg["layer"]["config"]
        cfg["backward_layer"] = {"class_name": "LSTM", "config": dict(inner, name="backward_lstm_rec_hs",
                                                                      go_backwards=True)}
        inner["recurrent_activation"] = "sigmoid"

    for label, edit, attack in (
            ("backward-only", backward_only, "a Bidirectional whose explicit backward_layer alone uses hard_sigmoid "
             "(not reported as inexact; the fixture's lstm_act_hs drifts anyway)"),
            ("dense-shared", set_inbound("dense_after_e", [[["dense_lin_d", 0, 0, {}]]]),
             "the folded producer dense_lin_d also read by another Dense (the fold must become a Rescaling)")):
        f, inputs = edited(g, "hs", f"upg_hs_{label}.h5", edit)
        g.add(f"upg-hs-{label}", "upg", attack, [f, *inputs],
              [up(f, inputs, "error", lacks=BUG), up(f, inputs, "ok", extra=["--accept-drift"])])


def generate_nested_outputs(g):
    """Nested Functional models whose calls are model outputs (Keras 3 counts those one above)."""
    nf = ["upg_nf_in0.npy", "upg_nf_in1.npy"]
    cases = {
        # label: (file, runs, attack)
        "k3-first": ("upg_nested_out_k3_first.h5", lambda f: [down(f, nf), run(["{pare}", "check", f], "ok")],
                     "Keras 3: output ['enc', 1, 0] is the first of two calls (Pare read it as the second)"),
        "k3-second": ("upg_nested_out_k3_second.h5", lambda f: [down(f, nf), run(["{pare}", "check", f], "ok")],
                      "Keras 3: output ['enc', 2, 0] is the second call, a Dense reads ['enc', 0, 0]: a file Keras "
                      "3.15 writes itself (Pare refused it: 'refers to call 0 of enc, which has 2')"),
        "k3-past": ("upg_nested_out_k3_past.h5", lambda f: [down(f, nf, "error", lacks=BUG)],
                    "Keras 3: output ['enc', 3, 0] of a twice-called Functional (Keras 3 cannot load it)"),
    }
    for label, (f, runs, attack) in cases.items():
        g.add(f"upg-nested-out-{label}", "upg", attack, [f, *nf], runs(f))


def generate_keras2_rewrite(g):
    """`--keras 2` on Keras 3 configs tf.keras has no form for."""
    def mha_keywords(c):
        layer(c, "mha_self")["inbound_nodes"] = [{"args": [], "kwargs": {"query": kt("q", [None, 5, 6]),
                                                                          "value": kt("q", [None, 5, 6])}}]

    def masking_keyword(c):
        layer(c, "masking")["inbound_nodes"] = [{"args": [], "kwargs": {"inputs": kt("m", [None, 6, 6])}}]

    def nested_input_last(c):
        inner = layer(c, "inner_functional")["config"]["layers"]
        inner.append(inner.pop(0))
    cases = {
        # label: (base, edits, expect, attack)
        "mha-all-keywords": ("att3", [mha_keywords], "error",
                             "MultiHeadAttention(query=…, value=…) with no positional argument"),
        "masking-inputs-keyword": ("att3", [masking_keyword], "error", "Masking(inputs=…)"),
        "use-gate": ("att3", [set_cfg("mha_self", use_gate=True)], "error", "MultiHeadAttention use_gate, 8 weights"),
        "quantized": ("mask3", [set_cfg("dense_before_gru", quantization_config={"mode": "int8"})], "error",
                      "a Dense with quantization_config"),
        "quantized-wrapped": ("mask3", [lambda c: layer(c, "td_dense")["config"]["layer"]["config"].update(
            quantization_config={"mode": "int8"})], "error", "a TimeDistributed Dense with quantization_config"),
        "lora": ("mask3", [set_cfg("dense_before_gru", lora_rank=2)], "error", "a Dense with lora_rank 2"),
        "quantized-policy": ("mask3", [set_cfg("dense_before_gru", dtype={
            "module": "keras", "class_name": "QuantizedDTypePolicy",
            "config": {"name": "int8_from_float32", "source_name": "float32"}, "registered_name": None})], "error",
            "a Dense with an int8_from_float32 dtype policy"),
        "operation-feeds-layer": ("mask3", [set_inbound("gmp", [{"args": [kt("zeros_like", [None, 7, 4])],
                                                                  "kwargs": {}}])], "error",
                                  "a mask operation (ZerosLike) as a GlobalMaxPooling1D's input"),
        "nested-input-last": ("nest3", [nested_input_last], "ok-or-error",
                              "a nested Functional whose InputLayer is listed last (tf.keras still numbers its "
                              "calls from 1; Pare wrote node 0, which tf.keras cannot load)"),
    }
    for label, (base_label, edits, expect, attack) in cases.items():
        f, inputs = edited(g, base_label, f"upg_k2_{label}.h5", *edits)
        g.add(f"upg-k2-{label}", "upg", attack, [f, *inputs], [down(f, inputs, expect, lacks=BUG)])


def generate_scale(g):
    g.add("upg-many-up", "upg", f"a tf.keras 2 chain of {CHAIN} Activation layers upgraded (Architecture.layer(_:) "
          "scans the list for every tensor: quadratic)", ["upg_chain_k2.h5"],
          [up("upg_chain_k2.h5", (), extra=["--random", "2"], timeout=25)])
    g.add("upg-many-down", "upg", f"a Keras 3 chain of {CHAIN} Activation layers written for tf.keras 2 (quadratic)",
          ["upg_chain_k3.h5"], [down("upg_chain_k3.h5", (), extra=["--random", "2"], timeout=25)])
    g.add("upg-deep-150", "upg", "150 nested Functional models", ["upg_deep150.h5"],
          [up("upg_deep150.h5", (), extra=["--random", "2"])])
    g.add("upg-deep-200", "upg", "200 nested Functional models (deeper than Pare's JSON reader allows)",
          ["upg_deep200.h5"], [up("upg_deep200.h5", (), "error", extra=["--random", "2"])])
    g.add("upg-deep-168", "upg", "168 nested Functional models: just under the reader's limit as tf.keras writes "
          "them, over it as Keras 3's config.json nests them", ["upg_deep168.h5"],
          [up("upg_deep168.h5", (), "ok-or-error", extra=["--random", "2"])])
    # What Pare writes it must read back: the 168-deep upgrade, made by Pare now, checked by Pare.
    out = g.path("upg_deep168_by_pare.keras")
    r = subprocess.run([g.pare, "convert", g.path("upg_deep168.h5"), out, "--random", "2"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if r.returncode == 0 and os.path.exists(out):
        g.add("upg-deep-168-readback", "upg", "Pare's own upgrade of 168 nested models read back by Pare",
              ["upg_deep168_by_pare.keras"], [run(["{pare}", "check", "upg_deep168_by_pare.keras"], "ok")])


def generate_usage(g):
    f, inputs = fx("thr"), fx_inputs("thr")
    g.add("upg-usage", "upg", "upgrade options where they do not apply", [f, *inputs, fx("att3")], [
        run(["{pare}", "convert", f, "o.keras", "--keras", "2"], "usage", has="--keras 2"),
        run(["{pare}", "convert", f, "o.h5", "--keras", "3"], "usage", has="--keras 3"),
        run(["{pare}", "convert", f, "o.keras", "--keras", "4"], "usage", has="--keras"),
        run(["{pare}", "convert", f, "o.keras", "--random", "0"], "usage", has="--random"),
        run(["{pare}", "convert", f, "o.keras", "--atol", "nan"], "usage", has="tolerances"),
        run(["{pare}", "convert", f, "o.h5", *ins(inputs)], "error"),
        run(["{pare}", "convert", f, "o.keras", "--random", "9223372036854775807"], "error"),
        run(["{pare}", "convert", f, "o.keras", "--input", fx("att3")], "error", names=[fx("att3")]),
        run(["{pare}", "convert", f, "o.keras", *ins(inputs * 2)], "error"),
    ])


def generate(g):
    write_bases(g)
    generate_bases(g)
    generate_masks(g)
    generate_calls(g)
    generate_keywords(g)
    generate_configs(g)
    generate_layers(g)
    generate_hard_sigmoid(g)
    generate_nested_outputs(g)
    generate_keras2_rewrite(g)
    generate_scale(g)
    generate_usage(g)
