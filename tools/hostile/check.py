#!/usr/bin/env python3
"""Runs every case of a hostile-file manifest (make_hostile.py) against a Pare binary.

    python check.py OUTDIR PARE_BIN [--only REGEX] [--slow] [--keep DIR] [--json FILE]

Each run gets a fresh scratch directory holding copies of its case's files (plus the FIFOs, device
nodes and links its setup asks for) as the working directory, 8 GiB of address space, a 2 GiB file
size limit and a time limit. Asserted for every run: no signal, no timeout, no process left behind,
the expected exit status and stderr, no file left but the expected outputs (no `.pare-tmp-`
temporaries), every pre-existing path unchanged (content, inode, and special files still special),
and no SECRET marker, environment canary or /etc/passwd line in stdout, stderr or any output.
Prints one line per failed run, then `hostile: N passed, M failed`; exits 1 if any failed.
"""
import argparse
import errno
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import leakscan  # noqa: E402 (after the path set-up)

ADDRESS_SPACE = 8 << 30
FILE_SIZE = 2 << 30  # a run that would fill the disk with zeros stops at this (Pare must say so)
DEFAULT_TIMEOUT = 60
OUTPUT_CAP = 64 << 20  # stdout/stderr bytes searched


def limits():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(path):
    """What a path is, without following it: content and inode for files, target for links."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        return ("file", sha256(path), st.st_ino)
    if stat.S_ISLNK(st.st_mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISFIFO(st.st_mode):
        return ("fifo",)
    if stat.S_ISCHR(st.st_mode):
        return ("chardev", st.st_rdev)
    if stat.S_ISDIR(st.st_mode):
        return ("dir",)
    return ("other", stat.S_IFMT(st.st_mode))


def snapshot(root):
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            entries[os.path.relpath(path, root)] = describe(path)
    return entries


def session_members(sid):
    """Live processes of session `sid` (the run's own session: pare and whatever it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Setup(Exception):
    """A setup step this machine cannot perform (mknod without privilege): the run is skipped."""


def prepare(scratch, outdir, case):
    for name in case["files"]:
        shutil.copyfile(os.path.join(outdir, name), os.path.join(scratch, name))
    for step in case["setup"]:
        if "mkdir" in step:
            os.mkdir(os.path.join(scratch, step["mkdir"]))
        elif "fifo" in step:
            os.mkfifo(os.path.join(scratch, step["fifo"]))
        elif "chardev" in step:
            try:
                os.mknod(os.path.join(scratch, step["chardev"]), 0o600 | stat.S_IFCHR,
                         os.makedev(step["major"], step["minor"]))
            except PermissionError as e:
                raise Setup(f"mknod: {e}")
        elif "symlink" in step:
            os.symlink(step["to"], os.path.join(scratch, step["symlink"]))
        elif "hardlink" in step:
            os.link(os.path.join(scratch, step["to"]), os.path.join(scratch, step["hardlink"]))
        else:
            raise ValueError(f"unknown setup step {step}")


def spawn(argv, scratch, out, err, env):
    """Starts a run; waits out a rebuild of the binary (missing, or "text file busy") for up to 5 minutes."""
    for _ in range(150):
        try:
            return subprocess.Popen(argv, cwd=scratch, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    preexec_fn=limits, start_new_session=True)
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or os.path.exists(argv[0]) and e.errno == errno.ENOENT:
                raise
            time.sleep(2)
    raise SystemExit(f"check: {argv[0]} stayed unavailable for 5 minutes")


def execute(argv, scratch, logs, timeout, env):
    """Runs argv; returns (returncode or None on timeout, seconds, stdout, stderr, process problems)."""
    problems = []
    out_path, err_path = os.path.join(logs, "stdout"), os.path.join(logs, "stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = spawn(argv, scratch, out, err, env)
        start = time.monotonic()
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            # Kill pare alone first: a child that does not die with its parent is a finding of its own.
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            time.sleep(0.5)
            survivors = session_members(p.pid)
            if survivors:
                problems.append(f"{len(survivors)} child process(es) outlived pare when it was killed")
                kill_all(survivors)
        elapsed = time.monotonic() - start
    left = session_members(p.pid)
    if left:
        problems.append(f"left {len(left)} process(es) running after exiting")
        kill_all(left)
    with open(out_path, "rb") as f:
        stdout = f.read(OUTPUT_CAP)
    with open(err_path, "rb") as f:
        stderr = f.read(OUTPUT_CAP)
    return rc, elapsed, stdout, stderr, problems


def judge(r, rc, stdout, stderr, before, after, scratch, needles):
    """The list of problems with one finished run."""
    problems = []
    expect = r["expect"]
    text = stderr.decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "unnamed"
        problems.append(f"killed by signal {-rc} ({name})")
    elif rc is not None:
        failed = rc != 0
        allowed = {"error": (1, 2), "ok": (0,), "ok-or-error": (0, 1, 2), "usage": (2,), "refused": (1, 2)}[expect]
        if rc not in allowed:
            problems.append(f"exit {rc}, expected {expect}")
        elif failed and (expect == "error" or expect == "ok-or-error" and rc == 1):
            # (an ok-or-error run's exit 2 is a usage error: the argument parser's format, several lines)
            if len(lines) != 1:
                problems.append(f"{len(lines)} stderr lines, expected 1")
            if r.get("names") and not any(n in first for n in r["names"]):
                problems.append(f"stderr does not name {' or '.join(r['names'])}")
        if failed and r.get("has") and r["has"] not in first:
            problems.append(f"stderr's first line lacks {r['has']!r}")
        for bad in r.get("lacks", []):
            if bad in text:
                problems.append(f"stderr says {bad!r}")
        keep = r.get("keeps_or_mentions")
        if not failed and keep:
            said = stdout.decode("utf-8", "replace") + text
            output = os.path.join(scratch, keep["output"])
            if keep["name"] not in said and not (os.path.isfile(output) and holds_name(output, keep["name"])):
                problems.append(f"{keep['name']!r} neither carried into {keep['output']} nor named in a note")
    wrote = rc == 0 and expect in ("ok", "ok-or-error")
    outputs = set(r.get("outputs", [])) if wrote else set()
    may_change = set(r.get("may_change", []))
    new = sorted(set(after) - set(before))
    temporaries = [n for n in new if ".pare-tmp-" in n]
    if temporaries:
        problems.append(f"temporary file left: {temporaries[0]}")
    stray = [n for n in new if n not in outputs and n not in temporaries]
    if stray:
        problems.append(f"unexpected new file(s): {', '.join(stray[:3])}")
    for path, was in before.items():
        now = after.get(path)
        if now != was and path not in may_change:
            what = "removed" if now is None else f"{was[0]} became {now[0]}" if now[0] != was[0] else "modified"
            problems.append(f"input {path} {what}")
    if expect == "ok" and rc == 0:
        problems += [f"output {o} missing" for o in sorted(set(r.get("outputs", [])) - set(after))]
    for label, data in (("stdout", stdout), ("stderr", stderr)):
        problems += [f"{label} contains {n}" for n in leakscan.find(data, needles)]
    for path in new + sorted(may_change & set(after)):
        full = os.path.join(scratch, path)
        if os.path.isfile(full) and not os.path.islink(full):
            problems += leakscan.scan_file(full, needles, path)
    return problems


def holds_name(path, name):
    """Whether an output (.h5 tree, .pare header, or any other bytes) holds an object called `name`."""
    with open(path, "rb") as f:
        data = f.read()
    if leakscan.is_hdf5(data[:1 << 20]):
        import h5py  # only here: the rest of the runner needs no h5py
        found = []
        with h5py.File(path, "r") as f:
            f.visit(lambda n: found.append(n) if name in n.split("/") else None)
        return bool(found)
    return name.encode() in data


def passwd_line():
    try:
        with open("/etc/passwd", "rb") as f:
            return f.readline().strip()
    except OSError:
        return b""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("pare")
    parser.add_argument("--only", help="run only cases whose id matches this regular expression")
    parser.add_argument("--slow", action="store_true", help="also run the cases marked slow")
    parser.add_argument("--keep", help="copy the scratch directory of each failed run here")
    parser.add_argument("--json", help="write every run's result here")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run (default 60)")
    args = parser.parse_args()
    outdir, pare = os.path.abspath(args.outdir), os.path.abspath(args.pare)
    manifest = json.load(open(os.path.join(outdir, "manifest.json")))
    s = manifest["secrets"]
    needles = {"the SECRET marker": bytes.fromhex(s["marker_hex"]), "the SECRET text": s["text_marker"].encode(),
               "the environment canary": s["canary"].encode(), "/etc/passwd's first line": passwd_line()}
    env = dict(os.environ, PARE_HOSTILE_CANARY=s["canary"], SWIFT_BACKTRACE="enable=no")
    work = tempfile.mkdtemp(prefix="pare-hostile-")
    results, passed, failed, skipped = [], 0, 0, 0
    per_class = {}
    start = time.monotonic()
    try:
        for case in manifest["cases"]:
            if args.only and not re.search(args.only, case["id"]):
                continue
            if case.get("slow") and not args.slow:
                continue
            for i, r in enumerate(case["runs"]):
                scratch, logs = os.path.join(work, "scratch"), os.path.join(work, "logs")
                for d in (scratch, logs):
                    shutil.rmtree(d, ignore_errors=True)
                    os.mkdir(d)
                argv = [a.replace("{pare}", pare).replace("{dir}", scratch) for a in r["argv"]]
                try:
                    prepare(scratch, outdir, case)
                except Setup as e:
                    skipped += 1
                    print(f"SKIP {case['id']} #{i}: {e}")
                    continue
                before = snapshot(scratch)
                rc, elapsed, stdout, stderr, problems = execute(argv, scratch, logs, r.get("timeout", args.timeout),
                                                                env)
                if rc is None:
                    problems.insert(0, f"timeout: killed after {elapsed:.0f} s")
                elif r.get("max_seconds") and elapsed > r["max_seconds"]:
                    problems.append(f"took {elapsed:.1f} s, over {r['max_seconds']} s")
                after = snapshot(scratch)
                problems += judge(r, rc, stdout, stderr, before, after, scratch, needles)
                first = next((line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()), "")
                command = " ".join(a.replace(scratch, "{dir}") for a in argv[1:])
                counts = per_class.setdefault(case["class"], [0, 0])
                if problems:
                    failed += 1
                    counts[1] += 1
                    print(f"FAIL {case['id']} #{i} [{command[:100]}]: {'; '.join(problems)} | stderr: {first[:200]}")
                    if args.keep:
                        shutil.copytree(scratch, os.path.join(args.keep, f"{case['id']}-{i}"), symlinks=True,
                                        ignore_dangling_symlinks=True, copy_function=copy_regular)
                else:
                    passed += 1
                    counts[0] += 1
                results.append({"case": case["id"], "class": case["class"], "run": i, "argv": command, "exit": rc,
                                "seconds": round(elapsed, 2), "problems": problems, "stderr": first})
                sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    for cls in sorted(per_class, key=lambda c: (not c.isdigit(), c.zfill(3))):
        print(f"class {cls}: {per_class[cls][0]} passed, {per_class[cls][1]} failed")
    print(f"({time.monotonic() - start:.0f} s{f', {skipped} skipped' if skipped else ''})")
    print(f"hostile: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def copy_regular(src, dst):
    """copytree's copy for --keep: FIFOs and devices are not opened (that could block), only noted."""
    if stat.S_ISREG(os.lstat(src).st_mode):
        shutil.copy2(src, dst)
    else:
        open(dst + ".special", "w").close()


if __name__ == "__main__":
    main()
