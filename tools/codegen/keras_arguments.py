"""Writes Sources/Pare/Upgrade/KerasArguments.swift: the configuration keys each layer class takes in
Keras 3 and in tf.keras 2, read from the real libraries, so that an upgraded (or downgraded) config
holds no key the target line would reject when it loads the file ("Unrecognized keyword arguments").

Run it in a venv with keras 3.15.1 and tf_keras 2.21 (tools/crosscheck/upgrades makes one:
~/.cache/pare/tfkeras-venv), from the repository root:
    KERAS_BACKEND=tensorflow ~/.cache/pare/tfkeras-venv/bin/python tools/codegen/keras_arguments.py
The class list is every class name Pare's layer registry knows (read from Sources/Pare/Layers).

A class's keys: the names its __init__ declares (and its parents' reached through **kwargs), the keys its get_config() writes (from a small
instance), and the keys every layer's base class takes. Deterministic output, sorted.
"""
import inspect
import os
import re
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tf_keras  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "Sources", "Pare", "Upgrade", "KerasArguments.swift")

# What a layer's base class takes besides its own arguments (keras/src/layers/layer.py Layer.__init__;
# tf_keras/src/engine/base_layer.py allowed_kwargs).
KERAS3_BASE = {"name", "trainable", "dtype", "autocast", "activity_regularizer", "input_dim", "input_shape"}
TFKERAS_BASE = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}

# Arguments that make a small instance of classes with required arguments.
SAMPLE = {"units": 2, "filters": 2, "kernel_size": 1, "pool_size": 2, "rate": 0.5, "stddev": 0.1, "n": 2,
          "target_shape": (2,), "dims": (1,), "num_heads": 2, "key_dim": 2, "output_dim": 2, "input_dim": 3,
          "equation": "ab,bc->ac", "output_shape": 2, "scale": 1.0, "groups": 1, "mask_value": 0.0,
          "axis": -1, "axes": 1, "activation": "relu", "padding": 1, "cropping": 1, "size": 2, "layers": None}

# Classes whose optional arguments cannot all be left out, by library.
KERAS3_EXTRA = {"InputLayer": {"batch_shape": (None, 2)}}
TFKERAS_EXTRA = {"InputLayer": {"batch_input_shape": (None, 2)}}


def class_names():
    names = set()
    for root, _, files in os.walk(os.path.join(TOP, "Sources", "Pare", "Layers")):
        for f in files:
            text = open(os.path.join(root, f)).read()
            for block in re.findall(r"static let classNames = \[([^\]]*)\]", text):
                names.update(re.findall(r'"([A-Za-z0-9]+)"', block))
    return sorted(names)


def instance(cls, layers, extra):
    params = inspect.signature(cls.__init__).parameters
    args = {}
    for name, p in params.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        if name in ("layer", "cell"):
            args[name] = layers.LSTM(2) if cls.__name__ == "Bidirectional" else layers.Dense(2)
        elif name in SAMPLE:
            args[name] = SAMPLE[name]
        else:
            raise RuntimeError(f"{cls.__name__}: no sample for required argument {name}")
    return cls(**args, **extra.get(cls.__name__, {}))


def keys(cls, layers, base, extra):
    # A class's own arguments, and its parents' as far as **kwargs passes keys on (tf_keras's
    # BatchNormalization takes renorm through **kwargs from its base class).
    own = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        own |= {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        # Keys an __init__ takes out of **kwargs itself (tf_keras's RNN: kwargs.pop("zero_output_for_mask")).
        try:
            source = inspect.getsource(klass.__init__)
        except (OSError, TypeError):
            source = ""
        own |= set(re.findall(r'kwargs\.(?:pop|get)\(\s*"(\w+)"', source))
        own |= set(re.findall(r'"(\w+)" in kwargs', source))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()) or klass.__name__ in ("Layer", "Operation"):
            break
    return sorted(own | set(instance(cls, layers, extra).get_config()) | base)


def table(layers, base, extra, names):
    rows = {}
    for name in names:
        cls = getattr(layers, name, None)
        if cls is None or not isinstance(cls, type):
            continue
        rows[name] = keys(cls, layers, base, extra)
    return rows


def call_keywords(layers, names):
    """The keywords each class's call() binds besides its first (tensor) argument, for the classes
    whose call() takes no **kwargs; `training` is a context argument every layer takes."""
    rows = {}
    for name in names:
        cls = getattr(layers, name, None)
        if cls is None or not isinstance(cls, type):
            continue
        params = list(inspect.signature(cls.call).parameters.values())[1:]  # without self
        if any(p.kind == p.VAR_KEYWORD for p in params):
            continue
        rows[name] = sorted({p.name for p in params[1:] if p.kind != p.VAR_POSITIONAL} | {"training"})
    return rows


def swift_list(items, indent="        "):
    lines, line = [], indent
    for k in items:
        item = f'"{k}", '
        if len(line) + len(item.rstrip()) > 120:
            lines.append(line.rstrip())
            line = indent
        line += item
    lines.append(line.rstrip())
    return "\n".join(lines)


def swift_dict(rows, indent="        "):
    lines = []
    for name, ks in rows.items():
        entry = f'{indent}"{name}": [' + ", ".join(f'"{k}"' for k in ks) + "],"
        if len(entry) <= 120:
            lines.append(entry)
            continue
        lines.append(f'{indent}"{name}": [')
        line = indent + "    "
        for k in ks:
            item = f'"{k}", '
            if len(line) + len(item.rstrip()) > 120:
                lines.append(line.rstrip())
                line = indent + "    "
            line += item
        lines.append(line.rstrip())
        lines.append(f"{indent}],")
    return "\n".join(lines)


def main():
    names = class_names()
    k3 = table(keras.layers, KERAS3_BASE, KERAS3_EXTRA, names)
    k2 = table(tf_keras.layers, TFKERAS_BASE, TFKERAS_EXTRA, names)
    from keras.src import constraints, initializers, regularizers
    objects = {"initializers": initializers, "regularizers": regularizers, "constraints": constraints}
    object_sets = "\n".join(
        f"    static let keras3{kind.capitalize()}: Set<String> = [\n"
        + swift_list(sorted(module.ALL_OBJECTS_DICT)) + "\n    ]\n"
        for kind, module in objects.items())
    text = f"""// Generated by tools/codegen/keras_arguments.py from keras {keras.__version__} and tf_keras \
{tf_keras.__version__}; do not edit.

/// The configuration keys each layer class takes, read from the libraries themselves: a key outside
/// these makes the target line refuse the whole file ("Unrecognized keyword arguments"), so an upgrade
/// or downgrade that would write one is refused instead.
enum KerasArguments {{
    /// Keras 3's layer classes (`keras.layers`), by class name.
    static let keras3: [String: Set<String>] = [
{swift_dict(k3)}
    ]

    /// The class names Keras 3 deserializes initializers, regularizers and constraints by (its
    /// `ALL_OBJECTS_DICT`s: class names and their snake_case aliases).
{object_sets}
    /// The keywords Keras 3 passes to each class's `call()` (all but the first, tensor, argument);
    /// a class whose `call()` takes any keyword is not listed.
    static let keras3CallKeywords: [String: Set<String>] = [
{swift_dict(call_keywords(keras.layers, names))}
    ]

    /// tf.keras 2's layer classes (`tf_keras.layers`), by class name.
    static let tfKeras: [String: Set<String>] = [
{swift_dict(k2)}
    ]
}}
"""
    with open(OUT, "w") as f:
        f.write(text)
    missing3 = sorted(set(names) - set(k3))
    missing2 = sorted(set(names) - set(k2))
    print(f"{OUT}: {len(k3)} Keras 3 classes, {len(k2)} tf.keras classes; not in Keras 3: {missing3}; "
          f"not in tf.keras: {missing2}", file=sys.stderr)


if __name__ == "__main__":
    main()
