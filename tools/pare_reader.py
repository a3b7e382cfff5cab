"""An independent reader of the .pare format (spec/pare-format.md), numpy and the standard library only.

    python pare_reader.py FILE.pare OUT.npz     decodes every tensor (keys: "t<index>") and checks every rule
    python -c "import pare_reader; model, tensors = pare_reader.read('m.pare')"

Written from the spec, not from Pare's Swift code, so the tests can hold one against the other.
"""
import json
import struct
import sys
import zlib

import numpy as np

MAGIC = b"\x89PARE\r\n\x1a"
TRAILER_MAGIC = b"PAREHDR\x00"
DTYPES = {"float16": "<f2", "bfloat16": "<u2", "float32": "<f4", "float64": "<f8", "int8": "i1", "int16": "<i2",
          "int32": "<i4", "int64": "<i8", "uint8": "u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8"}


class PareError(Exception):
    pass


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def align(n):
    return (n + 63) // 64 * 64


def read(path):
    data = open(path, "rb").read()
    size = len(data)
    if size < 96:
        raise PareError("too short")
    if data[:8] != MAGIC or struct.unpack_from("<I", data, 16)[0] != crc(data[:16]):
        raise PareError("bad prologue")
    major, _minor, flags = struct.unpack_from("<HHI", data, 8)
    if major != 1 or flags != 0 or any(data[20:64]):
        raise PareError("unsupported version or non-zero reserved bytes")
    t = data[-32:]
    if t[:8] != TRAILER_MAGIC or struct.unpack_from("<I", t, 28)[0] != crc(t[:28]):
        raise PareError("bad trailer")
    h, l, hcrc = struct.unpack_from("<QQI", t, 8)
    if l > 64 << 20 or h < 64 or h % 64 or h + l + 32 != size:
        raise PareError("header does not fit")
    header = data[h:h + l]
    if crc(header) != hcrc:
        raise PareError("header checksum")
    meta = json.loads(header.decode("utf-8"))
    tensors, expected = [], 64
    for i, e in enumerate(meta["tensors"]):
        streams = []
        for s in e["streams"]:
            if s["offset"] != expected:
                raise PareError(f"tensor {i}: stream not where expected")
            stored = data[s["offset"]:s["offset"] + s["length"]]
            end = s["offset"] + s["length"]
            expected = align(end)
            if any(data[end:expected]):
                raise PareError(f"tensor {i}: non-zero padding")
            if len(stored) != s["length"] or crc(stored) != s["crc32"]:
                raise PareError(f"tensor {i}: stream checksum")
            raw = zlib.decompress(stored) if s["compression"] == "zlib" else stored
            if len(raw) != s["decoded_length"]:
                raise PareError(f"tensor {i}: stream length")
            streams.append(raw)
        tensors.append(decode(e, streams, i))
    if expected != h:
        raise PareError("gap before the header")
    return meta["model"], tensors


def unpack_mask(mask, n, nonzero, i):
    bits = np.unpackbits(np.frombuffer(mask, np.uint8), bitorder="little")
    if bits[n:].any() or int(bits[:n].sum()) != nonzero:
        raise PareError(f"tensor {i}: bad mask")
    return bits[:n].astype(bool)


def decode(e, streams, i):
    shape, enc = tuple(e["shape"]), e["encoding"]
    n = int(np.prod(shape)) if shape else 1
    dt = np.dtype(DTYPES[e["dtype"]])
    if enc == "dense":
        return np.frombuffer(streams[0], dt).reshape(shape)
    if enc == "bitmask":
        keep = unpack_mask(streams[0], n, e["nonzero"], i)
        out = np.zeros(n, dt)
        out[keep] = np.frombuffer(streams[1], dt)
        return out.reshape(shape)
    scales = np.frombuffer(streams[0], "<f4")
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise PareError(f"tensor {i}: bad scale")
    q = np.zeros(n, np.int8)
    if enc == "int8":
        q[:] = np.frombuffer(streams[1], np.int8)
    else:
        keep = unpack_mask(streams[1], n, e["nonzero"], i)
        q[keep] = np.frombuffer(streams[2], np.int8)
    if (q == -128).any():
        raise PareError(f"tensor {i}: int8 value -128")
    # 1.1: one scale per index over channel_axes [a, b); 1.0 files scale the last axis.
    a, b = e.get("channel_axes", [max(len(shape) - 1, 0), len(shape)])
    inner = int(np.prod(shape[b:])) if shape[b:] else 1
    if len(scales) != (int(np.prod(shape[a:b])) if shape else 1):
        raise PareError(f"tensor {i}: {len(scales)} scales for channel axes {a}..{b} of {shape}")
    values = q.astype(np.float32) * scales[(np.arange(n) // inner) % len(scales)]
    return values.astype(dt).reshape(shape)


if __name__ == "__main__":
    model, tensors = read(sys.argv[1])
    np.savez(sys.argv[2], **{f"t{i}": t for i, t in enumerate(tensors)})
    print(f"{sys.argv[1]}: {len(tensors)} tensors, {len(model['layers'])} layers")
