#!/usr/bin/env python3
"""Snapshot of a VM with a 1 GiB drive under a random-write load (the vblk guest's writer mode).

Reports, for each engine: downtime and total time (MiniVmm's summary line), the drive's extra bytes (the copy's
`du`), and the guest's write rate before and during the snapshot, from the guest's own progress lines
("vdisk: writes=N ... us=T", every 1024 writes, on its TSC clock) timed on the host as they arrive.

    python3 experiments/bench_drive_snapshot.py [--engines write-tracking,stop-copy,dirty-log] [--dir /tmp/dbench]

With --links N: a chain instead (--snapshot-incremental, SIGUSR1 every --interval writes of the guest's; --full: the
same with every snapshot full, the baseline): the first
snapshot full, then N links, each with its drive bytes, changed pages, total and downtime from --snapshot-stats,
and the guest's write rate between snapshots and while each ran (guest clock).
"""
import argparse, json, os, re, signal, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DLL = os.path.join(ROOT, "vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll")


def run(engine, workdir, drive_mib, snap_at):
    image = os.path.join(workdir, "drive.img")
    snap = os.path.join(workdir, f"{engine}.mvs")
    for f in (image, snap, snap + ".drive0"):
        if os.path.exists(f): os.remove(f)
    with open(image, "wb") as f: f.truncate(drive_mib << 20)
    guest = os.path.join(workdir, "fw", "vblk.elf")
    cmd = ["dotnet", DLL, "run", "--kernel", guest, "--mem", "128M", "--drive", f"file={image}",
           "--cmdline", f"writer=100000000 fresh=1 flush=64 report=1024 snapat={snap_at}",
           "--snapshot-to", snap, "--snapshot-mode", engine, "--log-level", "debug"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, summary = [], []
    def err():
        for l in p.stderr:
            summary.append((time.monotonic(), l.strip()))
    t = threading.Thread(target=err); t.start()
    # The VM runs on after the snapshot: two progress lines after its end close the "during" window, then stop it.
    for l in p.stdout:
        m = re.match(r"vdisk: writes=(\d+) failures=(\d+) us=(\d+)", l)
        if m: lines.append((time.monotonic(), int(m.group(1)), int(m.group(3))))
        ended = [s for s in summary if "details:" in s[1]]
        if ended and sum(1 for x in lines if x[0] > ended[-1][0]) >= 2:
            p.terminate()
    p.wait(); t.join()
    done = [s for s in summary if "details:" in s[1]]  # every figure (the summary line has fewer)
    if not done: sys.exit(f"{engine}: no summary: {summary}")
    end_t, text = done[-1]
    total = float(re.search(r"total ([\d.]+) ms", text).group(1)) / 1000
    down = float(re.search(r"downtime ([\d.]+) ms", text).group(1))
    drive = re.search(r"drives (\d+) bytes \((\d+) blocks copied before a write\)", text)
    start_t = end_t - total
    before = [l for l in lines if l[0] < start_t]
    during = [l for l in lines if start_t <= l[0] <= end_t]
    def rate(ls):
        if len(ls) < 2: return float("nan")
        return (ls[-1][1] - ls[0][1]) / ((ls[-1][2] - ls[0][2]) / 1e6)
    # During: from the last line before the snapshot to the first one after it (guest clock).
    after = [l for l in lines if l[0] > end_t]
    dur = ([before[-1]] if before else []) + during + after[:1]
    du = int(subprocess.check_output(["du", "-B1", snap + ".drive0"]).split()[0]) if os.path.exists(snap + ".drive0") else 0
    print(f"{engine:15s} downtime {down:8.2f} ms  total {total*1000:8.0f} ms  drive bytes {drive.group(1) if drive else '?':>10s} "
          f"(du {du}, {drive.group(2) if drive else '?'} blocks copied before a write)  "
          f"guest writes/s before {rate(before[-40:]):7.0f}  during {rate(dur):7.0f}  ({len(during)} progress lines inside)")
    print("   ", text[:400])


def run_chain(workdir, drive_mib, links, interval, full=False):
    image = os.path.join(workdir, "drive.img")
    chain_dir = os.path.join(workdir, "chain")
    os.makedirs(chain_dir, exist_ok=True)
    for f in os.listdir(chain_dir): os.remove(os.path.join(chain_dir, f))
    if os.path.exists(image): os.remove(image)
    with open(image, "wb") as f: f.truncate(drive_mib << 20)
    stats = os.path.join(chain_dir, "stats.jsonl")
    cmd = ["dotnet", DLL, "run", "--kernel", os.path.join(workdir, "fw", "vblk.elf"), "--mem", "128M", "--drive", f"file={image}",
           "--cmdline", "writer=100000000 fresh=1 flush=64 report=1024",
           "--snapshot-to", os.path.join(chain_dir, "ck-%n.mvs"), "--snapshot-stats", stats] + ([] if full else ["--snapshot-incremental"])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines, asked, next_at = [], [], None
    def done():
        return sum(1 for _ in open(stats)) if os.path.exists(stats) else 0
    for l in p.stdout:
        m = re.match(r"vdisk: writes=(\d+) failures=(\d+) us=(\d+)", l)
        if not m: continue
        lines.append((time.monotonic(), int(m.group(1)), int(m.group(3))))
        writes = int(m.group(1))
        if next_at is None: next_at = writes + interval
        if len(asked) == done() and writes >= next_at:
            if len(asked) == links + 1:
                p.send_signal(signal.SIGTERM)
                break
            asked.append(time.monotonic())
            p.send_signal(signal.SIGUSR1)
            next_at = writes + interval
    p.wait()
    rows = [json.loads(l) for l in open(stats)]
    print(f"drive {drive_mib} MiB, a snapshot every {interval} guest writes of 4 KiB (random), " +
          ("every snapshot full (the baseline):" if full else "links store the changed 4 KiB pages:"))
    print(f"{'#':>2} {'kind':5} {'changed pages':>14} {'drive bytes':>12} {'du':>11} {'RAM pages':>9} {'downtime ms':>11} {'total ms':>9} {'w/s between':>11} {'w/s during':>10}")
    def rate(ls):
        return (ls[-1][1] - ls[0][1]) / ((ls[-1][2] - ls[0][2]) / 1e6) if len(ls) >= 2 and ls[-1][2] > ls[0][2] else float("nan")
    for i, r in enumerate(rows):
        path = os.path.join(chain_dir, f"ck-{i + 1}.mvs.drive0")
        du = int(subprocess.check_output(["du", "-B1", path]).split()[0]) if os.path.exists(path) else 0
        start = asked[i] if i < len(asked) else float("nan")
        end = start + r["total-ms"] / 1000
        during = [x for x in lines if start <= x[0] <= end]
        prev = [x for x in lines if x[0] < start][-1:]
        nxt = [x for x in lines if x[0] > end][:1]
        between = [x for x in lines if (asked[i - 1] + rows[i - 1]["total-ms"] / 1000 if i > 0 else 0) < x[0] < start]
        print(f"{i + 1:>2} {'link' if r['incremental'] else 'full':5} {r.get('drive-changed-pages', '-'):>14} {r['drive-bytes']:>12} {du:>11} "
              f"{r['pages-saved']:>9} {r['downtime-ms']:>11.2f} {r['total-ms']:>9.0f} {rate(between):>11.0f} {rate(prev + during + nxt):>10.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="write-tracking,stop-copy,dirty-log")
    ap.add_argument("--dir", default="/tmp/dbench")
    ap.add_argument("--drive-mib", type=int, default=1024)
    ap.add_argument("--snap-at", type=int, default=16384)
    ap.add_argument("--links", type=int, default=0, help="a chain: a full snapshot and this many incremental links")
    ap.add_argument("--interval", type=int, default=8192, help="--links: guest writes between two snapshots")
    ap.add_argument("--full", action="store_true", help="--links: the same run with every snapshot full (the baseline)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    subprocess.check_call(["dotnet", DLL, "firmware", "--out", os.path.join(a.dir, "fw")], stdout=subprocess.DEVNULL)
    if a.links > 0:
        run_chain(a.dir, a.drive_mib, a.links, a.interval, a.full)
        return
    for e in a.engines.split(","):
        run(e, a.dir, a.drive_mib, a.snap_at)


if __name__ == "__main__":
    main()
