"""Class 4: sizes that come from the input and size an allocation.

Small files declaring huge things: decoded .pare streams, valid .pare files of huge all-zero
tensors, models whose input or an UpSampling layer makes activations huge, many examples, HDF5
datasets whose chunks decompress to far more than the file holds, NPY headers claiming huge
shapes. Pare must refuse (giving the size) or stream within its budget: never die on a failed
allocation (the runner sets RLIMIT_AS to 8 GiB, below this machine's memory).
"""
import struct

import numpy as np

import base
import legacy_model
import pare_file
from common import run


def model_runs(f, npy=None, expect="ok-or-error", batch=None, timeout=None):
    """A legitimate model too large to run: inspect and check must work, running may be refused."""
    rs = [run(["{pare}", "inspect", f], "ok"), run(["{pare}", "check", f], "ok"),
          run(["{pare}", "verify", f, f, "--random", "1"], expect, timeout=timeout),
          run(["{pare}", "prune", f, "o.h5", "--ratio", "0.5", "--random", "1"], expect, outputs=["o.h5"],
              timeout=timeout)]
    if npy:
        argv = ["{pare}", "run", f, "--input", npy] + (["--batch", str(batch)] if batch else [])
        rs.append(run(argv, expect, timeout=timeout))
    return rs


def generate_pare(g):
    """Valid .pare files whose tensors decode to far more than memory."""
    cases = [
        # 64 GiB of float32 zeros as a bitmask: a 2 GiB all-zero mask deflated to ~2 MB, no values.
        ("zeros-64GiB-bitmask", "float32", 1 << 34, "bitmask"),
        # 4 GiB of zeros stored dense, deflated (4 MB): a reader must stream, not inflate at once.
        ("zeros-4GiB-dense", "uint8", 1 << 32, "dense"),
    ]
    for label, dtype, n, encoding in cases:
        if encoding == "bitmask":
            mask = pare_file.deflate_zeros(n // 8)
            entry = {"dtype": dtype, "shape": [n // 1024, 1024], "encoding": "bitmask", "nonzero": 0,
                     "_streams": [(0, n // 8, "zlib"), (1, 0, "none")]}
            payloads = [mask, b""]
        else:
            entry = {"dtype": dtype, "shape": [n], "encoding": "dense", "_streams": [(0, n, "zlib")]}
            payloads = [pare_file.deflate_zeros(n)]
        name = f"c4_pare_{label}.pare"
        pare_file.tensors_file(g.path(name), [entry], payloads)
        g.add(f"c4-pare-{label}", 4, f"valid .pare holding {label}", [name],
              [run(["{pare}", "check", name], "ok-or-error"), run(["{pare}", "inspect", name], "ok-or-error"),
               run(["{pare}", "convert", name, "o.pare"], "ok-or-error", outputs=["o.pare"])])
    # 1 TiB declared, with a stream that is not that long: must fail before allocating it.
    name = "c4_pare_decoded-1TiB.pare"
    entry = {"dtype": "uint8", "shape": [1 << 40], "encoding": "dense", "_streams": [(0, 1 << 40, "zlib")]}
    pare_file.tensors_file(g.path(name), [entry], [pare_file.deflate_zeros(1 << 20)])
    g.add("c4-pare-decoded-1TiB", 4, "a .pare stream declaring 1 TiB decoded, holding 1 MiB", [name],
          [run(["{pare}", "check", name]), run(["{pare}", "inspect", name]), run(["{pare}", "unpack", name, "o.h5"])])
    name = "c4_pare_int8-channels-2^40.pare"
    entry = {"dtype": "float32", "shape": [1, 1 << 40], "encoding": "int8", "channels": 1 << 40,
             "_streams": [(0, 4 << 40, "zlib"), (1, 1 << 40, "zlib")]}
    pare_file.tensors_file(g.path(name), [entry], [pare_file.deflate_zeros(1 << 16), pare_file.deflate_zeros(1 << 16)])
    g.add("c4-pare-int8-channels-2^40", 4, "int8 tensor with 2^40 scales", [name],
          [run(["{pare}", "check", name]), run(["{pare}", "unpack", name, "o.h5"])])


def generate_models(g):
    # A 30000x30000 input: every shape and MAC is representable, activations are 3.6 GB per channel.
    legacy_model.write(g.path("c4_input_30000.h5"), legacy_model.tiny_layers(), (30000, 30000, 1))
    g.add("c4-input-30000x30000", 4, "a model with a 30000x30000 input", ["c4_input_30000.h5", "tx.npy"],
          model_runs("c4_input_30000.h5", timeout=20) +
          [run(["{pare}", "run", "c4_input_30000.h5", "--input", "tx.npy"])])
    # UpSampling2D by 1000 after a 16-channel conv: 28000 x 28000 x 16 floats (50 GB) per example.
    up = legacy_model.simple("UpSampling2D", "up", size=[1000, 1000], interpolation="nearest")
    layers = [legacy_model.conv2d("conv_a", 16, kernel=1), up, legacy_model.conv2d("conv_b", 4),
              legacy_model.simple("GlobalAveragePooling2D", "gap", keepdims=False), legacy_model.dense("out", 3)]
    legacy_model.write(g.path("c4_upsample_1000.h5"), layers, (28, 28, 1))
    g.add("c4-upsampling-1000", 4, "UpSampling2D(1000) on 28x28x16, --batch 1", ["c4_upsample_1000.h5", "x16.npy"],
          model_runs("c4_upsample_1000.h5", "x16.npy", batch=1))
    # 100,000 examples through a model whose activations are 128 KiB per example (13 GB in one batch).
    wide = [legacy_model.conv2d("wide", 512, kernel=1, activation="linear", use_bias=False),
            legacy_model.simple("Flatten", "flatten"), legacy_model.dense("out", 2)]
    legacy_model.write(g.path("c4_wide.h5"), wide, (8, 8, 1), flatten_size=8 * 8 * 512)
    rng = np.random.default_rng(9)
    np.save(g.path("c4_x100k.npy"), rng.integers(0, 256, (100000, 8, 8, 1), dtype=np.uint8))
    g.add("c4-100k-examples", 4, "100,000 examples without --batch, 13 GB of activations at once",
          ["c4_wide.h5", "c4_x100k.npy"],
          [run(["{pare}", "run", "c4_wide.h5", "--input", "c4_x100k.npy"], "ok-or-error", timeout=120)])
    g.add("c4-verify-random-1e9", 4, "verify --random 1000000000", ["tiny.h5"],
          [run(["{pare}", "verify", "tiny.h5", "tiny.h5", "--random", "1000000000"], "ok-or-error"),
           run(["{pare}", "prune", "tiny.h5", "o.h5", "--ratio", "0.5", "--random", "1000000000"], "ok-or-error",
               outputs=["o.h5"])])
    # Dimensions whose products overflow 64 bits: shape inference and MAC counts must say so.
    legacy_model.write(g.path("c4_input_2^31.h5"), legacy_model.tiny_layers(), (1 << 31, 1 << 31, 1))
    g.add("c4-input-overflow", 4, "input 2^31 x 2^31 (activation bytes and MACs overflow)", ["c4_input_2^31.h5"],
          [run(["{pare}", "inspect", "c4_input_2^31.h5"], "ok-or-error"),
           run(["{pare}", "check", "c4_input_2^31.h5"], "ok-or-error"),
           run(["{pare}", "verify", "c4_input_2^31.h5", "c4_input_2^31.h5", "--random", "1"])])


def mnist_100k(g):
    """The issue's own case: 100,000 MNIST digits (78 MB) through the CNN. Slow in a debug build."""
    x = np.load(g.fixture("data/mnist_x.npy"))
    reps = 100000 // len(x) + 1
    np.save(g.path("c4_mnist_100k.npy"), (np.tile(x, (reps, 1, 1, 1))[:100000] * 255).astype(np.uint8))
    g.add("c4-mnist-100k", 4, "100,000 MNIST examples through the CNN without --batch",
          ["cnn.h5", "c4_mnist_100k.npy"],
          [run(["{pare}", "run", "cnn.h5", "--input", "c4_mnist_100k.npy"], "ok-or-error", timeout=600)], slow=True)


def generate_hdf5(g):
    # 4 TiB logical dataset, chunked + deflate, no chunk written: reading it yields fill values forever.
    def huge_unwritten(f):
        f.create_dataset("huge", shape=(1 << 20, 1 << 20), dtype="<f4", chunks=(1024, 1024), compression="gzip")
    base.mutated_copy(g, "sd.h5", "c4_hdf5_4TiB_unwritten.h5", huge_unwritten)
    # Eight 1 GiB chunks, each deflated to ~1 MB: libhdf5 inflates a whole chunk at once.
    chunk = pare_file.deflate_zeros(1 << 30)

    def chunk_bomb(f):
        ds = f.create_dataset("bomb", shape=(16384 * 8, 16384), dtype="<f4", chunks=(16384, 16384),
                              compression="gzip")
        for i in range(8):
            ds.id.write_direct_chunk((16384 * i, 0), chunk)
    base.mutated_copy(g, "sd.h5", "c4_hdf5_chunks_8GiB.h5", chunk_bomb)

    # The legacy model's Dense kernel declared (2304, 2^30) chunked and unwritten, config to match.
    def huge_dense(f):
        cfg = f.attrs["model_config"]
        assert '"units": 256' in cfg
        f.attrs["model_config"] = cfg.replace('"units": 256', '"units": 1073741824')
        grp = f["model_weights/dense/mnist_cnn/dense"]
        del grp["kernel"], grp["bias"]
        grp.create_dataset("kernel", shape=(2304, 1 << 30), dtype="<f4", chunks=(256, 4096), compression="gzip")
        grp.create_dataset("bias", shape=(1 << 30,), dtype="<f4", chunks=(1 << 20,), compression="gzip")
    base.mutated_copy(g, "cnn.h5", "c4_legacy_dense_2^30.h5", huge_dense)
    for name, attack in (("c4_hdf5_4TiB_unwritten.h5", "a 4 TiB chunked dataset with no chunk written"),
                         ("c4_hdf5_chunks_8GiB.h5", "eight 1 GiB chunks deflated (8 GiB dataset, 8 MB file)"),
                         ("c4_legacy_dense_2^30.h5", "a Dense kernel (2304, 2^30) chunked, unwritten")):
        g.add("c4-" + name[3:-3].replace("_", "-"), 4, attack, [name, "x16.npy"],
              [run(["{pare}", "inspect", name], "ok-or-error"), run(["{pare}", "check", name], "ok-or-error"),
               run(["{pare}", "convert", name, "o.h5"], "ok-or-error", outputs=["o.h5"]),
               run(["{pare}", "pack", name, "o.pare"], "ok-or-error", outputs=["o.pare"])])


def npy_header(descr, shape, fortran=False, version=1):
    """An NPY header as NumPy writes it (padded so the data starts at a multiple of 64)."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    prefix = 10 if version == 1 else 12
    total = (prefix + len(text) + 1 + 63) // 64 * 64
    text = text.ljust(total - prefix - 1) + "\n"
    length = struct.pack("<H", len(text)) if version == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text.encode()


def generate_npy(g):
    """NPY inputs and labels whose headers lie: every one must be refused before allocating."""
    ex = np.load(g.path("tx.npy")).astype("<f4").tobytes()[:4096]
    cases = {
        "shape-1e12": (npy_header("<f4", (10 ** 12, 8, 8, 1)) + ex, "error"),
        "shape-overflow": (npy_header("<f4", (1 << 62, 1 << 62, 8, 1)) + ex, "error"),
        "shape-wraps": (npy_header("<f4", (1 << 62, 8, 8, 1)) + ex, "error"),  # bytes wrap to 0 mod 2^64
        "shape-negative": (npy_header("<f4", (-16, 8, 8, 1)) + ex, "error"),
        "truncated-data": (npy_header("<f4", (16, 8, 8, 1)) + ex[:100], "error"),
        "header-len-4GiB": (b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{", "error"),
        "header-not-dict": (b"\x93NUMPY\x01\x00" + struct.pack("<H", 6) + b"[1,2]\n" + ex, "error"),
        "header-unterminated": (b"\x93NUMPY\x01\x00" + struct.pack("<H", 100) + b"{'descr': '<f4'", "error"),
        "fortran-order": (npy_header("<f4", (16, 8, 8, 1), fortran=True) + ex, "ok-or-error"),
        "object-dtype": (npy_header("|O", (16, 8, 8, 1)) + b"\x80\x04N." * 10, "error"),
        "big-endian": (npy_header(">f4", (16, 8, 8, 1)) + ex, "ok-or-error"),
        "complex": (npy_header("<c8", (16, 8, 8, 1)) + ex * 2, "error"),
        "unicode": (npy_header("<U5", (16, 8, 8, 1)) + ex * 5, "error"),
        "datetime": (npy_header("<M8[s]", (16, 8, 8, 1)) + ex * 2, "error"),
        "structured": (b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) +
                       b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (16, 8, 8, 1), }".ljust(117) +
                       b"\n" + ex, "error"),
        "version-3-utf8": (npy_header("<f4", (16, 8, 8, 1), version=3) + ex, "ok-or-error"),
        "shape-float": (npy_header("<f4", (16.0, 8, 8, 1)) + ex, "error"),
        "zero-examples": (npy_header("<f4", (0, 8, 8, 1)), "ok-or-error"),
        "scalar": (npy_header("<f4", ()) + ex[:4], "error"),
    }
    for label, (data, expect) in cases.items():
        name = f"c4_npy_{label}.npy"
        with open(g.path(name), "wb") as f:
            f.write(data)
        g.add(f"c4-npy-{label}", 4, f"NPY input: {label}", [name, "tiny.h5", "ty.npy", "tx.npy"],
              [run(["{pare}", "run", "tiny.h5", "--input", name], expect),
               run(["{pare}", "eval", "tiny.h5", "--input", "tx.npy", "--labels", name])])  # never labels


def generate(g):
    generate_pare(g)
    generate_models(g)
    generate_hdf5(g)
    generate_npy(g)
    mnist_100k(g)
