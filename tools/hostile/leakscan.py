"""Looks for bytes of files other than the inputs in what Pare wrote.

Raw bytes are searched first; then what a compressed container hides is opened and searched too:
HDF5 datasets and attributes (read with h5py, so deflated datasets are searched decoded), `.keras`
zip members (and the HDF5 inside), `.pare` zlib streams. An HDF5 output that itself refers outside
(external link, external storage, virtual dataset) is reported as such and never followed.
"""
import io
import json
import struct
import zipfile
import zlib

import h5py
import numpy as np

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PARE_MAGIC = b"\x89PARE\r\n\x1a"
READ_CAP = 512 << 20  # decoded bytes searched per dataset or member; larger ones are skipped


def find(data, needles):
    """Labels of the needles (label -> bytes) found in data."""
    return [label for label, needle in needles.items() if needle and needle in data]


def is_hdf5(data):
    # The superblock may sit at 0, 512, 1024, 2048, … (a user block before it).
    offset = 0
    while offset < len(data):
        if data[offset:offset + 8] == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def scan_file(path, needles, label=None):
    """Findings (strings) for one output file, which they call `label` (default: its path)."""
    with open(path, "rb") as f:
        data = f.read()
    return scan_bytes(data, needles, label or path)


def scan_bytes(data, needles, label):
    findings = [f"{label} contains {n}" for n in find(data, needles)]
    try:
        if is_hdf5(data[:1 << 20]):
            findings += scan_hdf5(io.BytesIO(data), needles, label)
        elif data[:4] == b"PK\x03\x04" or zipfile.is_zipfile(io.BytesIO(data)):
            findings += scan_zip(data, needles, label)
        elif data[:8] == PARE_MAGIC:
            findings += scan_pare(data, needles, label)
    except Exception:  # an output h5py or zipfile cannot open is not a leak; Pare's own checks judge it
        pass
    return findings


def scan_zip(data, needles, label):
    findings = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if info.file_size > READ_CAP:
                continue
            member = z.read(info)
            findings += scan_bytes(member, needles, f"{label}:{info.filename}")
    return findings


def scan_pare(data, needles, label):
    findings = []
    offset, length = struct.unpack_from("<QQ", data, len(data) - 24)
    header = json.loads(data[offset:offset + length])
    for i, tensor in enumerate(header.get("tensors", [])):
        for s in tensor.get("streams", []):
            if s.get("compression") == "zlib" and s.get("decoded_length", 0) <= READ_CAP:
                raw = zlib.decompress(data[s["offset"]:s["offset"] + s["length"]])
                findings += [f"{label}: tensor {i} (decoded) contains {n}" for n in find(raw, needles)]
    return findings


def value_bytes(value):
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return b"".join(v if isinstance(v, bytes) else str(v).encode() for v in value.reshape(-1))
        return value.tobytes()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def scan_hdf5(fileobj, needles, label):
    findings, seen = [], set()
    with h5py.File(fileobj, "r") as f:
        def attrs(obj, where):
            for name in obj.attrs:
                try:
                    value = obj.attrs[name]
                except Exception:
                    continue
                for n in find(value_bytes(value), needles) + find(name.encode(), needles):
                    findings.append(f"{label}: attribute {where}@{name} contains {n}")

        def walk(group, where):
            attrs(group, where or "/")
            for name in group:
                path = f"{where}/{name}"
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    findings.append(f"{label}: {path} is an external link to {link.filename}")
                    continue
                if isinstance(link, h5py.SoftLink):
                    continue  # its target is walked under its own name
                obj = group[name]
                addr = h5py.h5o.get_info(obj.id).addr
                if addr in seen:
                    continue
                seen.add(addr)
                if isinstance(obj, h5py.Group):
                    walk(obj, path)
                else:
                    dataset(obj, path)

        def dataset(ds, path):
            plist = ds.id.get_create_plist()
            if plist.get_layout() == h5py.h5d.VIRTUAL:
                findings.append(f"{label}: {path} is a virtual dataset")
                return
            if plist.get_external_count() > 0:
                findings.append(f"{label}: {path} has external storage ({plist.get_external(0)[0]!r})")
                return
            attrs(ds, path)
            if ds.size * ds.dtype.itemsize <= READ_CAP:
                try:
                    value = ds[()]
                except Exception:
                    return
                for n in find(value_bytes(value), needles):
                    findings.append(f"{label}: dataset {path} contains {n}")
        walk(f["/"], "")
    return findings
