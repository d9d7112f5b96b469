#!/usr/bin/env python3
"""Incremental snapshots: a full snapshot and incremental links of the same running VM, side by side.

One VM per changed fraction: the writer (prefilled buffer of all but 32 MiB of RAM, sequential, paced at RATE pages/s)
is snapshotted once in full (SIGUSR1), then LINKS-1 times more, each INTERVAL = fraction x RAM pages / RATE later, with
--snapshot-incremental: each link holds what the guest wrote since the one before. Per snapshot (from
--snapshot-stats): changed pages, bytes on disk, total / protected window / downtime / handover pause, and the guest's
write rate in the protected window. Then restore (eager, lazy) timed to the restored guest's first serial line, from
the 10-link chain's tip and from the merged chain.

Tracking cost: the same writer at --track-rates (max and paced), once with a plain snapshot (nothing tracks after it)
and once with --snapshot-incremental (the tracker holds RAM after it): the guest's rate in the 1 s after the snapshot
ends, tracked / untracked.

A link's changed set is what the guest wrote since the previous link's freeze, so it also holds what the guest wrote
while that snapshot ran: the achieved fraction (changed_pages) is reported per link, not assumed.
Usage: bench_incremental.py MINIVMM GUEST_DIR OUT_DIR [--mem-mb 2048] [--fractions 1,10,50] [--rate 20000]
       [--links 10] [--quick]
Writes OUT_DIR/incremental.csv, OUT_DIR/incremental-restore.csv, OUT_DIR/tracking.csv and prints them.
"""
import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_snapshot import Watched, allocated, tsc_khz, REPORT_MS  # noqa: E402

PAGE = 4096


def rnd(x, digits=0):
    """round() that keeps NaN (a window too short to hold one whole writer report) instead of failing."""
    return x if x != x else round(x, digits) if digits else round(x)


def writer(args, mem_mb, rate, khz, extra, workdir):
    cmdline = f"mb={mem_mb - 32} sweeps=0 rate={rate} prefill=1 report_ms={REPORT_MS} tsc_khz={khz} pattern=seq"
    stats = os.path.join(workdir, "stats.jsonl")
    if os.path.exists(stats):
        os.remove(stats)
    w = Watched([args.minivmm, "run", "--kernel", os.path.join(args.guests, "writer.elf"), "--mem", f"{mem_mb}M",
                 "--cmdline", cmdline, "--snapshot-stats", stats, "--log-level", "warning", *extra])
    return w, stats


def stats_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def snapshot_and_wait(w, stats, n, timeout=300):
    w.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and w.proc.poll() is None:
        lines = stats_lines(stats)
        if len(lines) >= n:
            return lines[n - 1]
        time.sleep(0.01)
    raise RuntimeError("snapshot did not finish: " + " | ".join(l for _, s, l in w.lines if s == "err")[-300:])


def in_window(w, rec):
    t0 = rec["freeze-monotonic-ns"] / 1e9 - w.start
    rates = w.window_rates(t0, t0 + rec["protected-window-ms"] / 1000)
    return statistics.mean(rates) if rates else float("nan")


def first_line_ms(minivmm, path, mode):
    t = time.monotonic()
    p = subprocess.Popen([minivmm, "restore", path, "--memory", mode, "--log-level", "warning"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    p.stdout.readline()
    ms = (time.monotonic() - t) * 1000
    p.kill()
    p.wait()
    return ms


def run_chain(args, fraction, khz, workdir, rows, restore_rows):
    ram_pages = args.mem_mb * 1024 * 1024 // PAGE
    interval = fraction / 100 * ram_pages / args.rate
    links = args.links if fraction <= 10 else min(args.links, 4)  # a 50 % interval is long: fewer links
    pattern = os.path.join(workdir, f"f{fraction}-%n.mvs")
    w, stats = writer(args, args.mem_mb, args.rate, khz, ["--snapshot-to", pattern, "--snapshot-incremental"], workdir)
    try:
        if not w.wait_prefilled(120):
            raise RuntimeError("the writer never finished its prefill sweep")
        time.sleep(0.5)
        before = statistics.mean(w.rates(w.lines[-1][0] - 0.4, w.lines[-1][0]) or [float("nan")])
        for n in range(1, links + 1):
            rec = snapshot_and_wait(w, stats, n)
            path = pattern.replace("%n", str(n))
            rows.append({
                "fraction_pct": fraction, "link": n, "kind": "incremental" if rec["incremental"] else "full",
                "changed_pages": rec["changed-pages"] if rec["incremental"] else ram_pages,
                "pages_saved": rec["pages-saved"], "bytes_on_disk": allocated(path),
                "size_over_changed": round(allocated(path) / max(1, rec["changed-pages"] * PAGE), 4) if rec["incremental"] else "",
                "total_ms": round(rec["total-ms"], 2), "protected_ms": round(rec["protected-window-ms"], 2),
                "downtime_ms": round(rec["downtime-ms"], 3), "handover_ms": round(rec["handover-pause-ms"], 3),
                "rate_before": rnd(before), "rate_during": rnd(in_window(w, rec)),
                "breakdown": rec.get("downtime-breakdown", ""),
            })
            if n < links:
                time.sleep(interval)
    finally:
        w.proc.terminate()
        w.wait(60)
    tip = pattern.replace("%n", str(links))
    merged = os.path.join(workdir, f"f{fraction}-merged.mvs")
    t = time.monotonic()
    r = subprocess.run([args.minivmm, "snapshot", "merge", tip, merged], capture_output=True, text=True)
    merge_ms = (time.monotonic() - t) * 1000
    if r.returncode != 0:
        raise RuntimeError("merge failed: " + r.stderr)
    for mode in ("eager", "lazy"):
        for what, path in (("chain tip", tip), ("merged", merged)):
            first_line_ms(args.minivmm, path, mode)  # warm-up: the links were just written and may not be cached yet
            ms = [first_line_ms(args.minivmm, path, mode) for _ in range(args.reps)]
            restore_rows.append({"fraction_pct": fraction, "links": links if what == "chain tip" else 1, "source": what,
                                 "mode": mode, "first_line_ms_median": round(statistics.median(ms), 1),
                                 "merge_ms": round(merge_ms) if what == "merged" else ""})
    for n in range(1, links + 1):
        os.remove(pattern.replace("%n", str(n)))
    os.remove(merged)


def tracking_cost(args, khz, workdir, rows):
    for rate in args.track_rates.split(","):
        result = {}
        for tracked in (False, True):
            image = os.path.join(workdir, f"track-{tracked}.mvs")
            extra = ["--snapshot-to", image] + (["--snapshot-incremental"] if tracked else [])
            w, stats = writer(args, args.track_mem_mb, rate, khz, extra, workdir)
            try:
                if not w.wait_prefilled(120):
                    raise RuntimeError("the writer never finished its prefill sweep")
                time.sleep(0.5)
                rec = snapshot_and_wait(w, stats, 1)
                end = (rec["freeze-monotonic-ns"] / 1e9 - w.start) + rec["total-ms"] / 1000
                time.sleep(1.3)
                rates = w.window_rates(end + 0.1, end + 1.1)
                result[tracked] = statistics.mean(rates) if rates else float("nan")
            finally:
                w.proc.terminate()
                w.wait(60)
                if os.path.exists(image):
                    os.remove(image)
        rows.append({"rate": rate, "mem_mb": args.track_mem_mb, "untracked_rate": rnd(result[False]),
                     "tracked_rate": rnd(result[True]), "tracked_over_untracked": rnd(result[True] / result[False], 3)})


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    print(f"== {os.path.basename(path)}")
    for r in rows:
        print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("guests")
    ap.add_argument("out")
    ap.add_argument("--mem-mb", type=int, default=2048)
    ap.add_argument("--fractions", default="1,10,50")
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--links", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--track-rates", default="max,1000000,10000")
    ap.add_argument("--track-mem-mb", type=int, default=512)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.mem_mb, args.fractions, args.links, args.reps, args.track_rates = 256, "10", 3, 1, "max"
        args.track_mem_mb = 256
    os.makedirs(args.out, exist_ok=True)
    khz = tsc_khz()
    rows, restore_rows, track_rows = [], [], []
    with tempfile.TemporaryDirectory(dir=args.out) as workdir:
        for f in [float(x) for x in args.fractions.split(",")]:
            run_chain(args, f, khz, workdir, rows, restore_rows)
        tracking_cost(args, khz, workdir, track_rows)
    write_csv(os.path.join(args.out, "incremental.csv"), rows)
    write_csv(os.path.join(args.out, "incremental-restore.csv"), restore_rows)
    write_csv(os.path.join(args.out, "tracking.csv"), track_rows)


if __name__ == "__main__":
    main()
