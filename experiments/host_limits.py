#!/usr/bin/env python3
"""The machine's own limits, measured in the same run as the snapshot benchmarks so their save bandwidth can be read
against them: memory copy bandwidth (one 256 MiB copy in RAM) and page-cache write bandwidth (`dd` of 256 MiB into a
new file in the directory the snapshots are written to, without and with the data synced), and the stream form's path
without MiniVmm (`dd` through a pipe into `cat > FILE`).

Usage: host_limits.py OUT_DIR [--dir DIR] [--mib 256] [--reps 3]   writes OUT_DIR/limits.csv (best of the reps)."""
import argparse
import csv
import os
import subprocess
import tempfile
import time


def memcpy_mib_s(mib):
    src = bytearray(os.urandom(1 << 20)) * mib  # non-zero, so no page is shared or skipped
    dst = bytearray(len(src))
    dst[:] = src  # touch every destination page first: the copy below measures the copy, not page faults
    t = time.perf_counter()
    dst[:] = src
    return mib / (time.perf_counter() - t)


def dd_mib_s(directory, mib, sync):
    fd, path = tempfile.mkstemp(dir=directory, prefix="limits-")
    os.close(fd)
    os.remove(path)  # a new file, as a snapshot is
    try:
        argv = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "status=none"] + (["conv=fdatasync"] if sync else [])
        t = time.perf_counter()
        subprocess.run(argv, check=True)
        return mib / (time.perf_counter() - t)
    finally:
        os.remove(path)


def pipe_mib_s(directory, mib):
    """The stream form's path without MiniVmm: `dd` into a pipe, `cat` from it into a new file (exec:cat > FILE)."""
    fd, path = tempfile.mkstemp(dir=directory, prefix="limits-")
    os.close(fd)
    os.remove(path)
    try:
        t = time.perf_counter()
        subprocess.run(f"dd if=/dev/zero bs=1M count={mib} status=none | cat > '{path}'", shell=True, check=True)
        return mib / (time.perf_counter() - t)
    finally:
        os.remove(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the snapshot benchmarks write their files")
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = [
        {"limit": "memcpy", "mib_s": max(memcpy_mib_s(args.mib) for _ in range(args.reps))},
        {"limit": "page-cache write (dd)", "mib_s": max(dd_mib_s(args.dir, args.mib, False) for _ in range(args.reps))},
        {"limit": "write + fdatasync (dd)", "mib_s": max(dd_mib_s(args.dir, args.mib, True) for _ in range(args.reps))},
        {"limit": "pipe to cat to file (dd | cat)", "mib_s": max(pipe_mib_s(args.dir, args.mib) for _ in range(args.reps))},
    ]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "limits.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["limit", "mib_s", "mib"])
        w.writeheader()
        for r in rows:
            w.writerow({"limit": r["limit"], "mib_s": round(r["mib_s"], 1), "mib": args.mib})
    for r in rows:
        print(f"{r['limit']:>24}: {r['mib_s']:8.1f} MiB/s")


if __name__ == "__main__":
    main()
