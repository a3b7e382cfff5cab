"""Class "pare": every field of the .pare container attacked, checksums repaired so each mutation
reaches the parser (spec/pare-format.md, "What a reader must reject").

The base file `tz.pare` is written here from the spec, independently of Pare: one tensor per
encoding (dense, bitmask, int8, int8-bitmask, a zlib-compressed one). A control case holds Pare to
accepting it, so every mutation below differs from an accepted file in the one field it names.
"""
import copy
import struct
import zlib

import numpy as np

import pare_file
from common import run


def runs(f, expect="error", timeout=None):
    """check validates everything; unpack decodes every tensor into an .h5 (where wrong sizes leak)."""
    return [run(["{pare}", "check", f], expect, timeout=timeout),
            run(["{pare}", "unpack", f, "o.h5"], expect, outputs=["o.h5"], timeout=timeout)]


def tz_parts(seed=5):
    """(entries, payloads) of the base file: tensor entries with "_streams" placeholders."""
    rng = np.random.default_rng(seed)
    entries, payloads = [], []

    def add(entry, *streams):
        entry["_streams"] = []
        for data, decoded, compression in streams:
            entry["_streams"].append((len(payloads), decoded, compression))
            payloads.append(data)
        entries.append(entry)

    dense = rng.standard_normal((4, 3)).astype("<f4")
    add({"dtype": "float32", "shape": [4, 3], "encoding": "dense"}, (dense.tobytes(), 48, "none"))
    sparse = rng.standard_normal((16, 8)).astype("<f4") * (rng.random((16, 8)) < 0.25)
    mask = np.packbits(sparse.reshape(-1) != 0, bitorder="little").tobytes()
    values = sparse.reshape(-1)[sparse.reshape(-1) != 0].tobytes()
    add({"dtype": "float32", "shape": [16, 8], "encoding": "bitmask", "nonzero": len(values) // 4},
        (mask, len(mask), "none"), (values, len(values), "none"))
    scales = np.array([0.5, 0.25, 1.0, 2.0], "<f4").tobytes()
    q = rng.integers(-127, 128, 24).astype("i1").tobytes()
    add({"dtype": "float32", "shape": [6, 4], "encoding": "int8", "channels": 4}, (scales, 16, "none"), (q, 24, "none"))
    qmask = np.packbits(np.arange(32) % 3 == 0, bitorder="little").tobytes()
    qvals = rng.integers(-127, 128, int(np.sum(np.arange(32) % 3 == 0))).astype("i1").tobytes()
    add({"dtype": "float32", "shape": [8, 4], "encoding": "int8-bitmask", "channels": 4, "nonzero": len(qvals)},
        (scales, 16, "none"), (qmask, len(qmask), "none"), (qvals, len(qvals), "none"))
    zeros = bytes(4096)
    add({"dtype": "uint8", "shape": [4096], "encoding": "dense"}, (zlib.compress(zeros), 4096, "zlib"))
    return entries, payloads


def write_tz(path, edit=None, edit_payloads=None):
    """Writes the base file, edit(header) and edit_payloads(payloads) applied first, CRCs right."""
    entries, payloads = tz_parts()
    if edit_payloads:
        edit_payloads(payloads)
    body, places = pare_file.build_body(payloads)
    tensors = []
    for e in entries:
        e = dict(e)
        e["streams"] = [pare_file.stream_entry(places[i], d, c) for i, d, c in e.pop("_streams")]
        tensors.append(e)
    nodes = [pare_file.dataset_node(f"t{i}", i) for i in range(len(tensors))]
    header = {"format": "pare", "version": [1, 0], "model": pare_file.tensors_model(nodes), "tensors": tensors}
    if edit:
        header = edit(header) or header
    pare_file.write(path, body, header)
    return body, header


def setter(path, value):
    """edit(header) setting header[path...] = value; path items are keys or indices."""
    def edit(h):
        node = h
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def deleter(path):
    def edit(h):
        node = h
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


def stream0(t, field, value):
    return setter(["tensors", t, "streams", 0, field], value)


def header_mutations():
    """label -> (edit(header), expectation)."""
    return {
        "dtype-unknown": (setter(["tensors", 0, "dtype"], "float128"), "error"),
        "dtype-int8-on-int8-encoding": (setter(["tensors", 2, "dtype"], "int8"), "error"),
        "encoding-unknown": (setter(["tensors", 0, "encoding"], "rle"), "error"),
        "shape-one-more": (setter(["tensors", 0, "shape"], [4, 4]), "error"),
        "shape-one-less": (setter(["tensors", 0, "shape"], [4, 2]), "error"),
        "shape-negative": (setter(["tensors", 0, "shape"], [-4, -3]), "error"),
        "shape-overflow": (setter(["tensors", 0, "shape"], [1 << 62, 1 << 62, 12]), "error"),
        "shape-wraps": (setter(["tensors", 0, "shape"], [1 << 62, 4, 3]), "error"),  # n*b wraps to 48
        "shape-float": (setter(["tensors", 0, "shape"], [4.0, 3.0]), "ok-or-error"),
        "shape-string": (setter(["tensors", 0, "shape"], ["4", "3"]), "error"),
        "shape-dropped-item": (setter(["tensors", 0, "shape"], [4, "x", 3]), "error"),
        "streams-none": (setter(["tensors", 0, "streams"], []), "error"),
        "streams-extra": (lambda h: h["tensors"][0]["streams"].append(dict(h["tensors"][0]["streams"][0])), "error"),
        "offset-zero": (stream0(0, "offset", 0), "error"),
        "offset-63": (stream0(0, "offset", 63), "error"),
        "offset-past-end": (stream0(0, "offset", 1 << 40), "error"),
        "offset-negative": (stream0(0, "offset", -64), "error"),
        "offset-2^64-64": (stream0(0, "offset", (1 << 64) - 64), "error"),
        "offset-float": (stream0(0, "offset", 64.5), "error"),
        "offset-overlap": (setter(["tensors", 1, "streams", 0, "offset"], 64), "error"),
        "length-huge": (stream0(0, "length", 1 << 62), "error"),
        "length-negative": (stream0(0, "length", -48), "error"),
        "decoded-mismatch": (stream0(0, "decoded_length", 52), "error"),
        "decoded-1TiB-zlib": (lambda h: h["tensors"][4].update(shape=[1 << 40]) or
                              h["tensors"][4]["streams"][0].update(decoded_length=1 << 40), "error"),
        "compression-unknown": (stream0(0, "compression", "gzip"), "error"),
        "compression-zlib-on-raw": (stream0(0, "compression", "zlib"), "error"),
        "crc-wrong": (stream0(0, "crc32", 12345), "error"),
        "crc-negative": (stream0(0, "crc32", -1), "error"),
        "nonzero-more-than-n": (setter(["tensors", 1, "nonzero"], 129), "error"),
        "nonzero-negative": (setter(["tensors", 1, "nonzero"], -1), "error"),
        "nonzero-missing": (deleter(["tensors", 1, "nonzero"]), "error"),
        "nonzero-huge": (setter(["tensors", 1, "nonzero"], 1 << 61), "error"),
        "channels-zero": (setter(["tensors", 2, "channels"], 0), "error"),
        "channels-mismatch": (setter(["tensors", 2, "channels"], 3), "error"),
        "channels-huge": (setter(["tensors", 2, "channels"], 1 << 60), "error"),
        "tensor-index-negative": (setter(["model", "root_extras", 0, "tensor"], -1), "error"),
        "tensor-index-past-end": (setter(["model", "root_extras", 0, "tensor"], 5), "error"),
        "tensor-index-2^64": (setter(["model", "root_extras", 0, "tensor"], 1 << 64), "error"),
        "tensor-index-float": (setter(["model", "root_extras", 0, "tensor"], 0.5), "error"),
        "tensor-index-string": (setter(["model", "root_extras", 0, "tensor"], "0"), "error"),
        "tensor-used-twice": (setter(["model", "root_extras", 1, "tensor"], 0), "error"),
        "tensor-unreferenced": (lambda h: h["model"]["root_extras"].pop(), "error"),
        "header-array": (lambda h: [h], "error"),
        "format-other": (setter(["format"], "npz"), "error"),
        "header-version-2": (setter(["version"], [2, 0]), "error"),
        "source-format-unknown": (setter(["model", "source_format"], "onnx"), "error"),
        "kind-unknown": (setter(["model", "kind"], "everything"), "error"),
        "kind-full-model-no-config": (setter(["model", "kind"], "full-model"), "error"),
        "layers-not-array": (setter(["model", "layers"], {"a": 1}), "error"),
        "model-config-not-json": (setter(["model", "model_config"], "{not json"), "error"),
        "model-config-deep": (setter(["model", "model_config"], "[" * 200000 + "]" * 200000), "error"),
        "metadata-not-json": (setter(["model", "keras_metadata"], "\u0000\u0001"), "ok-or-error"),
        "node-group-and-dataset": (lambda h: h["model"]["root_extras"][0].update(group="g", children=[]),
                                   "ok-or-error"),
        "node-neither": (setter(["model", "root_extras", 0], {"attributes": []}), "error"),
        "node-name-slash": (setter(["model", "root_extras", 0, "dataset"], "a/../../b"), "ok-or-error"),
        "node-name-empty": (setter(["model", "root_extras", 0, "dataset"], ""), "error"),
        "node-name-dot": (setter(["model", "root_extras", 0, "dataset"], "."), "error"),
        "node-names-duplicate": (setter(["model", "root_extras", 1, "dataset"], "t0"), "error"),
    }


def payload_mutations():
    """label -> (edit_payloads(payloads), expectation): stream bytes changed, CRCs recomputed."""
    def set_byte(stream, index, value):
        def edit(p):
            b = bytearray(p[stream])
            b[index] = value
            p[stream] = bytes(b)
        return edit

    def replace(stream, data):
        def edit(p):
            p[stream] = data
        return edit
    return {
        "mask-popcount-high": (set_byte(1, 0, 0xFF), "error"),
        "int8-minus-128": (set_byte(4, 0, 0x80), "error"),
        "int8-scale-nan": (replace(3, np.array([np.nan, 1, 1, 1], "<f4").tobytes()), "error"),
        "int8-scale-zero": (replace(3, np.array([0, 1, 1, 1], "<f4").tobytes()), "error"),
        "int8-scale-negative": (replace(3, np.array([-1, 1, 1, 1], "<f4").tobytes()), "error"),
        "int8-scale-inf": (replace(3, np.array([np.inf, 1, 1, 1], "<f4").tobytes()), "error"),
        "zlib-bomb-longer": (replace(8, zlib.compress(bytes(1 << 24))), "error"),
        "zlib-shorter": (replace(8, zlib.compress(bytes(100))), "error"),
        "zlib-trailing-garbage": (replace(8, zlib.compress(bytes(4096)) + b"garbage"), "error"),
        "zlib-raw-deflate": (replace(8, zlib.compress(bytes(4096))[2:-4]), "error"),
        "zlib-gzip-wrapper": (replace(8, gzip_bytes(bytes(4096))), "error"),
        "zlib-truncated": (replace(8, zlib.compress(bytes(4096))[:-6]), "error"),
    }


def gzip_bytes(data):
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


def generate(g):
    write_tz(g.path("tz.pare"))
    g.add("pare-control", "pare", "the unmutated base file written from the spec", ["tz.pare"], [
        run(["{pare}", "check", "tz.pare"], "ok"), run(["{pare}", "inspect", "tz.pare"], "ok"),
        run(["{pare}", "unpack", "tz.pare", "o.h5"], "ok", outputs=["o.h5"]),
        run(["{pare}", "convert", "tz.pare", "o.pare"], "ok", outputs=["o.pare"])])
    for label, (edit, expect) in header_mutations().items():
        name = f"pare_hdr_{label}.pare"
        write_tz(g.path(name), edit=edit)
        g.add(f"pare-header-{label}", "pare", f".pare header field: {label}", [name], runs(name, expect))
    for label, (edit, expect) in payload_mutations().items():
        name = f"pare_stream_{label}.pare"
        write_tz(g.path(name), edit_payloads=edit)
        g.add(f"pare-stream-{label}", "pare", f".pare stream bytes: {label}", [name], runs(name, expect))
    generate_padding_bits(g)
    generate_raw(g)


def generate_padding_bits(g):
    """A mask of 12 elements (2 bytes): bits 12..15 must be zero."""
    def edit_payloads(p):
        p[1] = bytes([0x0F, 0xF0])  # 4 set bits, plus 4 in the padding
        p[2] = p[2][:16]

    def edit(h):
        h["tensors"][1].update(shape=[12], nonzero=4)
        h["tensors"][1]["streams"][1]["decoded_length"] = 16
        h["tensors"][1]["streams"][0]["decoded_length"] = 2
    name = "pare_stream_mask-padding-bit.pare"
    write_tz(g.path(name), edit=edit, edit_payloads=edit_payloads)
    g.add("pare-stream-mask-padding-bit", "pare", ".pare bitmask with padding bits set", [name], runs(name))


def generate_raw(g):
    """Mutations of the container bytes themselves: prologue, trailer, header text, padding."""
    body, header = write_tz(g.path("pare_raw_base.pare"))
    text = pare_file.dump_header(header)
    good = pare_file.assemble(body, text)

    def put(name, data):
        with open(g.path(name), "wb") as f:
            f.write(data)
        return name

    def with_trailer(h_off, length, header_crc=None):
        crc = pare_file.crc32(text) if header_crc is None else header_crc
        t = pare_file.TRAILER_MAGIC + struct.pack("<QQI", h_off % (1 << 64), length % (1 << 64), crc)
        return good[:-32] + t + struct.pack("<I", pare_file.crc32(t))

    h_off = 64 + len(body)
    deep = b"[" * 500000 + b"]" * 500000
    cases = {
        "short-95-bytes": (good[:95], "error"),
        "prologue-only": (good[:64], "error"),
        "prologue-version-2": (pare_file.assemble(body, text, pare_file.prologue(major=2)), "error"),
        "prologue-minor-7": (pare_file.assemble(body, text, pare_file.prologue(minor=7)), "ok"),
        "prologue-flags": (pare_file.assemble(body, text, pare_file.prologue(flags=1)), "error"),
        "prologue-reserved": (pare_file.prologue()[:40] + b"\x01" + pare_file.prologue()[41:] + good[64:], "error"),
        "trailer-h-plus-l-wraps": (with_trailer((1 << 64) - 64, len(good) - 32 + 64), "error"),
        "trailer-length-huge": (with_trailer(h_off, 1 << 63), "error"),
        "trailer-h-unaligned": (with_trailer(h_off - 1, len(text) + 1), "error"),
        "trailer-h-below-64": (with_trailer(0, len(good) - 32), "error"),
        "padding-nonzero": (good[:64 + 48] + b"\x01" + good[64 + 49:], "error"),
        "header-not-utf8": (pare_file.assemble(body, text.replace(b'"t0"', b'"\xff\xfe"')), "error"),
        "header-bom": (pare_file.assemble(body, b"\xef\xbb\xbf" + text), "ok-or-error"),
        "header-trailing-garbage": (pare_file.assemble(body, text + b" ]]"), "error"),
        "header-duplicate-tensors-key": (pare_file.assemble(body, text[:-1] + b',"tensors":[]}'), "error"),
        "header-deep-nesting": (pare_file.assemble(body, text[:-1] + b',"x":' + deep + b"}"), "error"),
        "header-offset-1e400": (pare_file.assemble(body, text.replace(b'"offset":64,', b'"offset":1e400,', 1)),
                                "error"),
        "header-lone-surrogate": (pare_file.assemble(body, text.replace(b'"t0"', b'"\\ud800"')), "ok-or-error"),
        "header-nul-in-name": (pare_file.assemble(body, text.replace(b'"t0"', b'"t\\u0000x"')), "error"),
        "header-nan-literal": (pare_file.assemble(body, text.replace(b'"offset":64,', b'"offset":NaN,', 1)), "error"),
        "empty-file": (b"", "error"),
    }
    for label, (data, expect) in cases.items():
        name = put(f"pare_raw_{label}.pare", data)
        g.add(f"pare-raw-{label}", "pare", f".pare container bytes: {label}", [name], runs(name, expect))
    # json.dumps recurses: the deep children tree is written as text.
    deep_children = b'{"group":"g","attributes":[],"children":[' * 100000 + b"]}" * 100000
    h = copy.deepcopy(header)
    h["model"]["root_extras"].append("DEEP")
    raw = pare_file.dump_header(h).replace(b'"DEEP"', deep_children)
    put("pare_raw_children-100k-deep.pare", pare_file.assemble(body, raw))
    g.add("pare-raw-children-100k-deep", "pare", ".pare model nodes nested 100,000 deep",
          ["pare_raw_children-100k-deep.pare"], runs("pare_raw_children-100k-deep.pare"))
