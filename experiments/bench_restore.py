#!/usr/bin/env python3
"""Restore benchmark: eager, mmap, lazy and lazy + working set, vs QEMU loading its background snapshot (-incoming).

One writer snapshot (256 MiB non-zero in 512 MiB, max rate; --mb and --mem-mb change both) per VMM is taken first; then
each restore mode is timed, fresh process per trial:
  first guest line: process start -> the restored guest's first serial line (the same definition for both VMMs)
  first instruction: MiniVmm only, process start -> vCPUs started (its CLOCK_MONOTONIC log line); QEMU has no such mark
  first sweep: process start -> the writer's generation has advanced by 2 (one whole sweep after the restored point)
  RSS: peak resident memory of one restored VM (until the trial stops), and of 4 mmap clones together (--no-clones:
       not measured; four clones of a large guest would each copy what they write).
--until line stops each trial at the first guest line (no first-sweep time): a sweep of a multi-GiB buffer through
lazy or mmap restore takes seconds per trial.
Usage: bench_restore.py MINIVMM GUEST_DIR OUT_DIR [--reps N] [--mem-mb 512] [--mb 256] [--until sweep|line] [--no-clones]
"""
import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_snapshot import BUFFER_BASE_MB, Watched, buffer_base_mb, tsc_khz  # noqa: E402
from qmp_client import Qmp, background_snapshot  # noqa: E402

GEN = re.compile(r"writer: gen=(\d+)")
STARTED = re.compile(r"vCPUs started at monotonic (\d+) ns")


def writer_cmdline(args, khz):
    base = buffer_base_mb(args.mb, args.mem_mb)
    where = f" base={base}" if base != BUFFER_BASE_MB else ""  # as bench_snapshot.py: unchanged for the 512 MiB runs
    return f"mb={args.mb}{where} sweeps=0 report_ms=5 tsc_khz={khz}"


def done(args, w):
    return (first_line_time(w) if args.until == "line" else first_sweep_time(w)) is not None


def first_line_time(w):
    return next((t for t, _, l in w.lines if GEN.search(l)), None)


def first_sweep_time(w):
    gens = [(t, int(m.group(1))) for t, _, l in w.lines if (m := GEN.search(l))]
    if not gens:
        return None
    g0 = gens[0][1]
    return next((t for t, g in gens if g >= g0 + 2), None)


def minivmm_trial(args, image, mode, extra=()):
    t0 = time.monotonic_ns()
    w = Watched([args.minivmm, "restore", image, "--memory", mode, "--log-level", "information", *extra])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done(args, w) and w.proc.poll() is None:
        time.sleep(0.01)
    sweep = first_sweep_time(w)
    peak = max((kb for _, kb in w.rss), default=0)
    w.proc.terminate()
    w.wait(30)
    started = next((int(m.group(1)) for _, _, l in w.lines if (m := STARTED.search(l))), None)
    line = first_line_time(w)
    return {"first_line_ms": line * 1000 if line else "", "first_instruction_ms": (started - t0) / 1e6 if started else "",
            "first_sweep_ms": sweep * 1000 if sweep else "", "rss_mib": round(peak / 1024, 1)}


def qemu_cmd(args, khz, extra):
    return ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", f"{args.mem_mb}M", "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", os.path.join(args.guests, "writer.elf"), "-append", writer_cmdline(args, khz), *extra]


def qemu_trial(args, image, khz):
    w = Watched(qemu_cmd(args, khz, ["-incoming", f"exec:cat {image}"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not done(args, w) and w.proc.poll() is None:
        time.sleep(0.01)
    sweep = first_sweep_time(w)
    line = first_line_time(w)
    peak = max((kb for _, kb in w.rss), default=0)
    w.proc.kill()
    w.wait(30)
    return {"first_line_ms": line * 1000 if line else "", "first_instruction_ms": "", "first_sweep_ms": sweep * 1000 if sweep else "",
            "rss_mib": round(peak / 1024, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("guests")
    ap.add_argument("out")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--mem-mb", type=int, default=512, help="guest RAM (MiB): MiniVmm's --mem, QEMU's -m")
    ap.add_argument("--mb", type=int, default=256, help="the writer's buffer (MiB), all of it non-zero when saved")
    ap.add_argument("--until", choices=["sweep", "line"], default="sweep", help="when a trial stops")
    ap.add_argument("--no-clones", action="store_true", help="skip the 4 mmap clones")
    args = ap.parse_args()
    # The writer fills its buffer at roughly 1 GiB/s on first touch here: the snapshot waits 3 s (as it always did for
    # 256 MiB) plus 1 s per further GiB, so the buffer is all non-zero when it is saved.
    after_s = 3 + max(0, args.mb - 256) / 1024
    os.makedirs(args.out, exist_ok=True)
    khz = tsc_khz()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.out) as work:
        image = os.path.join(work, "restore.mvs")
        subprocess.run([args.minivmm, "run", "--kernel", os.path.join(args.guests, "writer.elf"), "--mem", f"{args.mem_mb}M", "--huge-pages",
                        "--cmdline", writer_cmdline(args, khz), "--serial", "none", "--snapshot-to", image, "--snapshot-after", f"{after_s:g}s",
                        "--exit-after-snapshot"], check=True, stderr=subprocess.DEVNULL)
        # Record a working set (the restored writer runs forever: stop it after the recording).
        rec = subprocess.Popen([args.minivmm, "restore", image, "--memory", "lazy", "--record-working-set", "500ms", "--serial", "none"],
                               stderr=subprocess.DEVNULL)
        time.sleep(2)
        rec.terminate()
        rec.wait()
        qimage = os.path.join(work, "qemu.bin")
        sock = os.path.join(work, "q.sock")
        q = subprocess.Popen(qemu_cmd(args, khz, ["-qmp", f"unix:{sock},server,nowait"]), stdout=subprocess.DEVNULL)
        qmp = Qmp(sock)
        time.sleep(after_s)
        background_snapshot(qmp, f"exec:cat > {qimage}")
        qmp.command("quit")
        q.wait()
        for rep in range(args.reps):
            for mode, extra in [("eager", ()), ("mmap", ()), ("lazy", ("--no-working-set",)), ("lazy+ws", ())]:
                os.sync()
                r = minivmm_trial(args, image, mode.split("+")[0], extra)
                r.update({"vmm": "minivmm", "mode": mode, "rep": rep, "mem_mb": args.mem_mb, "mb": args.mb})
                rows.append(r)
                print(r, flush=True)
            os.sync()
            r = qemu_trial(args, qimage, khz)
            r.update({"vmm": "qemu", "mode": "incoming", "rep": rep, "mem_mb": args.mem_mb, "mb": args.mb})
            rows.append(r)
            print(r, flush=True)
        # Four mmap clones at once share the file's page cache.
        clones = [] if args.no_clones else [Watched([args.minivmm, "restore", image, "--memory", "mmap", "--serial", "none"]) for _ in range(4)]
        time.sleep(3 if clones else 0)
        total = 0
        for c in clones:
            with open(f"/proc/{c.proc.pid}/smaps_rollup") as f:
                pss = next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
            total += pss
            c.proc.terminate()
            c.wait(30)
        if clones:
            rows.append({"vmm": "minivmm", "mode": "4 mmap clones (total PSS)", "rep": 0, "mem_mb": args.mem_mb, "mb": args.mb,
                         "rss_mib": round(total / 1024, 1)})
    with open(os.path.join(args.out, "restore.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["vmm", "mode", "rep", "mem_mb", "mb", "first_line_ms", "first_instruction_ms", "first_sweep_ms", "rss_mib"])
        wr.writeheader()
        wr.writerows(rows)
    print(f"\n{'vmm':>8} {'mode':>26} {'first line ms (min/med)':>25} {'first sweep ms (min/med)':>25} {'RSS MiB':>8}")
    for key in dict.fromkeys((r["vmm"], r["mode"]) for r in rows):
        rs = [r for r in rows if (r["vmm"], r["mode"]) == key]
        def mm(k):
            v = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
            return f"{min(v):9.1f} / {statistics.median(v):9.1f}" if v else "n/a"
        print(f"{key[0]:>8} {key[1]:>26} {mm('first_line_ms'):>25} {mm('first_sweep_ms'):>25} {statistics.median([r['rss_mib'] for r in rs]):8.1f}")


if __name__ == "__main__":
    main()
