"""Reads, writes and patches .pare files (spec/pare-format.md) for the hostile-file generator.

Every mutation is written back with correct CRC-32s (prologue, streams, header, trailer), so that it
gets past the checksums and reaches the parser behind them. Standard library only.
"""
import json
import struct
import zlib

MAGIC = b"\x89PARE\r\n\x1a"
TRAILER_MAGIC = b"PAREHDR\x00"
ALIGN = 64


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


def aligned(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def prologue(major=1, minor=0, flags=0):
    head = MAGIC + struct.pack("<HHI", major, minor, flags)
    return head + struct.pack("<I", crc32(head)) + bytes(44)


def trailer(header_offset, header):
    t = TRAILER_MAGIC + struct.pack("<QQI", header_offset, len(header), crc32(header))
    return t + struct.pack("<I", crc32(t))


def read(path):
    """Returns (body, header): body is the bytes between prologue and header, header the parsed JSON."""
    data = open(path, "rb").read()
    offset, length = struct.unpack_from("<QQ", data, len(data) - 24)
    return data[64:offset], json.loads(data[offset:offset + length].decode("utf-8"))


def assemble(body, header_bytes, pro=None):
    """The file bytes for a body (already padded to 64) and raw header bytes, every CRC correct."""
    pro = prologue() if pro is None else pro
    return pro + body + header_bytes + trailer(len(pro) + len(body), header_bytes)


def dump_header(header):
    # Compact and ASCII-only, as a writer would; mutations needing other bytes use write_raw.
    return json.dumps(header, separators=(",", ":")).encode()


def write(path, body, header, pro=None):
    with open(path, "wb") as f:
        f.write(assemble(body, dump_header(header), pro))


def write_raw(path, body, header_bytes, pro=None):
    with open(path, "wb") as f:
        f.write(assemble(body, header_bytes, pro))


def patch(src, dst, mutate):
    """Copies src to dst with mutate(header) applied (in place or returned), CRCs repaired."""
    body, header = read(src)
    result = mutate(header)
    write(dst, body, header if result is None else result)


def build_body(streams):
    """Lays out stream payloads from offset 64; returns (body, [(offset, length, crc)])."""
    body, places = bytearray(), []
    for data in streams:
        places.append((ALIGN + len(body), len(data), crc32(data)))
        body += data
        body += bytes(aligned(len(body)) - len(body))
    return bytes(body), places


def stream_entry(place, decoded_length, compression="none"):
    offset, length, crc = place
    return {"offset": offset, "length": length, "decoded_length": decoded_length,
            "compression": compression, "crc32": crc}


def tensors_model(root_extras, root_attributes=()):
    """The model section of a plain tensor file (kind `tensors`): everything lives in root_extras."""
    return {"source_format": "hdf5-tensors", "kind": "tensors", "keras_metadata": None, "model_config": None,
            "name_list_encoding": {"strings": [], "shape": [0], "vlen": True, "utf8": True, "size": 0,
                                   "pad": "nullterm"},
            "root_attributes": list(root_attributes), "weights_group_attributes": [], "layers": [],
            "optimizer": None, "root_extras": list(root_extras), "weights_group_extras": []}


def dataset_node(name, tensor, attributes=()):
    return {"dataset": name, "attributes": list(attributes), "tensor": tensor}


def tensors_file(path, entries, payloads, root_attributes=(), nodes=None):
    """Writes a tensors-kind .pare from scratch.

    entries: tensor entries without "streams", each with a "_streams" list of
    (payload index, decoded_length, compression); payloads: the stored bytes of every stream.
    """
    body, places = build_body(payloads)
    tensors = []
    for e in entries:
        e = dict(e)
        e["streams"] = [stream_entry(places[i], d, c) for i, d, c in e.pop("_streams")]
        tensors.append(e)
    if nodes is None:
        nodes = [dataset_node(f"t{i}", i) for i in range(len(tensors))]
    header = {"format": "pare", "version": [1, 0], "model": tensors_model(nodes, root_attributes),
              "tensors": tensors}
    write(path, body, header)
    return header


def deflate_zeros(count, segment=64 << 20):
    """A zlib (RFC 1950) stream of `count` zero bytes, made in seconds even for GiBs.

    A segment compressed with Z_FULL_FLUSH ends byte-aligned and refers to nothing before it, so
    its bytes can be repeated; an empty final block and the Adler-32 close the stream.
    """
    segment = min(segment, count) or 1
    whole, rest = divmod(count, segment)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    part = z.compress(bytes(segment)) + z.flush(zlib.Z_FULL_FLUSH)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = z.compress(bytes(rest)) + z.flush()
    adler, block = 1, bytes(min(count, 16 << 20))
    left = count
    while left:
        n = min(left, len(block))
        adler = zlib.adler32(block if n == len(block) else block[:n], adler)
        left -= n
    return b"\x78\xda" + part * whole + tail + struct.pack(">I", adler & 0xFFFFFFFF)
