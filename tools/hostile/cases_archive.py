"""Class "archive": hostile `.keras` zip archives.

Headers that disagree with each other, member names that escape or collide, symlink members, nested
archives, unsupported methods and encryption, huge member counts (zip64), bombs within deflate's own
ratio (so a ratio check alone passes them), and configs of deeply nested brackets.
"""
import zlib

import base
import zip_raw
from common import run


def archive_runs(f, expect="error", timeout=None):
    return [run(["{pare}", "check", f], expect, timeout=timeout),
            run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"], timeout=timeout)]


def generate(g):
    real = base.keras_members(g.path("cnn.keras"))
    cfg, meta, weights = real["config.json"], real["metadata.json"], real["model.weights.h5"]
    M, D = zip_raw.Member, zip_raw.DEFLATED

    def standard(**over):
        """The three members, any replaced by keyword (config=, meta=, weights=: a Member or None)."""
        members = {"meta": M("metadata.json", meta, D), "config": M("config.json", cfg, D),
                   "weights": M("model.weights.h5", weights, D)}
        members.update(over)
        return [m for m in members.values() if m is not None]

    nested = zip_raw.build(standard())
    deep = b"[" * (100 << 20)  # 100 MiB of brackets: deflates ~1000:1, within the ratio check
    bomb_raw, bomb_crc = zip_raw.deflate_zeros_raw(6 << 30)
    weights_crc = zlib.crc32(weights) & 0xFFFFFFFF
    cases = {
        "control": (zip_raw.build(standard()), "ok"),
        "control-stored": (zip_raw.build([M("metadata.json", meta), M("config.json", cfg),
                                          M("model.weights.h5", weights)]), "ok"),
        "members-70000": (zip_raw.build(standard() + [M(f"x/{i}", b"") for i in range(70000)]), "error"),
        "symlink-weights": (zip_raw.build(standard(weights=M("model.weights.h5", b"/etc/passwd",
                                                              external_attr=(zip_raw.S_IFLNK | 0o777) << 16))),
                            "error"),
        "symlink-config": (zip_raw.build(standard(config=M("config.json", g.path("cnn_config.json").encode(),
                                                            external_attr=(zip_raw.S_IFLNK | 0o777) << 16))),
                           "error"),
        "nested-zip-as-weights": (zip_raw.build(standard(weights=M("model.weights.h5", nested))), "error"),
        "dotdot-name": (zip_raw.build(standard(weights=M("../model.weights.h5", weights, D))), "error"),
        "absolute-name": (zip_raw.build(standard(config=M("/config.json", cfg, D))), "error"),
        "duplicate-config": (zip_raw.build(standard() + [M("config.json", b'{"class_name": "Evil"}', D)]), "error"),
        "duplicate-weights": (zip_raw.build(standard() + [M("model.weights.h5", b"not hdf5")]), "error"),
        "uppercase-extra": (zip_raw.build(standard() + [M("CONFIG.JSON", cfg, D)]), "error"),
        "directory-entry": (zip_raw.build(standard() + [M("assets/", b"", external_attr=(0o40755 << 16) | 0x10)]),
                            "ok-or-error"),
        "local-name-differs": (zip_raw.build(standard(config=M("config.json", cfg, D, local_name="evil.json"))),
                               "error"),
        "local-size-differs": (zip_raw.build(standard(config=M("config.json", cfg, local_size=len(cfg) + 100))),
                               "error"),
        "method-bzip2": (zip_raw.build(standard(config=M("config.json", raw=cfg, method=12, crc=zlib.crc32(cfg),
                                                         size=len(cfg)))), "error"),
        "method-aes": (zip_raw.build(standard(config=M("config.json", raw=cfg, method=99, crc=zlib.crc32(cfg),
                                                       size=len(cfg)))), "error"),
        "encrypted-flag": (zip_raw.build(standard(config=M("config.json", cfg, D, flags=1))), "error"),
        "zip64-size-2^63": (zip_raw.build(standard(weights=M("model.weights.h5", weights, zip64_size=1 << 63))),
                            "error"),
        "prefix-1MiB-junk": (zip_raw.build(standard(), prefix=b"MZ" + bytes(1 << 20)), "ok-or-error"),
        "suffix-junk": (zip_raw.build(standard(), suffix=b"trailing junk"), "ok-or-error"),
        "cd-offset-outside": (zip_raw.build(standard(), cd_offset_delta=1 << 30), "error"),
        "empty-archive": (zip_raw.build([]), "error"),
        "config-only": (zip_raw.build(standard(meta=None, weights=None)), "error"),
        "weights-empty": (zip_raw.build(standard(weights=M("model.weights.h5", b""))), "error"),
        "weights-is-pare": (None, "error"),
        "config-100MiB-brackets": (zip_raw.build(standard(config=M("config.json", deep, D))), "error"),
        "config-deep-100k": (zip_raw.build(standard(config=M("config.json", b"[" * 100000 + b"]" * 100000, D))),
                             "error"),
        "metadata-100MiB-brackets": (zip_raw.build(standard(meta=M("metadata.json", deep, D))), "ok-or-error"),
        "weights-bomb-6GiB": (zip_raw.build(standard(weights=M("model.weights.h5", raw=bomb_raw, method=D,
                                                               crc=bomb_crc, size=6 << 30))), "error"),
        "weights-crc-lies": (zip_raw.build(standard(weights=M("model.weights.h5", raw=weights,
                                                              crc=weights_crc ^ 1, size=len(weights)))), "error"),
    }
    g.pack("cnn.h5", "cnn_for_zip.pare")
    with open(g.path("cnn_for_zip.pare"), "rb") as f:
        cases["weights-is-pare"] = (zip_raw.build(standard(weights=M("model.weights.h5", f.read(), D))), "error")
    for label, (data, expect) in cases.items():
        name = f"za_{label}.keras"
        with open(g.path(name), "wb") as f:
            f.write(data)
        runs = archive_runs(name, expect)
        if label == "weights-bomb-6GiB":  # its declared size is known before a byte is inflated
            # Under a 4 GiB budget the declared 6 GiB is refused at once. (Within the budget a 6 GiB
            # weights file is legitimate and is read, which takes its time.)
            runs = [run(["{pare}", "check", name, "--max-memory", "4G"], expect, max_seconds=10)]
        g.add(f"archive-{label}", "archive", f".keras archive: {label}", [name], runs)
    # The same archive named .h5: Pare reads by content, not by name.
    with open(g.path("za_control.h5"), "wb") as f:
        f.write(cases["control"][0])
    g.add("archive-named-h5", "archive", "a valid .keras archive named .h5", ["za_control.h5"],
          archive_runs("za_control.h5", "ok"))
