"""Class 1: datasets whose bytes live outside the given file.

Each kind of outside reference (external raw storage, external link, virtual dataset, soft link) is
put where Pare reads weights: a legacy model's kernel, a tf.keras 2 `kernel:0`, a plain tensor
file's tensor, a Keras 3 `.weights.h5` (with --config), the weights inside a `.keras` archive, and a
full-model `.h5` given as --config. Pare must refuse every one naming the object, except a soft link
that resolves inside the file, which must simply work.
"""
import h5py
import numpy as np

import base
from common import run

# where: (base file, dataset path, secret.h5 dataset of the same shape)
PLACES = {
    "legacy": ("cnn.h5", "model_weights/conv2d/mnist_cnn/conv2d/kernel", "cnn_kernel"),
    "tfkeras2": ("cnn_tf.h5", "model_weights/conv2d/conv2d/kernel:0", "cnn_kernel"),
    "plain": ("sd.h5", "features.0.weight", "sd_weight"),
    "weights": ("cnn.weights.h5", "layers/conv2d/vars/0", "cnn_kernel"),
    "keras": ("cnn.keras", "layers/conv2d/vars/0", "cnn_kernel"),
    "config": ("cnn.h5", "model_weights/conv2d/mnist_cnn/conv2d/kernel", "cnn_kernel"),
}


def runs_for(place, f, expect="error"):
    """(runs, files they need): the commands that read the weights of a file placed as `place`.

    check must refuse what the others would copy; convert and pack copy tensor bytes into an output
    (where a leak shows); run and sparsify read values through other paths.
    """
    if place in ("legacy", "tfkeras2"):
        return [run(["{pare}", "check", f], expect), run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"]),
                run(["{pare}", "pack", f, "o.pare"], expect, outputs=["o.pare"]),
                run(["{pare}", "run", f, "--input", "x16.npy", "--batch", "8"], expect)], ["x16.npy"]
    if place == "keras":
        return [run(["{pare}", "check", f], expect), run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"]),
                run(["{pare}", "pack", f, "o.pare"], expect, outputs=["o.pare"])], []
    if place == "plain":
        return [run(["{pare}", "check", f], expect), run(["{pare}", "convert", f, "o.h5"], expect, outputs=["o.h5"]),
                run(["{pare}", "pack", f, "o.pare"], expect, outputs=["o.pare"]),
                run(["{pare}", "sparsify", f, "o.h5", "--sparsity", "0.5"], expect, outputs=["o.h5"])], []
    if place == "weights":  # without --config it is a plain tensor file; with it, a Keras 3 model
        cfg = ["--config", "cnn_config.json"]
        return [run(["{pare}", "inspect", f], expect), run(["{pare}", "check", f, *cfg], expect),
                run(["{pare}", "convert", f, "o.keras", *cfg], expect, outputs=["o.keras"])], ["cnn_config.json"]
    # config: the hostile full-model file only gives the architecture of a clean weights file
    cfg = ["--config", f]
    return [run(["{pare}", "inspect", "cnn.weights.h5", *cfg], expect, names=[f]),
            run(["{pare}", "convert", "cnn.weights.h5", "o.keras", *cfg], expect, names=[f],
                outputs=["o.keras"])], ["cnn.weights.h5"]


def replace(path, make):
    """A mutation replacing the dataset at `path` with make(file, its group, leaf name, shape, dtype)."""
    def mutate(f):
        parent, _, leaf = path.rpartition("/")
        grp = f[parent] if parent else f["/"]
        old = grp[leaf]
        shape, dtype = old.shape, old.dtype
        data = old[()]
        # Keep the real values inside the file (for links that point inside it).
        stash = f.require_group("stash")
        stash.create_dataset(leaf.replace(":", "_"), data=data)
        del grp[leaf]
        make(f, grp, leaf, shape, dtype)
    return mutate


KINDS = ["extstore-abs", "extstore-rel", "extstore-self", "extstore-passwd", "extstore-fifo",
         "elink-abs", "elink-rel", "elink-self", "elink-passwd", "elink-fifo",
         "vds-abs", "vds-rel", "vds-self", "soft-inside", "soft-dangling", "soft-into-elink"]
# The full matrix is on the legacy and plain places; the others carry these kinds.
SOME_KINDS = ["extstore-abs", "extstore-passwd", "elink-abs", "elink-fifo", "vds-abs", "soft-inside", "soft-dangling"]
FEW_KINDS = ["extstore-abs", "elink-abs", "vds-abs", "soft-inside"]


def external(target):
    def make(f, grp, leaf, shape, dtype):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        grp.create_dataset(leaf, shape, dtype, external=[(target, 0, n)])
    return make


def elink(target, obj):
    return lambda f, grp, leaf, shape, dtype: grp.__setitem__(leaf, h5py.ExternalLink(target, obj))


def vds(target, obj):
    def make(f, grp, leaf, shape, dtype):
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(target, obj, shape=shape, dtype=dtype)
        grp.create_virtual_dataset(leaf, layout, fillvalue=0)
    return make


def soft(target):
    return lambda f, grp, leaf, shape, dtype: grp.__setitem__(leaf, h5py.SoftLink(target))


def soft_into_elink(secret_h5, key):
    def make(f, grp, leaf, shape, dtype):
        f["outside"] = h5py.ExternalLink(secret_h5, "/")
        grp[leaf] = h5py.SoftLink("/outside/" + key)
    return make


def kind_parts(g, kind, name, key, leaf):
    """(make, setup steps, extra files, expectation, timeout) of one kind for the file `name`."""
    secret_h5, stashed = g.path("secret.h5"), "/stash/" + leaf.replace(":", "_")
    table = {
        "extstore-abs": (external(g.path("secret.bin")), [], [], "error", None),
        "extstore-rel": (external("secret.bin"), [], ["secret.bin"], "error", None),
        "extstore-self": (external(name), [], [], "error", None),  # "inside" by name: still refused
        "extstore-passwd": (external("/etc/passwd"), [], [], "error", None),
        "extstore-fifo": (external("pipe"), [{"fifo": "pipe"}], [], "error", 5),
        "elink-abs": (elink(secret_h5, "/" + key), [], [], "error", None),
        "elink-rel": (elink("secret.h5", "/" + key), [], ["secret.h5"], "error", None),
        "elink-self": (elink(name, stashed), [], [], "error", None),
        "elink-passwd": (elink("/etc/passwd", "/x"), [], [], "error", None),
        "elink-fifo": (elink("pipe.h5", "/x"), [{"fifo": "pipe.h5"}], [], "error", 5),
        "vds-abs": (vds(secret_h5, "/" + key), [], [], "error", None),
        "vds-rel": (vds("secret.h5", "/" + key), [], ["secret.h5"], "error", None),
        "vds-self": (vds(".", stashed), [], [], "error", None),
        "soft-inside": (soft(stashed), [], [], "ok", None),
        "soft-dangling": (soft("/no/such/object"), [], [], "error", None),
        "soft-into-elink": (soft_into_elink(secret_h5, key), [], [], "error", None),
    }
    return table[kind]


def generate(g):
    for place, (src, dspath, key) in PLACES.items():
        ext = ".keras" if place == "keras" else ".h5"
        for kind in KINDS:
            if (place in ("tfkeras2", "config") and kind not in FEW_KINDS or
                    place in ("weights", "keras") and kind not in SOME_KINDS):
                continue
            name = f"c1_{place}_{kind}{ext}"
            make, setup, extra, expect, timeout = kind_parts(g, kind, name, key, dspath.rpartition("/")[2])
            mutate = replace(dspath, make)
            if place == "keras":
                base.mutated_keras(g, name, mutate)
            else:
                base.mutated_copy(g, src, name, mutate)
            runs, needs = runs_for(place, name, expect)
            if timeout:  # a FIFO blocks forever where it blocks at all: two commands show it
                runs = runs[:2]
            for r in runs:
                if expect == "ok" and place in ("plain", "weights", "keras"):
                    r["expect"] = "ok-or-error"  # the extra /stash group may be refused in these layouts
                if timeout:
                    r["timeout"] = timeout
            g.add(f"c1-{place}-{kind}", 1, f"{kind} in place of {dspath} ({place})", [name, *needs, *extra], runs,
                  setup=setup)
    generate_specials(g)


def generate_specials(g):
    """Outside references that are not in place of a weight: extra datasets, whole groups, /proc."""
    secret_h5 = g.path("secret.h5")

    def add_external(target, n=64, dtype="u1"):
        return lambda f: f["meta"].create_dataset("leak", (n,), dtype, external=[(target, 0, n)])

    specials = [
        ("plain-extra-passwd", "sd.h5", add_external("/etc/passwd"), "extra dataset stored in /etc/passwd", []),
        ("plain-extra-environ", "sd.h5", add_external("/proc/self/environ", 4096),
         "extra dataset stored in /proc/self/environ (the canary variable)", []),
        ("plain-extra-maps", "sd.h5", add_external("/proc/self/maps", 4096),
         "extra dataset stored in /proc/self/maps (address layout)", []),
        ("plain-extra-devzero", "sd.h5", add_external("/dev/zero", 1 << 20), "extra dataset stored in /dev/zero", []),
        ("plain-extra-secret-txt", "sd.h5", add_external(g.path("secret.txt"), 4096),
         "extra uint8 dataset stored in secret.txt", []),
        ("plain-group-elink", "sd.h5", lambda f: f.__setitem__("outside", h5py.ExternalLink(secret_h5, "/grp")),
         "a whole group as an external link to secret.h5", []),
        ("plain-root-elink-dir", "sd.h5", lambda f: f.__setitem__("outside", h5py.ExternalLink("/", "/")),
         "an external link to a directory", []),
        ("legacy-group-elink", "cnn.h5", lambda f: swap_group(f, "model_weights/conv2d/mnist_cnn", secret_h5, "/grp"),
         "a layer's weight group as an external link to secret.h5", ["x16.npy"]),
        ("legacy-optimizer-extstore", "cnn.h5",
         lambda f: f.create_group("optimizer_weights").create_dataset(
             "iteration", (16,), "<f4", external=[(g.path("secret.bin"), 0, 64)]),
         "optimizer state stored in secret.bin", ["x16.npy"]),
        ("legacy-extra-weight-extstore", "cnn.h5",
         lambda f: f["model_weights/conv2d/mnist_cnn/conv2d"].create_dataset(
             "stray", (16,), "<f4", external=[(g.path("secret.bin"), 0, 64)]),
         "an unlisted dataset beside a kernel stored in secret.bin", ["x16.npy"]),
        ("weights-extra-vds", "cnn.weights.h5", lambda f: add_vds(f, "layers/conv2d/vars/9", secret_h5),
         "an extra vars/9 virtual dataset sourcing secret.h5", ["cnn_config.json"]),
    ]
    for cid, src, mutate, attack, needs in specials:
        name = f"c1_{cid}.h5"
        base.mutated_copy(g, src, name, mutate)
        place = "plain" if src == "sd.h5" else "weights" if src.endswith(".weights.h5") else "legacy"
        runs, _ = runs_for(place, name)
        g.add(f"c1-{cid}", 1, attack, [name, *needs], runs)


def swap_group(f, path, target, obj):
    del f[path]
    f[path] = h5py.ExternalLink(target, obj)


def add_vds(f, path, secret_h5):
    layout = h5py.VirtualLayout(shape=(16,), dtype="<f4")
    layout[...] = h5py.VirtualSource(secret_h5, "/vec16", shape=(16,))
    f.create_virtual_dataset(path, layout, fillvalue=0)
