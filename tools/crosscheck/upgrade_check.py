"""Cross-checks Pare's Keras 2 → Keras 3 upgrades and Keras 3 → tf.keras 2 rewrites in the real
frameworks.

Usage: upgrade_check.py MANIFEST.json [LOADERS]
LOADERS (comma-separated, default all) picks the entries this run checks: "keras3", "keras3_jax" (Keras 3
with whatever backend KERAS_BACKEND names: the channels-first models TensorFlow cannot run on CPU),
"tf_keras", "refusal".
Each entry: {"loader": "keras3" | "keras3_jax" | "tf_keras", "source", "written", "inputs": [npy, ...],
"pare": [npy, ...], "expected": [npy, ...], "drift": [output index, ...], "pare_rtol"} where
  - "pare" are Pare's predictions of the written file (`pare run`),
  - "expected" are the source's writer's own predictions (tf.keras 2 for an upgrade, Keras 3 for a
    rewrite to tf.keras 2),
  - "pare_rtol" loosens both comparisons for float16 models: Pare's interpreter rounds float16 layers as
    Keras does, to within 2e-3 (InterpreterTests holds the same bound), and two frameworks (or one
    TensorFlow on CPUs with different oneDNN kernels) land a float16 output one half-precision step
    (2^-11 of its scale, about 4.9e-4) apart,
  - "drift" lists outputs Pare reported as differing between the two Keras lines (accepted with
    --accept-drift); they are held to "pare" only.
The written file must load with the loader's `load_model` and predict, within 1e-5 of each output's
scale: every output as Pare predicts it (so Pare's semantics of the new line are Keras's), and every
output not in "drift" as the source's writer did (so the conversion changed nothing).
Entries {"refused": true, "log": path, "source"} check that Pare refused and said why.
Runs in a venv with tensorflow-cpu, tf_keras and keras 3 (KERAS_BACKEND=tensorflow).
Prints 'N passed, N failed' and exits 1 on any failure.
"""
import json
import os
import sys
import traceback

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

TOLERANCE = 1e-5


def load(loader, path):
    if loader == "tf_keras":
        import tf_keras
        return tf_keras.models.load_model(path, compile=False)
    import keras
    return keras.saving.load_model(path, compile=False)


def relative(reference, got):
    reference = reference.astype(np.float64)
    scale = max(float(np.max(np.abs(reference))), 1e-12)
    return float(np.max(np.abs(reference - got))) / scale


def check(entry):
    if entry.get("refused"):
        with open(entry["log"]) as f:
            text = f.read()
        if "pare: error:" not in text:
            return [f"Pare was expected to refuse {entry['source']}: {text[-300:]}"]
        return []
    model = load(entry["loader"], entry["written"])
    inputs = [np.load(p) for p in entry["inputs"]]
    got = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    got = got if isinstance(got, list) else [got]
    problems = []
    if len(got) != len(entry["pare"]):
        return [f"{len(got)} outputs, Pare predicted {len(entry['pare'])}"]
    for i, (p, y) in enumerate(zip(entry["pare"], got)):
        r = relative(np.load(p), y)
        if r > entry.get("pare_rtol", TOLERANCE):
            problems.append(f"output {i}: {entry['loader']} differs from Pare's prediction by {r:.3g}")
    for i, (e, y) in enumerate(zip(entry["expected"], got)):
        if i in entry.get("drift", []):
            continue
        r = relative(np.load(e), y)
        if r > entry.get("pare_rtol", TOLERANCE):
            problems.append(f"output {i}: differs from the source's writer by {r:.3g}")
    drift = entry.get("drift", [])
    if drift and not any(relative(np.load(entry["expected"][i]), got[i]) > TOLERANCE for i in drift):
        problems.append(f"outputs {drift} were reported as drifting, but match the source's writer")
    return problems


def main():
    with open(sys.argv[1]) as f:
        entries = json.load(f)
    loaders = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    passed = failed = 0
    for entry in entries:
        if loaders is not None and entry.get("loader", "refusal") not in loaders:
            continue
        label = f"{entry.get('loader', 'refusal')}: {os.path.basename(entry['source'])}"
        try:
            problems = check(entry)
        except Exception:
            problems = [traceback.format_exc(limit=3)]
        if problems:
            failed += 1
            print(f"FAIL {label} -> {entry.get('written', '')}")
            for p in problems:
                print("   ", p)
        else:
            passed += 1
            print(f"ok   {label}")
    print(f"upgrade check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
