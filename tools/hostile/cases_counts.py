"""Class 2: values whose count does not match their declared shape, and attributes of unexpected shapes
or types where Pare expects one string.

HDF5 itself keeps an attribute's count consistent with its dataspace, so the mismatches go into
`.pare` headers (where the count and the shape are separate JSON fields); the legacy `.h5` side gets
`model_config`, `layer_names` and `weight_names` as arrays, matrices, empty, numeric, null, opaque;
plain tensor files get attributes and datasets of every HDF5 type class.
"""
import copy

import h5py
import numpy as np

import base
import pare_file
from common import run

STR = h5py.string_dtype()


def pare_runs(f, expect="error"):
    """check must reject what unpack cannot write faithfully; unpack is where heap bytes leaked."""
    return [run(["{pare}", "check", f], expect), run(["{pare}", "unpack", f, "o.h5"], expect, outputs=["o.h5"])]


def legacy_runs(f, expect="error"):
    """check must refuse what convert (which rewrites every name list) cannot carry faithfully."""
    return [run(["{pare}", "check", f], expect), run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"])]


def plain_runs(f, expect="ok-or-error"):
    """convert and pack both carry every attribute and dataset of a plain file into their output."""
    return [run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"]),
            run(["{pare}", "pack", f, "o.pare"], expect, outputs=["o.pare"])]


def find_attributes(node, kind):
    """Every attribute object of `kind` ("strings" or "numbers") anywhere in a header."""
    found = []
    if isinstance(node, dict):
        if kind in node and "shape" in node:
            found.append(node)
        for v in node.values():
            found += find_attributes(v, kind)
    elif isinstance(node, list):
        for v in node:
            found += find_attributes(v, kind)
    return found


STRING_MUTATIONS = {
    "fewer-strings": lambda a: a.update(strings=[], shape=[3]),
    "more-strings": lambda a: a.update(strings=["a", "b", "c"], shape=[1]),
    "scalar-two-strings": lambda a: a.update(strings=["a", "b"], shape=[]),
    "2d-three-strings": lambda a: a.update(strings=["a", "b", "c"], shape=[2, 2]),
    "shape-negative": lambda a: a.update(shape=[-1]),
    "shape-huge": lambda a: a.update(shape=[1 << 40]),
    "shape-overflow": lambda a: a.update(shape=[1 << 32, 1 << 32, 1 << 32]),
    "shape-float": lambda a: a.update(shape=[1.5]),
    "shape-string": lambda a: a.update(shape=["1"]),
    "shape-not-array": lambda a: a.update(shape=1),
    "string-is-number": lambda a: a.update(strings=[1], shape=[1]),
    "string-is-null": lambda a: a.update(strings=[None], shape=[1]),
    "fixed-size-negative": lambda a: a.update(vlen=False, size=-1, strings=["abc"], shape=[1]),
    "fixed-size-huge": lambda a: a.update(vlen=False, size=1 << 40, strings=["abc"], shape=[1]),
    "fixed-size-zero": lambda a: a.update(vlen=False, size=0, strings=["abc"], shape=[1]),
    "fixed-size-short": lambda a: a.update(vlen=False, size=1, strings=["abcdef"], shape=[1]),
    "string-with-nul": lambda a: a.update(strings=["ab\u0000cd"], shape=[1]),
}
STRING_OK = {"string-with-nul", "fixed-size-short"}  # a faithful unpack or a refusal are both right

NUMBER_MUTATIONS = {
    "hex-short": lambda a: a.update(numbers=a["numbers"][:-2]),
    "hex-long": lambda a: a.update(numbers=a["numbers"] + "00" * 8),
    "hex-odd": lambda a: a.update(numbers=a["numbers"] + "0"),
    "hex-not-hex": lambda a: a.update(numbers="zz" + a["numbers"][2:]),
    "hex-empty-shape-huge": lambda a: a.update(numbers="", shape=[1 << 40]),
    "shape-negative": lambda a: a.update(numbers="", shape=[-1]),
    "shape-overflow": lambda a: a.update(numbers="", shape=[1 << 62, 1 << 62]),
    "shape-wraps-to-match": lambda a: a.update(shape=[1 << 62, 4, 1]),  # 2**64 * 4 bytes wraps to 0
    "dtype-unknown": lambda a: a.update(dtype="float128"),
    "dtype-number": lambda a: a.update(dtype=5),
    "numbers-number": lambda a: a.update(numbers=12),
    "no-shape": lambda a: a.pop("shape"),
}


def generate_pare(g):
    g.pack("sd.h5", "sd.pare")
    body, header = pare_file.read(g.path("sd.pare"))
    for kind, mutations in (("strings", STRING_MUTATIONS), ("numbers", NUMBER_MUTATIONS)):
        for label, mutate in mutations.items():
            h = copy.deepcopy(header)
            attrs = find_attributes(h["model"], kind)
            assert attrs, f"sd.pare has no {kind} attribute"
            mutate(attrs[0])
            name = f"c2_pare_{kind}_{label}.pare"
            pare_file.write(g.path(name), body, h)
            expect = "ok-or-error" if kind == "strings" and label in STRING_OK else "error"
            g.add(f"c2-pare-{kind}-{label}", 2, f".pare attribute ({kind}): {label}", [name], pare_runs(name, expect))
    # The name list encoding of a legacy model's .pare: the attribute every unpack applies to many names.
    g.pack("cnn.h5", "cnn.pare")
    body, header = pare_file.read(g.path("cnn.pare"))
    for label, mutate in (("shape-huge", lambda a: a.update(shape=[1 << 40])),
                          ("fixed-size-huge", lambda a: a.update(vlen=False, size=1 << 40)),
                          ("fixed-size-negative", lambda a: a.update(vlen=False, size=-5)),
                          ("strings-many", lambda a: a.update(strings=["x"] * 1000, shape=[0]))):
        h = copy.deepcopy(header)
        mutate(h["model"]["name_list_encoding"])
        name = f"c2_pare_namelist_{label}.pare"
        pare_file.write(g.path(name), body, h)
        g.add(f"c2-pare-namelist-{label}", 2, f".pare name_list_encoding: {label}", [name],
              pare_runs(name, "ok-or-error" if label == "strings-many" else "error"))


def vlen_ints(*lengths):
    """An object array of int32 arrays (np.array would make a 2-D int array of equal lengths)."""
    a = np.empty(len(lengths), dtype=object)
    for i, n in enumerate(lengths):
        a[i] = np.arange(n, dtype=np.int32)
    return a


def set_attr(obj, name, value, dtype=None):
    if name in obj.attrs:
        del obj.attrs[name]
    if dtype is None:
        obj.attrs[name] = value
    else:
        obj.attrs.create(name, value, dtype=dtype)


def set_spacepad(obj, name, text, size):
    """A fixed-length space-padded string attribute (h5py's high level cannot choose the padding)."""
    if name in obj.attrs:
        del obj.attrs[name]
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(h5py.h5t.STR_SPACEPAD)
    attr = h5py.h5a.create(obj.id, name.encode(), tid, h5py.h5s.create(h5py.h5s.SCALAR))
    attr.write(np.array(text.encode().ljust(size), dtype=f"S{size}"), mtype=tid)


def generate_legacy(g):
    with h5py.File(g.path("cnn.h5"), "r") as f:
        cfg = f.attrs["model_config"]
        names = [n.decode() if isinstance(n, bytes) else n for n in f["model_weights"].attrs["layer_names"]]
    on_root = {
        "model_config-two-strings": (lambda f: set_attr(f, "model_config", [cfg, cfg], STR), "error"),
        "model_config-2d-1x1": (lambda f: set_attr(f, "model_config", [[cfg]], STR), "ok-or-error"),
        "model_config-2d-2x2": (lambda f: set_attr(f, "model_config", [[cfg, "{}"], ["[", "]"]], STR), "error"),
        "model_config-empty-array": (lambda f: set_attr(f, "model_config", np.array([], dtype=object), STR), "error"),
        "model_config-number": (lambda f: set_attr(f, "model_config", 42), "error"),
        "model_config-float-array": (lambda f: set_attr(f, "model_config", np.arange(5.0)), "error"),
        "model_config-null-space": (lambda f: set_attr(f, "model_config", h5py.Empty("S10")), "error"),
        "model_config-opaque": (lambda f: set_attr(f, "model_config", np.void(cfg.encode()[:4000])), "error"),
        "model_config-fixed-nullpad": (lambda f: set_attr(f, "model_config", np.bytes_(cfg.encode() + bytes(64))),
                                       "ok"),
        "model_config-fixed-array-2": (lambda f: set_attr(f, "model_config", np.array([cfg.encode()] * 2)), "error"),
        "model_config-spacepad": (lambda f: set_spacepad(f, "model_config", cfg, len(cfg) + 40), "ok-or-error"),
        "model_config-vlen-ints": (lambda f: set_attr(f, "model_config", vlen_ints(3), h5py.vlen_dtype(np.int32)),
                                   "error"),
        "keras_version-number": (lambda f: set_attr(f, "keras_version", 3), "ok-or-error"),
        "backend-array": (lambda f: set_attr(f, "backend", ["tensorflow", "jax"], STR), "ok-or-error"),
    }
    mw = "model_weights"
    cw = "model_weights/conv2d"
    on_groups = {
        "layer_names-scalar": (mw, lambda a: set_attr(a, "layer_names", "conv2d", STR), "error"),
        "layer_names-2d": (mw, lambda a: set_attr(a, "layer_names", [names[:4], names[4:]], STR), "ok-or-error"),
        "layer_names-empty": (mw, lambda a: set_attr(a, "layer_names", np.array([], dtype=object), STR), "error"),
        "layer_names-numbers": (mw, lambda a: set_attr(a, "layer_names", np.arange(8)), "error"),
        "layer_names-float64-empty": (mw, lambda a: set_attr(a, "layer_names", np.zeros(0)), "error"),
        "layer_names-missing-group": (mw, lambda a: set_attr(a, "layer_names", names + ["nope"], STR), "error"),
        "layer_names-duplicate": (mw, lambda a: set_attr(a, "layer_names", names + [names[0]], STR), "ok-or-error"),
        "layer_names-empty-string": (mw, lambda a: set_attr(a, "layer_names", [""] + names, STR), "ok-or-error"),
        "weight_names-three": (cw, lambda a: set_attr(
            a, "weight_names", ["mnist_cnn/conv2d/kernel", "mnist_cnn/conv2d/bias", "mnist_cnn/conv2d/extra"], STR),
            "error"),
        "weight_names-one": (cw, lambda a: set_attr(a, "weight_names", ["mnist_cnn/conv2d/kernel"], STR), "error"),
        "weight_names-2d": (cw, lambda a: set_attr(
            a, "weight_names", [["mnist_cnn/conv2d/kernel"], ["mnist_cnn/conv2d/bias"]], STR), "ok-or-error"),
        "weight_names-numbers": (cw, lambda a: set_attr(a, "weight_names", np.arange(2)), "error"),
        "weight_names-dotdot": (cw, lambda a: set_attr(
            a, "weight_names", ["../dense/mnist_cnn/dense/kernel", "mnist_cnn/conv2d/bias"], STR), "error"),
        "weight_names-absolute-other-layer": (cw, lambda a: set_attr(
            a, "weight_names", ["/model_weights/dense/mnist_cnn/dense/kernel", "mnist_cnn/conv2d/bias"], STR),
            "error"),
        "weight_names-group": (cw, lambda a: set_attr(a, "weight_names", ["mnist_cnn", "mnist_cnn/conv2d/bias"], STR),
                               "error"),
        "weight_names-null-space": (cw, lambda a: set_attr(a, "weight_names", h5py.Empty("S1")), "error"),
    }
    for label, (mutate, expect) in on_root.items():
        name = f"c2_legacy_{label}.h5"
        base.mutated_copy(g, "cnn.h5", name, mutate)
        g.add(f"c2-legacy-{label}", 2, f"legacy .h5 root attribute: {label}", [name],
              legacy_runs(name, expect))
    for label, (path, mutate, expect) in on_groups.items():
        name = f"c2_legacy_{label}.h5"
        base.mutated_copy(g, "cnn.h5", name, lambda f, p=path, m=mutate: m(f[p]))
        g.add(f"c2-legacy-{label}", 2, f"legacy .h5 {path} attribute: {label}", [name],
              legacy_runs(name, expect))


def odd_attributes(f):
    """Attribute name -> writer, one per HDF5 type class and dataspace Pare may meet in a plain file."""
    ds = f["features.0.weight"]
    return {
        "null-space": lambda o: set_attr(o, "a", h5py.Empty("f4")),
        "compound": lambda o: set_attr(o, "a", np.array([(1, 2.0)], dtype=[("i", "<i4"), ("x", "<f8")])),
        "enum-bool": lambda o: set_attr(o, "a", np.array([True, False])),
        "opaque": lambda o: set_attr(o, "a", np.void(b"\x01\x02\x03")),
        "object-reference": lambda o: o.attrs.create("a", ds.ref, dtype=h5py.ref_dtype),
        "region-reference": lambda o: o.attrs.create("a", ds.regionref[0:2], dtype=h5py.regionref_dtype),
        "vlen-ints": lambda o: set_attr(o, "a", vlen_ints(3, 5), h5py.vlen_dtype(np.int32)),
        "array-type": lambda o: set_attr(o, "a", np.zeros(2, dtype=np.dtype(("<f4", (3,))))),
        "complex": lambda o: set_attr(o, "a", np.array([1 + 2j], dtype="<c8")),
        "big-endian": lambda o: set_attr(o, "a", np.arange(4, dtype=">i4")),
        "spacepad-string": lambda o: set_spacepad(o, "a", "spaced", 16),
        "strings-2d": lambda o: set_attr(o, "a", [["a", "b"], ["c", "d"]], STR),
        "fixed-string-huge": lambda o: set_attr(o, "a", np.bytes_(b"x" * 60000)),
        "name-with-slash": lambda o: set_attr(o, "a/b", 1),
        "name-with-newline": lambda o: set_attr(o, "line\nbreak", 1),
        "name-long": lambda o: set_attr(o, "n" * 30000, 1),
        "float16-nan": lambda o: set_attr(o, "a", np.array([np.nan, -0.0, np.inf], dtype="<f2")),
        "uint64-max": lambda o: set_attr(o, "a", np.array([2 ** 64 - 1], dtype="<u8")),
        "zero-size-array": lambda o: set_attr(o, "a", np.zeros((0, 3), dtype="<f4")),
        "scalar-vlen-bytes": lambda o: set_attr(o, "a", b"\xff\xfe not utf8", h5py.string_dtype("ascii")),
        "utf8-invalid": lambda o: set_attr(o, "a", np.bytes_(b"\xc3\x28\xa0\xa1")),
    }


def odd_datasets():
    return {
        "compound": lambda f: f.create_dataset("odd", data=np.zeros(4, dtype=[("i", "<i4"), ("x", "<f8")])),
        "strings": lambda f: f.create_dataset("odd", data=["a", "bb"], dtype=STR),
        "fixed-strings": lambda f: f.create_dataset("odd", data=np.array([b"ab", b"cd"])),
        "bool": lambda f: f.create_dataset("odd", data=np.array([True, False])),
        "complex64": lambda f: f.create_dataset("odd", data=np.ones(3, dtype="<c8")),
        "vlen-ints": lambda f: f.create_dataset("odd", data=vlen_ints(2), dtype=h5py.vlen_dtype(np.int32)),
        "object-refs": lambda f: f.create_dataset("odd", data=[f["meta"].ref], dtype=h5py.ref_dtype),
        "zero-size": lambda f: f.create_dataset("odd", shape=(0, 5), dtype="<f4"),
        "scalar": lambda f: f.create_dataset("odd", data=np.float32(1.5)),
        "null-space": lambda f: f.create_dataset("odd", data=h5py.Empty("<f4")),
        "never-written": lambda f: f.create_dataset("odd", shape=(64, 64), dtype="<f4", chunks=(8, 8),
                                                    fillvalue=3.25),
        "unlimited": lambda f: f.create_dataset("odd", data=np.ones((4, 4), "<f4"), maxshape=(None, 4)),
        "fletcher32": lambda f: f.create_dataset("odd", data=np.ones((8, 8), "<f4"), fletcher32=True, chunks=(4, 4)),
        "scaleoffset": lambda f: f.create_dataset("odd", data=np.arange(64, dtype="<i4"), scaleoffset=0, chunks=(8,)),
        "lzf": lambda f: f.create_dataset("odd", data=np.ones((8, 8), "<f4"), compression="lzf"),
        "unknown-filter": unknown_filter,
        "big-endian-f4": lambda f: f.create_dataset("odd", data=np.arange(12, dtype=">f4").reshape(3, 4)),
        "big-endian-f2": lambda f: f.create_dataset("odd", data=np.arange(12, dtype=">f2").reshape(3, 4)),
        "int4-like-bitfield": lambda f: f.create_dataset("odd", data=np.zeros(4, dtype="<u1").view("V1")),
        "time-like": lambda f: f.create_dataset("odd", data=np.zeros(2, dtype="<i8"), dtype=h5py.enum_dtype(
            {"A": 0, "B": 1}, basetype="<i8")),
    }


def unknown_filter(f):
    """A chunk stored through a filter id no libhdf5 knows (32001 is Blosc, not built in)."""
    ds = f.create_dataset("odd", shape=(4, 4), dtype="<f4", chunks=(4, 4), compression=32001,
                          allow_unknown_filter=True)
    ds.id.write_direct_chunk((0, 0), b"\x00" * 64)


def generate_plain(g):
    with h5py.File(g.path("sd.h5"), "r") as f:
        writers = odd_attributes(f)
    for i, label in enumerate(writers):
        where = ("root", "dataset")[i % 2]  # both places are read by one walk: alternate between them
        name = f"c2_plain_attr_{label}.h5"

        def mutate(f, w=where, key=label):
            odd_attributes(f)[key](f if w == "root" else f["features.0.weight"])
        try:
            base.mutated_copy(g, "sd.h5", name, mutate)
        except (TypeError, ValueError, OSError) as e:  # this h5py cannot write it: nothing to test
            print(f"make_hostile: skipped {name}: {e}")
            continue
        g.add(f"c2-plain-attr-{label}", 2, f"plain file, {where} attribute of type {label}", [name],
              plain_runs(name))
    for label, make in odd_datasets().items():
        name = f"c2_plain_ds_{label}.h5"
        try:
            base.mutated_copy(g, "sd.h5", name, make)
        except (TypeError, ValueError, OSError) as e:
            print(f"make_hostile: skipped {name}: {e}")
            continue
        g.add(f"c2-plain-ds-{label}", 2, f"plain file with a {label} dataset", [name], plain_runs(name))


def generate(g):
    generate_pare(g)
    generate_legacy(g)
    generate_plain(g)
