"""A minimal ZIP writer that takes already-compressed member data and lets every header field lie.

Python's zipfile computes sizes and CRCs itself and cannot write a member whose compressed bytes
were made elsewhere (a multi-GiB bomb made by repeating a deflate segment) or headers that disagree
with each other, so the archive cases use this. Standard library only.
"""
import struct
import zlib

STORED, DEFLATED = 0, 8
S_IFLNK = 0o120000


class Member:
    def __init__(self, name, data=b"", method=STORED, crc=None, size=None, raw=None, flags=0, external_attr=None,
                 local_name=None, local_size=None, zip64_size=None):
        """`data`: the uncompressed bytes (compressed here with `method`), unless `raw` (stored bytes) is
        given with `crc` and `size`. local_name / local_size make the local header disagree with the central
        directory; zip64_size puts that size in a zip64 extra field."""
        self.name = name.encode() if isinstance(name, str) else name
        if raw is None:
            raw = deflate_raw(data) if method == DEFLATED else data
            crc, size = zlib.crc32(data) & 0xFFFFFFFF, len(data)
        self.raw, self.crc, self.size, self.method, self.flags = raw, crc, size, method, flags
        self.external_attr = (0o644 << 16) if external_attr is None else external_attr
        self.local_name = self.name if local_name is None else local_name.encode()
        self.local_size = local_size
        self.zip64_size = zip64_size


def deflate_raw(data, level=6):
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


def deflate_zeros_raw(count, segment=64 << 20):
    """(raw deflate bytes, crc32) of `count` zero bytes, count a multiple of `segment`, in seconds.

    A segment compressed with Z_FULL_FLUSH ends byte-aligned and refers to nothing before it, so the
    same bytes can be repeated; an empty final block closes the stream.
    """
    assert count % segment == 0
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    part = z.compress(bytes(segment)) + z.flush(zlib.Z_FULL_FLUSH)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc, block = 0, bytes(16 << 20)
    for _ in range(count // len(block)):
        crc = zlib.crc32(block, crc)
    return part * (count // segment) + tail, crc & 0xFFFFFFFF


def _zip64_extra(values):
    body = b"".join(struct.pack("<Q", v) for v in values)
    return struct.pack("<HH", 1, len(body)) + body


def build(members, prefix=b"", suffix=b"", comment=b"", force_zip64=False, cd_offset_delta=0):
    """The archive bytes. `prefix`: junk before the first member (a self-extractor's stub)."""
    out = bytearray(prefix)
    central = bytearray()
    for m in members:
        offset = len(out)
        big = force_zip64 or m.size >= 0xFFFFFFFF or len(m.raw) >= 0xFFFFFFFF or m.zip64_size is not None
        size = m.size if m.zip64_size is None else m.zip64_size
        local_size = size if m.local_size is None else m.local_size
        extra = _zip64_extra([local_size, len(m.raw)]) if big else b""
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if big else 20, m.flags, m.method, 0, 0x21, m.crc,
                           0xFFFFFFFF if big else len(m.raw), 0xFFFFFFFF if big else local_size,
                           len(m.local_name), len(extra))
        out += m.local_name + extra + m.raw
        cextra = _zip64_extra([size, len(m.raw), offset]) if big else b""
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45 if big else 20, m.flags, m.method, 0,
                               0x21, m.crc, 0xFFFFFFFF if big else len(m.raw), 0xFFFFFFFF if big else size,
                               len(m.name), len(cextra), 0, 0, 0, m.external_attr,
                               0xFFFFFFFF if big else offset)
        central += m.name + cextra
    cd_offset = len(out) + cd_offset_delta
    out += central
    count = len(members)
    if force_zip64 or count > 0xFFFF or cd_offset > 0xFFFFFFFF:
        eocd64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_offset, len(comment))
    return bytes(out + comment + suffix)
