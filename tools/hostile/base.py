"""The shared files every case module starts from: copies of the fixtures, small inputs, a tiny model
Pare accepts, and the SECRET files whose bytes must never show up in any output."""
import io
import json
import os
import zipfile

import h5py
import numpy as np

import legacy_model

# Shapes the external references stand in for; secret.h5 holds one dataset of each.
SECRET_SHAPES = {"cnn_kernel": (5, 5, 1, 32), "sd_weight": (8, 1, 3, 3), "tiny_kernel": (3, 3, 1, 4), "vec16": (16,)}


def secret_array(g, shape):
    """float32 values whose bytes are the marker repeated: any copy of them carries the marker."""
    n = int(np.prod(shape)) * 4
    raw = (g.marker * (n // len(g.marker) + 1))[:n]
    return np.frombuffer(raw, dtype="<f4").reshape(shape)


def write_secrets(g):
    with open(g.path("secret.bin"), "wb") as f:
        f.write(g.marker * 16384)
    with open(g.path("secret.txt"), "w") as f:
        f.write("".join(f"{g.text_marker} line {i}\n" for i in range(2000)))
    with h5py.File(g.path("secret.h5"), "w") as f:
        for name, shape in SECRET_SHAPES.items():
            f.create_dataset(name, data=secret_array(g, shape))
        grp = f.create_group("grp")
        grp.create_dataset("kernel", data=secret_array(g, SECRET_SHAPES["cnn_kernel"]))
        grp.create_dataset("bias", data=secret_array(g, (32,)))


def keras_members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_keras(path, members, weights_h5=None):
    """A .keras archive with the given members (name -> bytes), model.weights.h5 optionally replaced."""
    members = dict(members)
    if weights_h5 is not None:
        with open(weights_h5, "rb") as f:
            members["model.weights.h5"] = f.read()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def write_base(g):
    write_secrets(g)
    g.copy_fixture("mnist_cnn/keras3.h5", "cnn.h5")
    g.copy_fixture("mnist_cnn/tfkeras2.h5", "cnn_tf.h5")
    g.copy_fixture("mnist_cnn/model.keras", "cnn.keras")
    g.copy_fixture("mnist_cnn/model.weights.h5", "cnn.weights.h5")
    g.copy_fixture("plain/state_dict.h5", "sd.h5")
    g.copy_fixture("zoo/nested_zoo.h5", "zoo.h5")
    members = keras_members(g.path("cnn.keras"))
    with open(g.path("cnn_config.json"), "wb") as f:
        f.write(members["config.json"])
    with h5py.File(g.fixture("mnist_cnn/keras3.h5"), "r") as f:
        with open(g.path("cnn_model_config.json"), "w") as out:
            out.write(f.attrs["model_config"])
    with h5py.File(g.fixture("mnist_cnn/tfkeras2.h5"), "r") as f:
        with open(g.path("cnn_tf_config.json"), "w") as out:
            out.write(f.attrs["model_config"])
    g.copy_fixture("mnist_cnn/tfkeras2_weights.h5", "cnn_tf_weights.h5")
    x = np.load(g.fixture("data/mnist_x.npy"))
    y = np.load(g.fixture("data/mnist_y.npy"))
    np.save(g.path("x16.npy"), x[:16])
    np.save(g.path("y16.npy"), y[:16])
    legacy_model.write(g.path("tiny.h5"), legacy_model.tiny_layers(), (8, 8, 1))
    rng = np.random.default_rng(3)
    np.save(g.path("tx.npy"), rng.random((16, 8, 8, 1), dtype=np.float32))
    np.save(g.path("ty.npy"), rng.integers(0, 3, 16).astype(np.int64))


def weights_bytes(g, mutate):
    """model.weights.h5 of the CNN's .keras archive, mutated by mutate(h5py.File), as bytes."""
    members = keras_members(g.path("cnn.keras"))
    bio = io.BytesIO(members["model.weights.h5"])
    with h5py.File(bio, "r+") as f:
        mutate(f)
    return bio.getvalue()


def mutated_keras(g, name, mutate):
    """cnn.keras with its model.weights.h5 mutated; written as `name`."""
    members = keras_members(g.path("cnn.keras"))
    members["model.weights.h5"] = weights_bytes(g, mutate)
    write_keras(g.path(name), members)
    return name


def mutated_copy(g, src, name, mutate):
    """A copy of the output-directory file `src` as `name`, mutated in place by mutate(h5py.File)."""
    with open(g.path(src), "rb") as f, open(g.path(name), "wb") as out:
        out.write(f.read())
    try:
        with h5py.File(g.path(name), "r+") as f:
            mutate(f)
    except BaseException:
        os.remove(g.path(name))  # never leave a half-made case behind for a later add() to accept
        raise
    return name


def json_text(path):
    with open(path) as f:
        return json.load(f)


def exists(g, name):
    return os.path.exists(g.path(name))
