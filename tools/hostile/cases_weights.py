"""Class "weights": weight datasets of odd shapes, types and values, and datasets Pare does not
understand (which it must carry over or name in a note, never drop silently).
"""
import struct

import h5py
import numpy as np

import base
import legacy_model
from common import run

KERNEL = "model_weights/conv_a/tiny/conv_a/kernel"


def retype(dtype=None, values=None, shape=None):
    """A mutation replacing tiny.h5's first kernel with another dtype, values or shape."""
    def mutate(f):
        old = f[KERNEL][()]
        data = old if values is None else values(old)
        if shape is not None:
            data = np.resize(data, shape)
        del f[KERNEL]
        f.create_dataset(KERNEL, data=data.astype(dtype or data.dtype))
    return mutate


def model_runs(f, expect):
    return [run(["{pare}", "check", f], expect), run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"]),
            run(["{pare}", "run", f, "--input", "tx.npy"], expect),
            run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", "--input", "tx.npy"], expect, outputs=["o.h5"])]


def generate(g):
    variants = {
        "int32": (retype("<i4"), "error"),
        "uint8": (retype("u1"), "error"),
        "complex64": (retype("<c8"), "error"),
        "bool": (retype(bool), "error"),
        "big-endian-f4": (retype(">f4"), "ok-or-error"),
        "big-endian-f8": (retype(">f8"), "ok-or-error"),
        "float16": (retype("<f2"), "ok-or-error"),
        "nan-inf-values": (retype(values=lambda w: np.where(np.arange(w.size).reshape(w.shape) % 3 == 0, np.nan,
                                                             np.inf).astype(w.dtype)), "ok-or-error"),
        "subnormal-values": (retype(values=lambda w: np.full(w.shape, 1e-45, w.dtype)), "ok-or-error"),
        "shape-reversed": (retype(values=lambda w: w.T.copy()), "error"),
        "scalar": (retype(values=lambda w: np.float32(1.0)), "error"),
        "extra-dim": (retype(values=lambda w: w[..., None]), "error"),
        "strings": (lambda f: (f.__delitem__(KERNEL), f.create_dataset(KERNEL, data=["a"] * 36,
                                                                         dtype=h5py.string_dtype())), "error"),
    }
    for label, (mutate, expect) in variants.items():
        name = f"w_kernel_{label}.h5"
        base.mutated_copy(g, "tiny.h5", name, mutate)
        g.add(f"weights-kernel-{label}", "weights", f"tiny.h5 with its first kernel {label}", [name, "tx.npy"],
              model_runs(name, expect))
    # The first kernel's contiguous layout pointed past the file's end of allocation, at bytes appended to
    # the file: libhdf5 1.10 reads zeros there, HDF5 2 refuses; Pare's direct read must never return them.
    past = g.path("w_kernel_past_eoa.h5")
    with h5py.File(g.path("tiny.h5"), "r") as f:
        kernel = f[KERNEL]
        offset, size = kernel.id.get_offset(), kernel.id.get_storage_size()
    data = bytearray(open(g.path("tiny.h5"), "rb").read())
    layout = struct.pack("<QQ", offset, size)
    at = data.find(layout)
    assert at > 0 and data.find(layout, at + 1) < 0, "tiny.h5's kernel layout message not found once"
    data[at:at + 8] = struct.pack("<Q", len(data))
    data += np.full(size // 4, 1234.5, "<f4").tobytes()
    open(past, "wb").write(data)
    g.add("weights-kernel-past-eoa", "weights", "tiny.h5 with its first kernel's data past the end of allocation",
          ["w_kernel_past_eoa.h5", "tx.npy"], model_runs("w_kernel_past_eoa.h5", "error"))
    # Zero-sized layers: a Conv2D of 0 filters feeding another conv, a Dense of 0 units.
    zero_conv = [legacy_model.conv2d("conv_a", 0), legacy_model.conv2d("conv_b", 4),
                 legacy_model.simple("GlobalAveragePooling2D", "gap", keepdims=False), legacy_model.dense("out", 3)]
    legacy_model.write(g.path("w_zero_filters.h5"), zero_conv, (8, 8, 1))
    zero_dense = [legacy_model.simple("Flatten", "flatten"), legacy_model.dense("d0", 0, activation="relu"),
                  legacy_model.dense("out", 3)]
    legacy_model.write(g.path("w_zero_units.h5"), zero_dense, (8, 8, 1), flatten_size=64)
    for name in ("w_zero_filters.h5", "w_zero_units.h5"):
        g.add(f"weights-{name[2:-3].replace('_', '-')}", "weights", f"a layer with a 0 dimension ({name})",
              [name, "tx.npy"], [run(["{pare}", "inspect", name], "ok-or-error")] + model_runs(name, "ok-or-error"))
    # Datasets no layer lists: convert must carry them or say (a note naming them) that it dropped them.
    strays = {
        "beside-kernel": lambda f: f["model_weights/conv_a/tiny/conv_a"].create_dataset("stray", data=np.ones(3)),
        "in-layer-group": lambda f: f["model_weights/conv_a"].create_dataset("stray", data=np.ones(3)),
        "root-group": lambda f: f.create_group("stray").create_dataset("t", data=np.ones(3)),
        "unlisted-layer": lambda f: f["model_weights"].create_group("stray").create_dataset("k", data=np.ones(3)),
    }
    for label, mutate in strays.items():
        name = f"w_stray_{label}.h5"
        base.mutated_copy(g, "tiny.h5", name, mutate)
        g.add(f"weights-stray-{label}", "weights", f"a dataset no layer lists ({label})", [name],
              [run(["{pare}", "convert", name, "o.h5"], "ok-or-error", outputs=["o.h5"],
                   keeps_or_mentions={"output": "o.h5", "name": "stray"}),
               run(["{pare}", "pack", name, "o.pare"], "ok-or-error", outputs=["o.pare"],
                   keeps_or_mentions={"output": "o.pare", "name": "stray"})])
