#!/usr/bin/env python3
"""What starting writeback during the write phase (sync_file_range(SYNC_FILE_RANGE_WRITE)) would buy a file-form
snapshot: 256 MiB written in 1 MiB pwrites into a new file, then fsync, three ways, interleaved:
  none    -- write everything, then fsync (what MiniVmm does);
  inline  -- the writer itself starts writeback of each 8 MiB it finished;
  thread  -- a second thread starts writeback of the whole file each time another 8 MiB is written.
For MiniVmm the write phase is the protected window (what the guest feels) and write + fsync the time to durable.

Usage: writeback_overlap.py DIR [--reps 3]   prints one line per trial and the medians."""
import argparse
import ctypes
import os
import statistics
import threading
import time

SYNC_FILE_RANGE_WRITE = 2
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]


def trial(path, mode, mib=256, every_mib=8):
    data = os.urandom(1 << 20)
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    kick, stop = threading.Event(), False

    def kicker():
        while True:
            kick.wait()
            kick.clear()
            if stop:
                return
            libc.sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)

    helper = threading.Thread(target=kicker)
    helper.start()
    t0 = time.perf_counter()
    last = 0
    for i in range(mib):
        os.pwrite(fd, data, i << 20)
        end = (i + 1) << 20
        if mode != "none" and end - last >= every_mib << 20:
            if mode == "inline":
                libc.sync_file_range(fd, last, end - last, SYNC_FILE_RANGE_WRITE)
            else:
                kick.set()
            last = end
    t1 = time.perf_counter()
    stop = True
    kick.set()
    helper.join()
    os.fsync(fd)
    t2 = time.perf_counter()
    os.close(fd)
    os.remove(path)
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    path = os.path.join(args.dir, "writeback-overlap.bin")
    seen = {m: [] for m in ("none", "inline", "thread")}
    for _ in range(args.reps):
        for mode in seen:
            write, sync = trial(path, mode)
            seen[mode].append((write, sync))
            print(f"{mode:6} write {write:6.0f} ms  fsync {sync:6.0f} ms  to durable {write + sync:6.0f} ms", flush=True)
            time.sleep(1)
    for mode, runs in seen.items():
        w = statistics.median(r[0] for r in runs)
        d = statistics.median(r[0] + r[1] for r in runs)
        print(f"median {mode:6}: write phase {w:.0f} ms, to durable {d:.0f} ms")


if __name__ == "__main__":
    main()
