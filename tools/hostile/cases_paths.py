"""Class 3: outputs that are inputs under another name, and outputs that are not regular files.

Every command that writes is pointed at each of its inputs (the model, --config, --input, --labels,
--calibration) spelled differently (./m.h5, dir//m.h5, absolute, sub/../m.h5, a symlink, a hard
link), and at a FIFO, a character device (a private mknod of /dev/null's numbers), a symlink to
/dev/null, a directory. Expected: an error, every input byte-identical, every special file still
special.
"""
import shutil

from common import run

DEVNULL = {"chardev": "nulldev", "major": 1, "minor": 3}


def same_file_spellings(out):
    """(label, argv spelling of `out`, setup) for the ways to name an existing file."""
    return [("plain", out, []), ("dot", "./" + out, []), ("abs", "{dir}/" + out, []),
            ("double-slash", "{dir}//" + out, []), ("updir", "sub/../" + out, [{"mkdir": "sub"}]),
            ("symlink", "link_" + out, [{"symlink": "link_" + out, "to": out}]),
            ("hardlink", "hard_" + out, [{"hardlink": "hard_" + out, "to": out}]),
            ("dir-symlink", "here/" + out, [{"symlink": "here", "to": "."}]),
            ("proc-cwd", "/proc/self/cwd/" + out, [])]


def generate(g):
    shutil.copyfile(g.path("tiny.h5"), g.path("m.h5"))
    shutil.copyfile(g.path("tiny.h5"), g.path("m2.h5"))
    shutil.copyfile(g.path("tx.npy"), g.path("x.npy"))
    shutil.copyfile(g.path("ty.npy"), g.path("y.npy"))
    shutil.copyfile(g.path("tx.npy"), g.path("cal.npy"))
    shutil.copyfile(g.path("cnn.keras"), g.path("m.keras"))
    shutil.copyfile(g.path("cnn.keras"), g.path("cfg.keras"))
    shutil.copyfile(g.path("cnn.weights.h5"), g.path("w.weights.h5"))
    shutil.copyfile(g.path("cnn_config.json"), g.path("cfg.json"))
    g.pack("m.h5", "m.pare")
    files = ["m.h5", "m2.h5", "x.npy", "y.npy", "cal.npy", "m.pare", "m.keras", "cfg.keras", "w.weights.h5",
             "cfg.json", "x16.npy"]

    def case(cid, attack, argv, setup=(), names=None, **kw):
        g.add(f"c3-{cid}", 3, attack, files, [run(argv, "error", names=names or ["m.h5"], **kw)], setup=setup)

    writers = {
        "convert": lambda o: ["{pare}", "convert", "m.h5", o],
        "prune": lambda o: ["{pare}", "prune", "m.h5", o, "--ratio", "0.5", "--input", "x.npy"],
        "mask": lambda o: ["{pare}", "mask", "m.h5", o, "--ratio", "0.5"],
        "sparsify": lambda o: ["{pare}", "sparsify", "m.h5", o, "--sparsity", "0.5"],
        "pack": lambda o: ["{pare}", "pack", "m.h5", o],
    }
    for cmd, argv in writers.items():
        for label, spelling, setup in same_file_spellings("m.h5"):
            if cmd in ("mask", "sparsify", "pack") and label not in ("dot", "double-slash", "hardlink"):
                continue  # convert and prune carry every spelling
            case(f"{cmd}-onto-model-{label}", f"{cmd} writing its own input as {spelling}", argv(spelling), setup)
    case("unpack-onto-pare", "unpack writing its input ./m.pare", ["{pare}", "unpack", "m.pare", "./m.pare"],
         names=["m.pare"])
    case("convert-keras-onto-itself", "convert a .keras onto itself as dir//m.keras",
         ["{pare}", "convert", "m.keras", "{dir}//m.keras"], names=["m.keras"])
    case("convert-input-is-symlink", "convert link -> m.h5 onto m.h5", ["{pare}", "convert", "link_m.h5", "m.h5"],
         [{"symlink": "link_m.h5", "to": "m.h5"}], names=["m.h5"])
    run_cmd = ["{pare}", "run", "m.h5", "--input", "x.npy"]
    for label, spelling, setup in same_file_spellings("x.npy"):
        case(f"run-output-onto-input-{label}", f"run --output {spelling} (the --input)",
             run_cmd + ["--output", spelling], setup, names=["x.npy"])
    case("run-output-onto-model", "run --output m.h5", run_cmd + ["--output", "m.h5"])
    case("run-output-onto-model-abs", "run --output {dir}/m.h5", run_cmd + ["--output", "{dir}/m.h5"])
    rep = ["{pare}", "report", "m.h5", "m2.h5", "--input", "x.npy", "--labels", "y.npy", "--markdown"]
    for target in ("m.h5", "m2.h5", "x.npy", "y.npy", "./y.npy"):
        case(f"report-markdown-onto-{target.strip('./')}{'-dot' if target.startswith('./') else ''}",
             f"report --markdown {target}", rep + [target], names=[target.lstrip("./")])
    sens = ["{pare}", "sensitivity", "m.h5", "--layer", "conv_a", "--input", "x.npy", "--labels", "y.npy",
            "--steps", "0,1"]
    for opt, target in (("--csv", "m.h5"), ("--svg", "y.npy"), ("--json", "x.npy"), ("--csv", "./m.h5"),
                        ("--svg", "{dir}//x.npy")):
        label = f"sensitivity{opt[1:]}-onto-{target.replace('{dir}//', 'abs-').replace('./', 'dot-')}"
        case(label.replace("--", "-"), f"sensitivity {opt} {target}", sens + [opt, target],
             names=[target.split("/")[-1]])
    cfg = ["--config", "cfg.json"]
    case("sensitivity-json-onto-config", "sensitivity --json onto the --config file",
         ["{pare}", "sensitivity", "w.weights.h5", *cfg, "--layer", "conv2d", "--input", "x16.npy", "--steps",
          "0,1", "--json", "cfg.json"], names=["cfg.json"])
    case("convert-onto-config-json", "convert writing onto its --config config.json",
         ["{pare}", "convert", "w.weights.h5", "cfg.json", *cfg], names=["cfg.json"])
    case("convert-onto-config-keras", "convert writing onto its --config .keras as ./cfg.keras",
         ["{pare}", "convert", "w.weights.h5", "./cfg.keras", "--config", "cfg.keras"], names=["cfg.keras"])
    case("prune-onto-calibration", "prune writing onto its --calibration input",
         ["{pare}", "prune", "m.h5", "./cal.npy", "--ratio", "0.5", "--criterion", "mean-activation",
          "--calibration", "cal.npy"], names=["cal.npy"])
    case("prune-onto-verification-input", "prune writing onto its --input",
         ["{pare}", "prune", "m.h5", "x.npy", "--ratio", "0.5", "--input", "x.npy"], names=["x.npy"])
    case("mask-onto-calibration-hardlink", "mask writing onto a hard link of its --calibration input",
         ["{pare}", "mask", "m.h5", "hard.npy", "--ratio", "0.5", "--criterion", "apoz", "--calibration", "cal.npy"],
         [{"hardlink": "hard.npy", "to": "cal.npy"}], names=["hard.npy", "cal.npy"])
    generate_special_outputs(g, files)


def generate_special_outputs(g, files):
    specials = [
        ("fifo", "p.h5", [{"fifo": "p.h5"}]),
        ("chardev", "nulldev", [DEVNULL]),
        ("symlink-to-devnull", "devnull.h5", [{"symlink": "devnull.h5", "to": "/dev/null"}]),
        ("symlink-to-chardev", "dev.h5", [DEVNULL, {"symlink": "dev.h5", "to": "nulldev"}]),
        ("directory", "sub", [{"mkdir": "sub"}]),
    ]
    writers = {
        "convert": lambda o: ["{pare}", "convert", "m.h5", o],
        "pack": lambda o: ["{pare}", "pack", "m.h5", o],
        "run-output": lambda o: ["{pare}", "run", "m.h5", "--input", "x.npy", "--output", o],
        "report-markdown": lambda o: ["{pare}", "report", "m.h5", "m2.h5", "--markdown", o],
        "sensitivity-csv": lambda o: ["{pare}", "sensitivity", "m.h5", "--layer", "conv_a", "--input", "x.npy",
                                      "--steps", "0,1", "--csv", o],
    }
    for label, out, setup in specials:
        for cmd, argv in writers.items():
            if cmd not in ("convert", "run-output") and label in ("symlink-to-chardev", "directory"):
                continue
            g.add(f"c3-{cmd}-to-{label}", 3, f"{cmd} with its output a {label}", files,
                  [run(argv(out), "error", names=[out], timeout=5)], setup=setup)
    long_ok, too_long = "o" * 247 + ".h5", "o" * 300 + ".h5"  # NAME_MAX is 255: a temporary beside it is not
    g.add("c3-convert-to-name-250", 3, "a legal 250-byte output name (its temporary's name is longer)", files,
          [run(["{pare}", "convert", "m.h5", long_ok], "ok", outputs=[long_ok])])
    g.add("c3-convert-to-name-300", 3, "an output name over NAME_MAX", files,
          [run(["{pare}", "convert", "m.h5", too_long], "error", names=["m.h5", "ooooo"])])
    g.add("c3-convert-to-name-newline", 3, "an output name with a newline", files,
          [run(["{pare}", "convert", "m.h5", "o\nx.h5"], "ok", outputs=["o\nx.h5"]),
           run(["{pare}", "convert", "m.h5", "nodir\n/o.h5"], "error", names=["nodir"])])
    g.add("c3-convert-into-missing-dir", 3, "output in a directory that does not exist", files,
          [run(["{pare}", "convert", "m.h5", "nodir/o.h5"], "error", names=["nodir/o.h5"])])
    g.add("c3-convert-to-dangling-symlink", 3, "output a dangling symlink (say what happens)", files,
          [run(["{pare}", "convert", "m.h5", "dangling.h5"], "ok-or-error", names=["dangling.h5"],
               outputs=["made.h5"], may_change=["dangling.h5"])],
          setup=[{"symlink": "dangling.h5", "to": "made.h5"}])
    g.add("c3-convert-to-symlink-to-other", 3, "output a symlink to an unrelated regular file", files,
          [run(["{pare}", "convert", "m.h5", "other_link.h5"], "ok-or-error", names=["other_link.h5"],
               may_change=["other_link.h5", "m2.h5"])],
          setup=[{"symlink": "other_link.h5", "to": "m2.h5"}])
    g.add("c3-sensitivity-two-outputs-same-file", 3, "sensitivity --csv and --json to the same path", files,
          [run(["{pare}", "sensitivity", "m.h5", "--layer", "conv_a", "--input", "x.npy", "--steps", "0,1",
                "--csv", "s.out", "--json", "s.out"], "ok-or-error", names=["s.out"], outputs=["s.out"])])
    g.add("c3-verify-same-model-twice", 3, "the same model as both sides (read-only: must work)", files,
          [run(["{pare}", "verify", "m.h5", "./m.h5", "--input", "x.npy"], "ok"),
           run(["{pare}", "report", "m.h5", "{dir}//m.h5", "--markdown", "r.md"], "ok", outputs=["r.md"])])
