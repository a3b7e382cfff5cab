"""Writes small Keras-3-style legacy .h5 models with h5py, laid out as Keras 3's `model.save("m.h5")`
lays out a Sequential model: `model_config` on the root, `model_weights/<layer>/<model>/<layer>/<var>`,
`layer_names` and `weight_names` as variable-length string arrays.

The generator needs models it controls completely (layer names, input sizes, amplifying layers)
that Pare still accepts as real Keras files; the fixtures' models are too large or too fixed.
"""
import json

import h5py
import numpy as np

FLOAT32 = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
STR = h5py.string_dtype()


def input_layer(shape, name="input_layer"):
    return {"class_name": "InputLayer", "config": {"batch_shape": [None, *shape], "dtype": "float32",
                                                   "sparse": False, "ragged": False, "name": name, "optional": False}}


def conv2d(name, filters, kernel=3, padding="same", activation="relu", use_bias=True):
    return {"class_name": "Conv2D", "config": {
        "name": name, "trainable": True, "dtype": FLOAT32, "filters": filters, "kernel_size": [kernel, kernel],
        "strides": [1, 1], "padding": padding, "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
        "activation": activation, "use_bias": use_bias, "kernel_initializer": None, "bias_initializer": None,
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None}}


def dense(name, units, activation="softmax", use_bias=True):
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": FLOAT32, "units": units, "activation": activation,
        "use_bias": use_bias, "kernel_initializer": None, "bias_initializer": None, "kernel_regularizer": None,
        "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None, "quantization_config": None}}


def simple(class_name, name, **config):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, "dtype": FLOAT32,
                                                 "data_format": "channels_last", **config}}


def weight_shapes(layer, channels_in):
    """[(variable, shape)] of a layer given its input channel count, and its output channel count."""
    c = layer["config"]
    if layer["class_name"] == "Conv2D":
        k = c["kernel_size"]
        shapes = [("kernel", (k[0], k[1], channels_in, c["filters"]))]
        return shapes + ([("bias", (c["filters"],))] if c["use_bias"] else []), c["filters"]
    if layer["class_name"] == "Dense":
        shapes = [("kernel", (channels_in, c["units"]))]
        return shapes + ([("bias", (c["units"],))] if c["use_bias"] else []), c["units"]
    return [], channels_in


def write(path, layers, input_shape, name="tiny", seed=0, flatten_size=None):
    """A Sequential legacy .h5 of `layers` on `input_shape`; returns the config dict.

    Flatten's output size is given as flatten_size (the generator knows it; no shape inference here).
    """
    rng = np.random.default_rng(seed)
    config = {"class_name": "Sequential", "config": {
        "name": name, "trainable": True, "dtype": FLOAT32,
        "layers": [input_layer(input_shape)] + layers, "build_input_shape": [None, *input_shape]}}
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "3.15.1"
        f.attrs["model_config"] = json.dumps(config)
        mw = f.create_group("model_weights")
        mw.attrs["backend"] = "tensorflow"
        mw.attrs["keras_version"] = "3.15.1"
        mw.attrs.create("layer_names", [l["config"]["name"] for l in layers], dtype=STR)
        channels = input_shape[-1]
        for layer in layers:
            lname = layer["config"]["name"]
            if layer["class_name"] == "Flatten":
                channels = flatten_size
            shapes, channels = weight_shapes(layer, channels)
            g = mw.create_group(lname)
            g.attrs.create("weight_names", [f"{name}/{lname}/{v}" for v, _ in shapes], dtype=STR)
            for var, shape in shapes:
                scale = 0.5 / np.sqrt(max(1, int(np.prod(shape[:-1]))))
                values = rng.standard_normal(shape).astype(np.float32) * np.float32(scale)
                g.create_dataset(f"{name}/{lname}/{var}", data=values)
        top = mw.create_group("top_level_model_weights")
        top.attrs.create("weight_names", [], dtype=STR)
    return config


def tiny_layers(names=("conv_a", "conv_b", "gap", "out"), classes=3, extra_after_first=()):
    """Conv - [extra] - Conv - GlobalAveragePooling - Dense: prunable, any input size, cheap to run."""
    a, b, gap, out = names
    return ([conv2d(a, 4)] + list(extra_after_first) +
            [conv2d(b, 4), simple("GlobalAveragePooling2D", gap, keepdims=False), dense(out, classes)])
