"""Cross-checks files Pare wrote against their sources with h5py and real Keras.

Usage: crosscheck.py MANIFEST.json
The manifest lists {"source", "written", "kind": "full-model"|"weights-only", "architecture",
"inputs": [npy, ...], "dropped": [paths allowed to be missing]}.
For every entry:
  1. h5py: every dataset of the source is in the written file with the same dtype, shape and bytes,
     every attribute decodes to the same value, and nothing else was added;
  2. Keras: the written file loads (load_model, or load_weights into the architecture) and predicts
     exactly what the source predicts. A model with tf.keras 2's ThresholdedReLU (gone from Keras 3)
     loads with that layer re-implemented here, and must also predict the writer's saved outputs.
Other kinds (pruned, reconstructed, pare, keras3, report, sweep, tensors) are described by their checks below.
Prints 'N passed, N failed' and exits 1 on any failure.
"""
import json
import os
import re
import sys
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import numpy as np  # noqa: E402


def open_h5(path):
    """An HDF5 file, or the model.weights.h5 inside a .keras archive (read from memory)."""
    if path.endswith(".keras"):
        import io
        import zipfile
        return h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def tree(path):
    objects = {}
    with open_h5(path) as f:
        def attrs(obj):
            out = {}
            for k, v in obj.attrs.items():
                if isinstance(v, np.ndarray):
                    v = [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
                elif isinstance(v, bytes):
                    v = v.decode()
                out[k] = v
            return out
        objects["/"] = ("group", attrs(f))
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                objects[name] = ("dataset", attrs(obj), obj.dtype.str, obj.shape, obj[()].tobytes())
            else:
                objects[name] = ("group", attrs(obj))
        f.visititems(visit)
    return objects


def merged_chunks(attrs):
    """Keras splits long name lists into name0, name1...; compare them joined."""
    out = {}
    for k, v in attrs.items():
        base = k.rstrip("0123456789")
        if base != k and base in ("layer_names", "weight_names"):
            out.setdefault(base, []).extend(v if isinstance(v, list) else [v])
        else:
            out[k] = v
    return out


def compare_trees(source, written, dropped):
    a, b = tree(source), tree(written)
    problems = []
    for name, entry in a.items():
        if any(name == d or name.startswith(d + "/") for d in dropped):
            if name in b:
                problems.append(f"{name}: should have been dropped")
            continue
        if name not in b:
            problems.append(f"{name}: missing")
            continue
        other = b[name]
        if entry[0] != other[0]:
            problems.append(f"{name}: {entry[0]} became {other[0]}")
            continue
        if merged_chunks(entry[1]) != merged_chunks(other[1]):
            problems.append(f"{name}: attributes differ: {entry[1]} vs {other[1]}")
        if entry[0] == "dataset":
            if entry[2:4] != other[2:4]:
                problems.append(f"{name}: dtype/shape {entry[2:4]} became {other[2:4]}")
            elif entry[4] != other[4]:
                problems.append(f"{name}: bytes differ")
    for name in b:
        if name not in a:
            problems.append(f"{name}: added")
    return problems


def predictions(model, inputs):
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


def class_names(path):
    """Every class_name in the file's model_config (empty for a weights-only file)."""
    with h5py.File(path, "r") as f:
        config = f.attrs.get("model_config")
    names = set()
    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str):
                names.add(node["class_name"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    if config is not None:
        walk(json.loads(config.decode() if isinstance(config, bytes) else config))
    return names


def tfkeras2_thresholded_relu():
    """tf.keras 2's ThresholdedReLU, which Keras 3 removed, as tf_keras 2.21 defines it
    (tf_keras/src/layers/activation/thresholded_relu.py): theta = backend.cast_to_floatx(theta);
    call = inputs * tf.cast(tf.greater(inputs, theta), compute_dtype). Strict >, theta as float32.
    (TensorFlow gives -0.0 for negative x, XLA +0.0: equal values, so the comparison below is unaffected.)"""
    import keras

    class ThresholdedReLU(keras.layers.Layer):
        def __init__(self, theta=1.0, **kwargs):
            super().__init__(**kwargs)
            self.theta = np.float32(theta)

        def call(self, inputs):
            return inputs * keras.ops.cast(keras.ops.greater(inputs, self.theta), self.compute_dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "theta": float(self.theta)}

    return ThresholdedReLU


def saved_outputs(source):
    """The writer's own predictions saved beside a zoo fixture: NAME_out0.npy, NAME_out1.npy, ..."""
    stem, outputs = source[:-len(".h5")], []
    while os.path.exists(f"{stem}_out{len(outputs)}.npy"):
        outputs.append(np.load(f"{stem}_out{len(outputs)}.npy"))
    return outputs


def keras_check(entry):
    import keras
    from keras.src.legacy.saving import legacy_h5_format
    inputs = [np.load(p) for p in entry["inputs"]]
    notes = []
    source_loads = True
    # Keras 3 has no ThresholdedReLU and no Keras 3 twin of such a fixture exists, so both files load
    # with tf.keras 2's layer re-implemented above; source and written must still agree exactly, and
    # because that layer is ours, not Keras's, the written file must also reproduce the predictions
    # tf.keras 2 itself saved with the fixture (checked at the end).
    custom = {}
    if entry["kind"] == "full-model" and "ThresholdedReLU" in class_names(entry["source"]):
        custom = {"ThresholdedReLU": tfkeras2_thresholded_relu()}
    if entry["kind"] == "full-model":
        try:
            reference = keras.models.load_model(entry["source"], compile=False, custom_objects=custom)
        except Exception as error:  # Keras 3 cannot rebuild some tf.keras 2 configs, whoever wrote them
            source_loads = False
            notes.append(f"Keras 3 cannot load the source's config either ({type(error).__name__}); "
                         "checked by loading both files' weights into the Keras 3 architecture")
    if entry["kind"] == "full-model" and source_loads:
        candidate = keras.models.load_model(entry["written"], compile=False, custom_objects=custom)
    else:
        reference = keras.models.load_model(entry["architecture"], compile=False)
        candidate = keras.models.load_model(entry["architecture"], compile=False)
        for path, model in ((entry["source"], reference), (entry["written"], candidate)):
            with h5py.File(path, "r") as f:
                group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
                legacy_h5_format.load_weights_from_hdf5_group(group, model)
    for w1, w2 in zip(reference.weights, candidate.weights):
        if not np.array_equal(np.asarray(w1), np.asarray(w2)):
            return [f"Keras weight {w1.path} differs after loading"]
    p1, p2 = predictions(reference, inputs), predictions(candidate, inputs)
    for a, b in zip(p1, p2):
        if not np.array_equal(a, b):
            return [f"Keras predictions differ: max abs {np.max(np.abs(a - b))}"]
    if "expected" in entry:
        expected = np.load(entry["expected"])
        err = float(np.max(np.abs(p2[0] - expected)))
        if err > 1e-5 * max(1.0, float(np.max(np.abs(expected)))):
            return [f"predictions differ from the fixture's saved Keras predictions by {err}"]
    if custom:
        saved = saved_outputs(entry["source"])
        if len(saved) != len(p2):
            return [f"{len(saved)} saved tf.keras outputs beside the source, the model has {len(p2)}"]
        for i, (got, want) in enumerate(zip(p2, saved)):
            if got.shape != want.shape:
                return [f"output {i}: shape {got.shape}, tf.keras 2 saved {want.shape}"]
            err = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)
            if not err <= 1e-5:
                return [f"output {i}: differs from tf.keras 2's saved output by {err:.3g} (relative)"]
        notes.append(f"ThresholdedReLU re-implemented as tf.keras 2 defines it; {len(saved)} outputs "
                     "match tf.keras 2's saved ones within 1e-5 of their scale")
    for note in notes:
        print(f"     note: {note}")
    return []


def pruned_check(entry):
    """A pruned model: Keras loads it, counts the same parameters, and predicts what Pare predicted."""
    import keras
    model = keras.models.load_model(entry["written"], compile=False)
    problems = []
    if model.count_params() != entry["params"]:
        problems.append(f"Keras counts {model.count_params()} parameters, Pare {entry['params']}")
    for name, heads in entry.get("heads", {}).items():
        if model.get_layer(name).num_heads != heads:
            problems.append(f"Keras rebuilds '{name}' with {model.get_layer(name).num_heads} heads, not {heads}")
    inputs = [np.load(p) for p in entry["inputs"]]
    got = predictions(model, inputs)
    for i, (g, path) in enumerate(zip(got, entry["expected_outputs"])):
        want = np.load(path)
        err = float(np.max(np.abs(g - want))) / max(float(np.max(np.abs(want))), 1e-30)
        if not err <= entry.get("rtol", 1e-5):
            problems.append(f"output {i}: Keras and Pare differ by {err:.3g} (relative)")
    return problems


def pare_check(entry):
    """The independent Python reader decodes the .pare file; every tensor equals the reference file's, bit for bit."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("pare_reader", entry["reader"])
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    model, tensors = reader.read(entry["written"])
    problems = []
    with h5py.File(entry["source"], "r") as f:
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        for layer in model["layers"]:
            for w in layer["weights"]:
                want = group[layer["name"]][w["name"]][()]
                got = tensors[w["tensor"]]
                if want.dtype != got.dtype or want.shape != got.shape or want.tobytes() != got.tobytes():
                    problems.append(f"{layer['name']}/{w['name']}: Python reader disagrees with {entry['source']}")
    return problems


def load(entry, path):
    """Loads a model the way its format is loaded: load_model, or load_weights into an architecture."""
    import keras
    if path.endswith(".weights.h5") and entry.get("architecture"):
        model = keras.models.load_model(entry["architecture"], compile=False)
        model.load_weights(path)
        return model
    return keras.models.load_model(path, compile=False)


def keras3_check(entry):
    """Keras 3 formats: the written file loads as its format loads and predicts exactly what the
    reference does; with "tree", its weights file equals that one (h5py, every dataset and attribute)."""
    problems = []
    if "tree" in entry:
        problems += compare_trees(entry["tree"], entry["written"], entry.get("dropped", []))
        if problems:
            return problems
    if "config_equals" in entry:
        import zipfile
        a = zipfile.ZipFile(entry["config_equals"]).read("config.json")
        b = zipfile.ZipFile(entry["written"]).read("config.json")
        if a != b:
            problems.append("config.json differs from the source's")
    inputs = [np.load(p) for p in entry["inputs"]]
    if "expected" in entry:  # other weights than the reference's: Keras's saved predictions decide
        got = predictions(load(entry, entry["written"]), inputs)[0]
        want = np.load(entry["expected"])
        err = float(np.max(np.abs(got - want))) / max(float(np.max(np.abs(want))), 1e-30)
        return [] if err <= 1e-5 else [f"predictions differ from {entry['expected']} by {err:.3g} (relative)"]
    reference, candidate = load(entry, entry["reference"]), load(entry, entry["written"])
    if reference.count_params() != candidate.count_params():
        problems.append(f"parameters {candidate.count_params()} != {reference.count_params()}")
    for w1, w2 in zip(reference.weights, candidate.weights):
        if not np.array_equal(np.asarray(w1), np.asarray(w2)):
            problems.append(f"Keras weight {w1.path} differs after loading")
            break
    for a, b in zip(predictions(reference, inputs), predictions(candidate, inputs)):
        if not np.array_equal(a, b):
            problems.append(f"Keras predictions differ: max abs {np.max(np.abs(a - b))}")
    return problems


def keras_accuracy(path, inputs, labels, architecture=None):
    """Keras's own evaluate(): accuracy of the model in `path` on the inputs."""
    import keras
    model = load({"architecture": architecture}, path)
    binary = model.outputs[0].shape[-1] == 1
    model.compile(loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = [np.load(p) for p in inputs]
    return float(model.evaluate(x if len(x) > 1 else x[0], np.load(labels), verbose=0)[1])


def report_check(entry):
    """`pare report`'s accuracies equal Keras's evaluate() on both files."""
    report = json.load(open(entry["report"]))
    problems = []
    for side in ("before", "after"):
        want = keras_accuracy(report[side]["file"], entry["inputs"], entry["labels"])
        got = report[side]["accuracy"]
        if abs(want - got) > 1e-9:
            problems.append(f"{side}: pare report says accuracy {got}, Keras evaluate {want}")
    return problems


def sweep_check(entry):
    """Each checked point of `pare sensitivity` equals Keras's evaluate() of the same pruning made with `pare prune`."""
    curves = json.load(open(entry["sweep"]))
    points = {p["removed"]: p for p in curves[0]["points"]}
    problems = []
    for k, path in entry["pruned"].items():
        want = keras_accuracy(path, entry["inputs"], entry["labels"])
        got = points[int(k)]["accuracy"]
        if abs(want - got) > 1e-9:
            problems.append(f"K={k}: sensitivity says accuracy {got}, Keras evaluate of the pruned file {want}")
    return problems


def printed_accuracies(path):
    """The accuracy after pruning that `pare prune` or `pare sparsify` printed with --labels, one (correct,
    examples) per line like '  top-1 accuracy on LABELS: 0.9844 → 0.9766 (125 of 128)'."""
    text = open(path, encoding="utf-8").read()
    return [(int(c), int(n)) for c, n in re.findall(r"accuracy on .*: \S+ → \S+ \((\d+) of (\d+)\)$", text, re.M)]


def reconstructed_check(entry):
    """A model pruned or sparsified with --reconstruct: everything pruned_check asks (Keras loads it, counts
    Pare's parameters and predicts what `pare run` predicted within 1e-5 of the output's scale); Keras's
    evaluate() top-1 accuracy equals `pare eval --json`'s on the same file and the accuracy after
    reconstruction the command printed; a sparsified file keeps its zeros through the refit."""
    if "pare_failed" in entry:
        return [entry["pare_failed"]]
    import keras
    entry = {**entry, "params": json.load(open(entry["inspect"]))["totalParameters"]}
    problems = pruned_check(entry)
    examples = len(np.load(entry["labels"]))
    accuracy = keras_accuracy(entry["written"], entry["inputs"], entry["labels"])
    correct = round(accuracy * examples)
    if abs(accuracy * examples - correct) > 1e-3:
        return problems + [f"Keras evaluate's accuracy {accuracy} is no count of {examples} examples"]
    keras_says = f"Keras evaluate {correct} of {examples} ({accuracy:.4f})"
    evaluation = json.load(open(entry["eval"]))
    counts = (evaluation["correct"], evaluation["examples"])
    if counts != (correct, examples) or abs(evaluation["accuracy"] - accuracy) > 1e-9:
        problems.append(f"pare eval: {evaluation['correct']} of {evaluation['examples']} "
                        f"({evaluation['accuracy']:.4f}), {keras_says}")
    printed = printed_accuracies(entry["log"])
    if len(printed) != 1:
        problems.append(f"{entry['command']} printed {len(printed)} accuracy lines, not one ({entry['log']})")
    elif printed[0] != (correct, examples):
        problems.append(f"{entry['command']} printed {printed[0][0]} of {printed[0][1]} after reconstruction, "
                        + keras_says)
    if "sparsity" in entry:  # round(s·N) zeros per kernel; a rule per output column may round each column
        model = keras.models.load_model(entry["written"], compile=False)
        for w in model.weights:
            if not w.path.endswith("kernel"):
                continue
            values = np.asarray(w)
            zeros, need = int(np.sum(values == 0)), entry["sparsity"] * values.size - 0.5 * values.shape[-1]
            if zeros < need:
                problems.append(f"{w.path}: {zeros} zeros of {values.size} after reconstruction "
                                f"({zeros / values.size:.4f}), sparsity {entry['sparsity']} asked")
    return problems


def main():
    manifest = json.load(open(sys.argv[1]))
    passed = failed = 0
    for entry in manifest:
        label = f"{entry.get('source', entry['kind'])} -> {os.path.basename(entry.get('written', entry.get('report', entry.get('sweep', ''))))}"
        try:
            if entry["kind"] == "pruned":
                problems = pruned_check(entry)
            elif entry["kind"] == "reconstructed":
                problems = reconstructed_check(entry)
            elif entry["kind"] == "pare":
                problems = pare_check(entry)
            elif entry["kind"] == "keras3":
                problems = keras3_check(entry)
            elif entry["kind"] == "report":
                problems = report_check(entry)
            elif entry["kind"] == "sweep":
                problems = sweep_check(entry)
            elif entry["kind"] == "tensors":
                problems = compare_trees(entry["source"], entry["written"], entry.get("dropped", []))
            else:
                problems = compare_trees(entry["source"], entry["written"], entry.get("dropped", []))
                if not problems:
                    problems = keras_check(entry)
        except Exception:
            problems = ["exception: " + traceback.format_exc(limit=3)]
        if problems:
            failed += 1
            print(f"FAIL {label}")
            for p in problems[:10]:
                print(f"     {p}")
        else:
            passed += 1
            print(f"ok   {label}")
    print(f"crosscheck: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
