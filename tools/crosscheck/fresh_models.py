"""Builds fresh Keras models with random widths and random weights (a new seed each run, printed),
saves them as legacy .h5 with random inputs, so pruning is checked on models no test was tuned to.

Usage: fresh_models.py OUT_DIR [SEED]
"""
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time()) % 100000
print(f"fresh models: seed {seed}")
rng = np.random.RandomState(seed)
keras.utils.set_random_seed(seed)
L = keras.layers


def width():
    return int(rng.randint(6, 24))


def residual_net():
    x = keras.Input(shape=(20, 20, 3))
    a = L.Conv2D(width(), 3, padding="same")(x)
    a = L.BatchNormalization()(a)
    a = L.ReLU()(a)
    b = L.Conv2D(a.shape[-1], 3, padding="same", activation="relu")(a)
    b = L.BatchNormalization()(b)
    r = L.Add()([a, b])
    d = L.DepthwiseConv2D(3, padding="same", activation="relu")(r)
    s = L.SeparableConv2D(width(), 3, padding="same", activation="relu")(r)
    c = L.Concatenate()([d, s])
    c = L.MaxPooling2D(2)(c)
    c = L.Conv2D(width(), 3, activation="relu")(c)
    g = L.GlobalAveragePooling2D()(c)
    return keras.Model(x, L.Dense(5, activation="softmax")(g), name="fresh_residual"), [(8, 20, 20, 3)]


def mlp():
    x = keras.Input(shape=(12,))
    h = x
    for _ in range(rng.randint(2, 4)):
        h = L.Dense(width(), activation=rng.choice(["relu", "tanh", "sigmoid", "gelu"]))(h)
    return keras.Model(x, L.Dense(3)(h), name="fresh_mlp"), [(8, 12)]


def siamese():
    enc = keras.Sequential([keras.Input(shape=(14, 14, 1)), L.Conv2D(width(), 3, activation="relu"),
                            L.MaxPooling2D(2), L.Conv2D(width(), 3, activation="relu"), L.Flatten()], name="fresh_encoder")
    a, b = keras.Input(shape=(14, 14, 1)), keras.Input(shape=(14, 14, 1))
    d = L.Subtract()([enc(a), enc(b)])
    return keras.Model([a, b], L.Dense(1, activation="sigmoid")(L.Dense(width(), activation="relu")(d)), name="fresh_siamese"), \
        [(8, 14, 14, 1), (8, 14, 14, 1)]


for build in (residual_net, mlp, siamese):
    model, shapes = build()
    for layer in model.layers + [l for m in model.layers if hasattr(m, "layers") for l in m.layers]:
        ws = layer.get_weights()
        if ws and not hasattr(layer, "layers"):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path
                               else rng.normal(0, 0.4, w.shape).astype(w.dtype) for w, v in zip(ws, layer.weights)])
    model.save(os.path.join(out, model.name + ".h5"))
    for i, s in enumerate(shapes):
        np.save(os.path.join(out, f"{model.name}_in{i}.npy"), rng.normal(0, 1, s).astype("float32"))
    print(model.name, model.count_params())
