"""Class "seq": sequence models (Embedding, recurrent layers, their wrappers, Keras 3 masks, Conv1D
and 1-D pools) edited the way an attacker's review did: ids no Embedding row has, `mask=` tensors of
the wrong shape or number, operands that broadcast across the batch, windows and paddings far past
the input, references past a layer's outputs, recurrent configs the weights contradict, and a stray
variable in a Keras 3 wrapper's own `vars`.

The bases are the sequence fixtures (text_cls/keras3.h5 and .keras, the recurrent, mask, rnn_wrapper
and conv1d zoos, with their inputs); each hostile file edits one thing in a copy's `model_config`
attribute (or its model.weights.h5). The operand-rank cases, a 2^24 pool window and a mask= copied
once per merge input are small functional models written here. Each base is first run unedited ("seq-base-…", expected to work), so an error below is
the edit's and not the inputs'.

Wrong-shaped masks are only seen when a batch reaches them: `check` and `convert` (which run nothing)
may pass those files, `run`, `prune` and `verify` must refuse them in one line.
"""
import copy
import json

import h5py
import numpy as np

import base
from common import run

TEXT_IN = ["seq_ids.npy"]
ZOO_IN = {
    "mask": ["seq_mask_in0.npy", "seq_mask_in1.npy", "seq_mask_in2.npy"],
    "recurrent": ["seq_recurrent_in0.npy"],
    "wrapper": ["seq_wrapper_in0.npy", "seq_wrapper_in1.npy"],
    "conv1d": ["seq_conv1d_in0.npy"],
}
STR = h5py.string_dtype()


def ins(inputs):
    return [a for i in inputs for a in ("--input", i)]


def model_runs(f, inputs, expect="error", static=None, timeout=None, verify=True):
    """check, convert, run, prune (and verify) of model `f` on `inputs`. `static`: what check and
    convert (which run no batch) are expected to do, when it differs from `expect`."""
    static = static or expect
    x = ins(inputs)
    rs = [run(["{pare}", "check", f], static, timeout=timeout),
          run(["{pare}", "convert", f, "o.h5"], static, outputs=["o.h5"], timeout=timeout),
          run(["{pare}", "run", f, *x], expect, timeout=timeout),
          run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *x], expect, outputs=["o.h5"], timeout=timeout)]
    if verify:
        rs.append(run(["{pare}", "verify", f, f, *x], expect, timeout=timeout))
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


def kwargs(c, name):
    return layer(c, name)["inbound_nodes"][0]["kwargs"]


def config_edit(edit):
    """A mutation applying edit(config dict) to the file's model_config attribute."""
    def mutate(f):
        c = json.loads(f.attrs["model_config"])
        edit(c)
        f.attrs["model_config"] = json.dumps(c)
    return mutate


def inp(name, shape):
    return {"class_name": "InputLayer", "name": name, "inbound_nodes": [],
            "config": {"batch_shape": [None, *shape], "dtype": "float32", "name": name}}


def node(class_name, name, args, call_kwargs=None, **config):
    return {"class_name": class_name, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [{"args": args, "kwargs": call_kwargs or {}}]}


def functional(path, layers, inputs, outputs, weights=None):
    """A Keras-3-style legacy .h5 of a Functional model (mk.py of the review): `weights` maps a layer
    to [(variable, array)]."""
    weights = weights or {}
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers,
                                                  "input_layers": [[i, 0, 0] for i in inputs],
                                                  "output_layers": [[o, 0, 0] for o in outputs]}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.15.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(cfg)
        mw = f.create_group("model_weights")
        mw.attrs["keras_version"] = "3.15.1"
        mw.attrs["backend"] = "tensorflow"
        names = [entry["name"] for entry in layers]
        mw.attrs.create("layer_names", names, dtype=STR)
        for n in names:
            lg = mw.create_group(n)
            ws = weights.get(n, [])
            lg.attrs.create("weight_names", [f"{n}/{v}" for v, _ in ws], dtype=STR)
            for v, a in ws:
                lg.create_dataset(f"{n}/{v}", data=np.asarray(a, dtype=np.float32))


def write_bases(g):
    g.copy_fixture("text_cls/keras3.h5", "seq_text.h5")
    g.copy_fixture("text_cls/keras3.keras", "seq_text.keras")
    for zoo in ZOO_IN:
        src = "rnn_wrapper" if zoo == "wrapper" else zoo
        g.copy_fixture(f"zoo/{src}_zoo.h5", f"seq_{zoo}.h5")
        for i, name in enumerate(ZOO_IN[zoo]):
            g.copy_fixture(f"zoo/{src}_zoo_in{i}.npy", name)
    np.save(g.path("seq_ids.npy"), np.load(g.fixture("data/mnist_tokens.npy"))[:4])
    np.save(g.path("seq_labels.npy"), np.load(g.fixture("data/mnist_y.npy"))[:4])


def generate_bases(g):
    x = ins(TEXT_IN)
    g.add("seq-base-text", "seq", "the unedited text classifier (Embedding, Conv1D, Bidirectional GRU, LSTM)",
          ["seq_text.h5", "seq_text.keras", "seq_labels.npy", *TEXT_IN],
          [run(["{pare}", "check", "seq_text.h5"], "ok"), run(["{pare}", "run", "seq_text.h5", *x], "ok"),
           run(["{pare}", "run", "seq_text.keras", *x], "ok"),
           run(["{pare}", "eval", "seq_text.h5", *x, "--labels", "seq_labels.npy"], "ok"),
           run(["{pare}", "prune", "seq_text.h5", "o.h5", "--ratio", "0.5", *x], "ok", outputs=["o.h5"])])
    for zoo, inputs in ZOO_IN.items():
        f = f"seq_{zoo}.h5"
        g.add(f"seq-base-{zoo}", "seq", f"the unedited {zoo} zoo", [f, *inputs],
              [run(["{pare}", "check", f], "ok"), run(["{pare}", "run", f, *ins(inputs)], "ok"),
               run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", *ins(inputs)], "ok", outputs=["o.h5"])])


def generate_embedding_ids(g):
    """Ids no Embedding row has, as NPY inputs: each must be refused naming the id, never trap while
    converting it to an integer (inf, 1e30 and int64's maximum once did)."""
    tokens = np.load(g.fixture("data/mnist_tokens.npy"))[:4]
    ids = {
        "inf": (np.float32, np.inf), "neg-inf": (np.float32, -np.inf), "1e30": (np.float32, 1e30),
        "neg-1e30": (np.float32, -1e30), "int64-max": (np.int64, 2 ** 63 - 1), "uint64-max": (np.uint64, 2 ** 64 - 1),
        "nan": (np.float32, np.nan), "negative": (np.float32, -3), "negative-int32": (np.int32, -3),
        "3.5": (np.float32, 3.5), "input-dim": (np.int32, 30), "float16-inf": (np.float16, np.inf),
    }
    for label, (dtype, value) in ids.items():
        name = f"seq_ids_{label}.npy"
        a = tokens.astype(dtype)
        a[0, 3] = value
        np.save(g.path(name), a)
        x = ["--input", name]
        names = ["seq_text.h5", name]
        g.add(f"seq-embedding-id-{label}", "seq", f"an Embedding id {label} (input_dim 30) in the input",
              ["seq_text.h5", "seq_text.keras", "seq_labels.npy", name],
              [run(["{pare}", "run", "seq_text.h5", *x], names=names),
               run(["{pare}", "run", "seq_text.keras", *x], names=["seq_text.keras", name]),
               run(["{pare}", "eval", "seq_text.h5", *x, "--labels", "seq_labels.npy"], names=names),
               run(["{pare}", "verify", "seq_text.h5", "seq_text.h5", *x], names=names),
               run(["{pare}", "prune", "seq_text.h5", "o.h5", "--ratio", "0.5", *x], outputs=["o.h5"],
                   names=names)])


def mask_edits():
    """label -> (edit of mask_zoo's config, what it does). Keras 3 records `mask=` as a call argument;
    a wrong one once indexed past the end of a smaller mask (a trap) or was copied once per input."""
    def on(layer_name, ref, class_name=None):
        def edit(c):
            if class_name:
                layer(c, layer_name)["class_name"] = class_name
            kwargs(c, layer_name)["mask"] = ref
        return edit

    gap = kt("gap", [None, 4])  # (batch, 4): the sequences' masks are (batch, 7)

    def concat_rank1(c):  # mask2.py: a new Concatenate(axis=1) whose mask is rank 1
        c["config"]["layers"].append({
            "class_name": "Any", "name": "any_all", "config": {"name": "any_all", "axis": [1, 2], "keepdims": False},
            "inbound_nodes": [{"args": [kt("not_equal_3", [None, 7, 3], "bool")], "kwargs": {}}]})
        c["config"]["layers"].append({
            "class_name": "Concatenate", "name": "concat2", "config": {"name": "concat2", "axis": 1},
            "inbound_nodes": [{"args": [[kt("emb", [None, 7, 4]), kt("emb_f", [None, 7, 4])]],
                               "kwargs": {"mask": kt("any_all", [None], "bool")}}]})
        c["config"]["output_layers"].append(["concat2", 0, 0])

    return {
        "lstm-float-3d": (on("lstm_seq", kt("emb_f", [None, 7, 4])), "LSTM mask= a float (batch, 7, 4) tensor"),
        "add-gap": (on("add", gap), "Add mask= a (batch, 4) tensor"),
        "multiply-gap": (on("add", gap, "Multiply"), "Add made Multiply, mask= a (batch, 4) tensor"),
        "maximum-gap": (on("add", gap, "Maximum"), "Add made Maximum, mask= a (batch, 4) tensor"),
        "concat-gap": (on("concat", gap), "Concatenate(axis=-1) mask= a (batch, 4) tensor"),
        "concat-axis1-rank1": (concat_rank1, "a Concatenate(axis=1) whose mask= is rank 1 (Any over axes 1, 2)"),
        "bidirectional-gap": (on("bi_lstm_seq", gap), "Bidirectional mask= a (batch, 4) tensor"),
        "time-distributed-gap": (on("td_dense", gap), "TimeDistributed mask= a (batch, 4) tensor"),
        "gap1d-3d": (on("gap", kt("emb", [None, 7, 4])), "GlobalAveragePooling1D mask= a (batch, 7, 4) tensor"),
    }


def generate_masks(g):
    inputs = ZOO_IN["mask"]
    for label, (edit, attack) in mask_edits().items():
        name = f"seq_mask_{label}.h5"
        base.mutated_copy(g, "seq_mask.h5", name, config_edit(edit))
        g.add(f"seq-mask-{label}", "seq", attack, [name, *inputs],
              model_runs(name, inputs, static="ok-or-error"))
    refs = {
        "list-of-two": ([kt("not_equal", [None, 7], "bool"), kt("not_equal_1", [None, 7], "bool")],
                        "error", "mask= a list of two tensors"),
        "output-3": (kt("not_equal", [None, 7], "bool", index=3), "error", "mask= output 3 of a one-output layer"),
        "call-5": (kt("not_equal", [None, 7], "bool", node=5, index=3), "error", "mask= call 5 of a once-called layer"),
        "self": (kt("lstm_seq", [None, 7], "bool"), "ok-or-error", "mask= the layer's own output (a cycle)"),
    }
    for label, (ref, static, attack) in refs.items():
        name = f"seq_mask_{label}.h5"
        base.mutated_copy(g, "seq_mask.h5", name,
                          config_edit(lambda c, r=ref: kwargs(c, "lstm_seq").__setitem__("mask", r)))
        g.add(f"seq-mask-{label}", "seq", f"LSTM {attack}", [name, *inputs], model_runs(name, inputs, static=static))
    # mamp.py: a (1, 10000, 1000) mask= on an Add of 150 (1, 1000) inputs, once copied per input (1.5 GB).
    layers = [inp("x", [1000]), node("RepeatVector", "rep", [kt("x", [None, 1000])], n=10000),
              node("Add", "add", [[kt("x", [None, 1000])] * 150], {"mask": kt("rep", [None, 10000, 1000])})]
    functional(g.path("seq_mask_amplified.h5"), layers, ["x"], ["add"])
    np.save(g.path("seq_x1000.npy"), g.rng.random((1, 1000), dtype=np.float32))
    g.add("seq-mask-amplified", "seq", "an Add of 150 inputs whose mask= is a (1, 10000, 1000) RepeatVector",
          ["seq_mask_amplified.h5", "seq_x1000.npy"],
          [run(["{pare}", "run", "seq_mask_amplified.h5", "--input", "seq_x1000.npy", "--max-memory", "300M"],
               timeout=20),
           run(["{pare}", "run", "seq_mask_amplified.h5", "--input", "seq_x1000.npy"], timeout=20)])
    # pmask.py: an LSTM whose mask= is a Dense's output; pruning that Dense would change the mask's
    # shape, so it must be left whole (the LSTM itself may still be pruned).
    rng = np.random.default_rng(2)
    w = lambda *shape: rng.standard_normal(shape).astype(np.float32) * np.float32(0.5)  # noqa: E731
    layers = [inp("x", [7, 4]), inp("y", [3]), node("Dense", "d", [kt("y", [None, 3])], units=7),
              node("LSTM", "l", [kt("x", [None, 7, 4])], {"mask": kt("d", [None, 7])}, units=2, activation="tanh",
                   recurrent_activation="sigmoid"),
              node("Dense", "o", [kt("l", [None, 2])], units=2)]
    weights = {"d": [("kernel", w(3, 7)), ("bias", w(7))],
               "l": [("lstm_cell/kernel", w(4, 8)), ("lstm_cell/recurrent_kernel", w(2, 8)), ("lstm_cell/bias", w(8))],
               "o": [("kernel", w(2, 2)), ("bias", w(2))]}
    functional(g.path("seq_mask_from_dense.h5"), layers, ["x", "y"], ["o"], weights)
    np.save(g.path("seq_mask_x.npy"), g.rng.random((4, 7, 4), dtype=np.float32))
    np.save(g.path("seq_mask_y.npy"), g.rng.random((4, 3), dtype=np.float32))
    g.add("seq-mask-from-dense", "seq", "an LSTM whose mask= is a Dense's (batch, 7) output (pruning keeps the Dense)",
          ["seq_mask_from_dense.h5", "seq_mask_x.npy", "seq_mask_y.npy"],
          model_runs("seq_mask_from_dense.h5", ["seq_mask_x.npy", "seq_mask_y.npy"], "ok") +
          [run(["{pare}", "prune", "seq_mask_from_dense.h5", "o.h5", "--ratio", "0.5"], "ok", outputs=["o.h5"])])


def generate_functional(g):
    """Small models written here: operands of different ranks, a 2^24 pool window."""
    a, b = kt("a", [None, 1]), kt("b", [None, 1, 1, 1])
    # bc.py: (n, 1) against (n, 1, 1, 1) broadcast over the batch axis to (n, n, 1, 1): 14.4 GB for 60,000.
    np.save(g.path("seq_bc_a.npy"), g.rng.random((60000, 1), dtype=np.float32))
    np.save(g.path("seq_bc_b.npy"), g.rng.random((60000, 1, 1, 1), dtype=np.float32))
    operands = ["seq_bc_a.npy", "seq_bc_b.npy"]
    for cls in ("NotEqual", "LogicalOr"):
        name = f"seq_rank_{cls.lower()}.h5"
        functional(g.path(name), [inp("a", [1]), inp("b", [1, 1, 1]), node(cls, "op", [a, b])], ["a", "b"], ["op"])
        g.add(f"seq-rank-{cls.lower()}", "seq", f"{cls} of a (n, 1) and a (n, 1, 1, 1) tensor, n = 60,000",
              [name, *operands], model_runs(name, operands, timeout=30))
    # bc2.py: the same with a Flatten after, whose input was not the shape it was told.
    name = "seq_rank_flatten.h5"
    functional(g.path(name), [inp("a", [3]), inp("b", [1, 1, 1]), node("NotEqual", "op", [kt("a", [None, 3]), b]),
                              node("Flatten", "f", [kt("op", [None, 3])])], ["a", "b"], ["f"])
    np.save(g.path("seq_bc2_a.npy"), g.rng.random((2, 3), dtype=np.float32))
    np.save(g.path("seq_bc2_b.npy"), g.rng.random((2, 1, 1, 1), dtype=np.float32))
    g.add("seq-rank-notequal-flatten", "seq", "NotEqual of (n, 3) and (n, 1, 1, 1), then Flatten",
          [name, "seq_bc2_a.npy", "seq_bc2_b.npy"], model_runs(name, ["seq_bc2_a.npy", "seq_bc2_b.npy"]))
    # pool.py: MaxPooling1D(2^24, strides 1, 'same') on 16 steps walked 2^24 taps per position.
    name = "seq_pool_2^24.h5"
    functional(g.path(name), [inp("x", [16, 1]), node("MaxPooling1D", "p", [kt("x", [None, 16, 1])],
                                                      pool_size=[1 << 24], strides=[1], padding="same")], ["x"], ["p"])
    np.save(g.path("seq_xpool.npy"), g.rng.random((16, 16, 1), dtype=np.float32))
    g.add("seq-pool-2^24-same", "seq", "MaxPooling1D pool_size 2^24, padding same, on 16 steps (must be fast)",
          [name, "seq_xpool.npy"], model_runs(name, ["seq_xpool.npy"], "ok", timeout=10))


def generate_conv1d(g):
    inputs = ZOO_IN["conv1d"]

    def set_cfg(layer_name, key, value):
        return config_edit(lambda c: layer(c, layer_name)["config"].__setitem__(key, value))
    edits = {
        # Keras requires output_padding < strides; a larger one made the output longer than any tap reaches.
        "transpose-outpad-eq-stride": (set_cfg("transpose_outpad", "output_padding", [2]), "error",
                                       "Conv1DTranspose strides 2, output_padding 2"),
        "transpose-outpad-100": (set_cfg("transpose_outpad_same", "output_padding", [100]), "error",
                                 "Conv1DTranspose strides 3 'same', output_padding 100"),
        "maxpool-2^24-same": (set_cfg("maxpool_same", "pool_size", [1 << 24]), "ok",
                              "MaxPooling1D pool_size 2^24, strides 2, padding same (must be fast)"),
        "avgpool-2^24-same": (set_cfg("avgpool_same", "pool_size", [1 << 24]), "ok",
                              "AveragePooling1D pool_size 2^24, strides 2, padding same (must be fast)"),
    }
    for label, (mutate, expect, attack) in edits.items():
        name = f"seq_conv1d_{label}.h5"
        base.mutated_copy(g, "seq_conv1d.h5", name, mutate)
        runs = model_runs(name, inputs, expect, timeout=10 if expect == "ok" else None)
        g.add(f"seq-conv1d-{label}", "seq", attack, [name, *inputs], runs)


def generate_references(g):
    """Tensor references past what a layer has: once an index out of range."""
    refs = {
        "consumer-output-3": ("recurrent", lambda c: layer(c, "stack_gru")["inbound_nodes"][0].__setitem__(
            "args", [kt("stack_lstm", [None, 6, 5], index=3)]), "a GRU taking output 3 of a one-output LSTM"),
        "consumer-state": ("recurrent", lambda c: layer(c, "stack_gru")["inbound_nodes"][0].__setitem__(
            "args", [kt("lstm_seq_state", [None, 4], index=2)]), "a GRU taking an LSTM's (batch, 4) state"),
        "model-output-5": ("recurrent", lambda c: c["config"]["output_layers"].append(["lstm_seq_state", 0, 5]),
                           "a model output lstm_seq_state[0][5] of an LSTM with 3 outputs"),
        "model-output-state": ("recurrent", lambda c: c["config"]["output_layers"].append(["lstm_last", 0, 1]),
                               "a model output lstm_last[0][1] of an LSTM without return_state"),
    }
    for label, (zoo, edit, attack) in refs.items():
        name = f"seq_ref_{label}.h5"
        base.mutated_copy(g, f"seq_{zoo}.h5", name, config_edit(edit))
        g.add(f"seq-ref-{label}", "seq", attack, [name, *ZOO_IN[zoo]], model_runs(name, ZOO_IN[zoo]))


def generate_recurrent(g):
    def set_cfg(layer_name, key, value):
        return lambda c: layer(c, layer_name)["config"].__setitem__(key, value)

    def wrap_dense(c):
        layer(c, "bi_gru")["config"]["layer"] = {
            "module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": {"name": "dense_in_bi", "units": 3, "activation": "linear", "use_bias": True}}

    def td_lstm(c):
        layer(c, "td_dense")["config"]["layer"]["class_name"] = "LSTM"

    def bi_backward_units(c):
        bi = layer(c, "bi_gru")["config"]
        backward = copy.deepcopy(bi["layer"])
        backward["config"].update(units=7, go_backwards=True, name="backward_gru")
        bi["backward_layer"] = backward

    edits = {
        "lstm-units-0": ("recurrent", set_cfg("lstm_last", "units", 0), "error", "LSTM units 0"),
        "lstm-units-negative": ("recurrent", set_cfg("lstm_last", "units", -5), "error", "LSTM units -5"),
        "lstm-units-2^24": ("recurrent", set_cfg("lstm_last", "units", 1 << 24), "error", "LSTM units 2^24"),
        "lstm-stateful": ("recurrent", set_cfg("lstm_last", "stateful", True), "ok-or-error",
                          "LSTM stateful true (its result depends on earlier batches)"),
        "gru-reset-after-true": ("recurrent", set_cfg("gru1_seq_state", "reset_after", True), "error",
                                 "GRU reset_after true over a (12,) bias"),
        "gru-reset-after-false": ("recurrent", set_cfg("gru_seq_state", "reset_after", False), "error",
                                  "GRU reset_after false over a (2, 12) bias"),
        "bidirectional-dense": ("wrapper", wrap_dense, "error", "Bidirectional wrapping a Dense"),
        "bidirectional-merge-max": ("wrapper", set_cfg("bi_concat", "merge_mode", "max"), "error",
                                    "Bidirectional merge_mode max"),
        "bidirectional-merge-5": ("wrapper", set_cfg("bi_concat", "merge_mode", 5), "error",
                                  "Bidirectional merge_mode 5"),
        "bidirectional-backward-units": ("wrapper", bi_backward_units, "error",
                                         "Bidirectional backward_layer of 7 units over 3-unit weights"),
        "time-distributed-lstm": ("wrapper", td_lstm, "error", "TimeDistributed wrapping an LSTM"),
    }
    for label, (zoo, edit, expect, attack) in edits.items():
        name = f"seq_rnn_{label}.h5"
        base.mutated_copy(g, f"seq_{zoo}.h5", name, config_edit(edit))
        static = "ok-or-error" if label == "lstm-stateful" else expect
        runs = model_runs(name, ZOO_IN[zoo], "error", static=static)
        g.add(f"seq-rnn-{label}", "seq", attack, [name, *ZOO_IN[zoo]], runs)


def generate_keras3_weights(g):
    """k3mut.py: the Keras 3 archive's model.weights.h5 with a variable where no layer keeps one."""
    members = base.keras_members(g.path("seq_text.keras"))
    bi = "layers/bidirectional"
    strays = {
        "forward-layer-vars": (f"{bi}/forward_layer/vars", "a dataset in layers/bidirectional/forward_layer/vars"),
        "bidirectional-vars": (f"{bi}/vars", "a dataset in layers/bidirectional/vars"),
    }
    for label, (group, attack) in strays.items():
        name = f"seq_k3w_{label}.keras"
        weights = g.path(f"seq_k3w_{label}.weights.h5")
        with open(weights, "wb") as f:
            f.write(members["model.weights.h5"])
        with h5py.File(weights, "r+") as f:
            f[group].create_dataset("0", data=np.zeros(3, np.float32))
        base.write_keras(g.path(name), members, weights)
        g.add(f"seq-k3w-{label}", "seq", f"a .keras archive with {attack}", [name, *TEXT_IN],
              [run(["{pare}", "check", name]), run(["{pare}", "convert", name, "o.h5"], outputs=["o.h5"]),
               run(["{pare}", "convert", name, "o.keras"], outputs=["o.keras"]),
               run(["{pare}", "pack", name, "o.pare"], outputs=["o.pare"]),
               run(["{pare}", "run", name, *ins(TEXT_IN)])])


def generate(g):
    write_bases(g)
    generate_bases(g)
    generate_embedding_ids(g)
    generate_masks(g)
    generate_functional(g)
    generate_conv1d(g)
    generate_references(g)
    generate_recurrent(g)
    generate_keras3_weights(g)
