#!/usr/bin/env python3
"""Snapshot benchmark: MiniVmm's engines vs QEMU's background snapshot on the same writer guest, same run.

For each guest write rate and engine, one fresh VM per trial:
  writer: 256 MiB buffer (prefilled, so it is all non-zero) in 512 MiB RAM (--mb, --mem-mb), 1 vCPU, paced at the rate;
  snapshot (SIGUSR1 / QMP) DELAY after the prefill sweep ends; measure image size on disk / non-zero RAM, downtime, total time (write, fsync),
  fault stall p50/p99 (host side), guest page writes/s before and during the snapshot, VMM RSS growth.
Usage: bench_snapshot.py MINIVMM GUEST_DIR OUT_DIR [--rates idle,1000,...] [--engines wt,wt-stream,wt-rt,stop-copy,dirty-log,qemu]
       [--reps N] [--fault-around 16] [--mb 256] [--mem-mb 512] [--quick]
Writes OUT_DIR/snapshot.csv and prints a table.
"""
import argparse
import csv
import json
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp_client import Qmp, background_snapshot  # noqa: E402
from report import fill_nonzero  # noqa: E402

# The one outcome line MiniVmm prints per snapshot: only its arrival time is used; every number comes from
# --snapshot-stats (the line is for people and may change).
OUTCOME = re.compile(r"minivmm: snapshot \((?P<engine>[\w-]+)\)(?P<failed> (?:failed|cancelled))?")
BREAKDOWN = re.compile(r"(?P<part>pause|capture|protect) (?P<ms>[\d.]+) ms")
RATE = re.compile(r"writer: gen=\d+ pages=\d+ fails=(\d+) rate=(\d+) pages/s")
GEN = re.compile(r"writer: gen=(\d+) ")
# The writer reports its rate every REPORT_MS: short enough that a 100 ms protected window holds several reports.
REPORT_MS = 20
# Both VMMs give a guest of more than 3 GiB the rest of its RAM from 4 GiB (MiniVmm's GuestMemoryLayout; QEMU's
# microvm splits at 3 GiB or higher), so a buffer that does not fit below 3 GiB goes to 4 GiB, where it fits whenever
# RAM - 3 GiB holds it.
LOW_RAM_MB, HIGH_RAM_BASE_MB, BUFFER_BASE_MB = 3072, 4096, 16


def buffer_base_mb(mb, mem_mb):
    """Where the writer's buffer starts (MiB): its default (16 MiB) while it fits in the RAM below the 32-bit hole,
    else 4 GiB; raises when neither fits, rather than letting the writer exit on its memmap check."""
    if BUFFER_BASE_MB + mb <= min(mem_mb, LOW_RAM_MB):
        return BUFFER_BASE_MB
    if mem_mb > LOW_RAM_MB and mb <= mem_mb - LOW_RAM_MB:
        return HIGH_RAM_BASE_MB
    raise SystemExit(f"a {mb} MiB writer buffer does not fit in {mem_mb} MiB of guest RAM")


def tsc_khz():
    # The writer paces itself with tsc_khz; MiniVmm appends the real value, QEMU needs it on the command line.
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    m = re.findall(r"tsc: Refined TSC clocksource calibration: ([\d.]+) MHz", out) or re.findall(r"tsc: Detected ([\d.]+) MHz", out)
    return int(float(m[-1]) * 1000) if m else 2_000_000


class Watched:
    """A child process whose stdout/stderr lines are timestamped on arrival, with its RSS sampled."""

    def __init__(self, argv):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines = []  # (t, stream, text)
        self.rss = []    # (t, kB)
        self._stop = False
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()
        self._r = threading.Thread(target=self._sample, daemon=True)
        self._r.start()

    def _pump(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        sel.register(self.proc.stderr, selectors.EVENT_READ, "err")
        open_streams = 2
        while open_streams:
            for key, _ in sel.select():
                line = key.fileobj.readline()
                if not line:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                self.lines.append((time.monotonic() - self.start, key.data, line.decode(errors="replace").rstrip()))

    def _sample(self):
        path = f"/proc/{self.proc.pid}/status"
        while not self._stop and self.proc.poll() is None:
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.rss.append((time.monotonic() - self.start, int(line.split()[1])))
            except OSError:
                break
            time.sleep(0.005)

    def wait(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stop = True
        self._t.join(5)

    def wait_prefilled(self, timeout=120):
        """Waits until the writer finished its first (prefill) sweep: how long that takes depends on whether the host
        had free huge pages (0.05-2 s here), so a fixed delay would sometimes snapshot a half-filled buffer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(int(m.group(1)) >= 1 for _, _, l in self.lines if (m := GEN.search(l))):
                return True
            time.sleep(0.01)
        return False

    def rates(self, t0, t1):
        out = [int(m.group(2)) for t, _, l in self.lines if t0 <= t <= t1 and (m := RATE.search(l))]
        return out

    def time_lost_ms(self, t0, t1, rate_before, until):
        """Guest time lost: the integral of (1 - rate/rate_before) over [t0, t1] and on until the first report back at
        >= 95 % of rate_before (at most `until`), each report weighted by how much of it lies in that span (a report at t
        covers the REPORT_MS before t). A report missing from the span (a stalled guest prints nothing) counts as lost."""
        if not rate_before:
            return ""
        span = REPORT_MS / 1000
        reports = sorted((t, int(m.group(2))) for t, _, l in self.lines if (m := RATE.search(l)))
        end = t1
        for t, r in reports:
            if t - span >= t1 and r >= 0.95 * rate_before:
                end = t - span
                break
            if t > until:
                end = until
                break
        lost, covered = 0.0, 0.0
        for t, r in reports:
            overlap = min(t, end) - max(t - span, t0)
            if overlap > 0:
                lost += overlap * (1 - min(1.0, r / rate_before))
                covered += overlap
        lost += max(0.0, (end - t0) - covered)  # no reports at all for part of the span: the guest made no progress
        return round(lost * 1000, 1)

    def window_rates(self, t0, t1):
        """Rates of the reports that lie wholly inside [t0, t1] (a report at t covers the REPORT_MS before t)."""
        span = REPORT_MS / 1000
        return [int(m.group(2)) for t, _, l in self.lines if t0 <= t - span and t <= t1 and (m := RATE.search(l))]

    def rss_growth_kb(self, t0, t1):
        # The baseline is taken a while before the freeze: what a snapshot allocates (and faults in) between its start
        # and the freeze counts as its growth too.
        before = [kb for t, kb in self.rss if t < t0 - 0.1]
        during = [kb for t, kb in self.rss if t0 <= t <= t1 + 0.05]
        if not before or not during:
            return 0
        return max(during) - before[-1]


def allocated(path):
    return os.stat(path).st_blocks * 512


def present_pages(minivmm, path):
    out = subprocess.run([minivmm, "snapshot", "inspect", path], capture_output=True, text=True).stdout
    m = re.search(r"(\d+) pages present", out)
    return int(m.group(1)) if m else 0


def writer_cmdline(rate, mb, khz, pattern="seq", cpus=1, mem_mb=512):
    r = "max" if rate == "max" else ("1" if rate == "idle" else str(rate))
    base = buffer_base_mb(mb, mem_mb)
    # base= only where it differs from the default, so the command line of the 512 MiB runs stays as it was.
    where = f" base={base}" if base != BUFFER_BASE_MB else ""
    return f"mb={mb}{where} sweeps=0 rate={r} prefill=1 report_ms={REPORT_MS} tsc_khz={khz} pattern={pattern} cpus={cpus}"


def run_minivmm(args, rate, engine, workdir, khz, pattern="seq", cpus=1, stalls=None):
    image = os.path.join(workdir, f"mv-{engine}-{rate}.mvs")
    stats = os.path.join(workdir, "stats.jsonl")
    if os.path.exists(stats):
        os.remove(stats)
    mode = {"wt": "write-tracking", "wt-stream": "write-tracking", "wt-rt": "write-tracking", "dirty-log-bw": "dirty-log"}.get(engine, engine)
    # wt-stream: the same engine into the stream form, through a pipe to `cat`, as QEMU's `migrate exec:` is driven.
    destination = f"exec:cat > {image}" if engine == "wt-stream" else image
    extra = ["--snapshot-rate-limit", str(args.bw_limit)] if engine == "dirty-log-bw" else []
    if engine == "wt-rt":  # the file form with the fault thread at real-time priority
        extra += ["--snapshot-realtime-faults"]
    if mode == "write-tracking" and args.buffer_mib:
        extra += ["--snapshot-buffer", f"{args.buffer_mib}M"]
    if mode == "dirty-log":  # the same convergence cap as QEMU's pre-copy, so both report "did not converge" alike
        extra += ["--snapshot-converge-timeout", f"{args.precopy_cap}s"]
    w = Watched([args.minivmm, "run", "--kernel", os.path.join(args.guests, "writer.elf"), "--mem", f"{args.mem_mb}M", "--huge-pages",
                 "--cpus", str(cpus), "--cmdline", writer_cmdline(rate, args.mb, khz, pattern, cpus, args.mem_mb), "--snapshot-to", destination,
                 "--snapshot-mode", mode, "--snapshot-fault-around", str(args.fault_around),
                 "--snapshot-stats", stats, "--log-level", "warning", *extra])
    # Snapshot (SIGUSR1) once the buffer is full and the guest has run at its rate for DELAY ("before" window).
    if not w.wait_prefilled():
        w.proc.kill()
        w.wait(10)
        return {"error": "writer never finished its prefill sweep: " + " | ".join(l for _, _, l in w.lines)[-300:]}
    time.sleep(args.delay)
    w.proc.send_signal(signal.SIGUSR1)
    # Keep the guest running for a moment after the snapshot to measure its write rate "after".
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and w.proc.poll() is None and not any(s == "err" and OUTCOME.search(l) for _, s, l in w.lines):
        time.sleep(0.05)
    time.sleep(args.after)
    w.proc.terminate()
    w.wait(60)
    outcome = next(((t, OUTCOME.search(l)) for t, s, l in w.lines if s == "err" and OUTCOME.search(l)), None)
    if outcome is None or outcome[1]["failed"]:
        return {"error": " | ".join(l for _, s, l in w.lines if s == "err")[-300:]}
    t_end = outcome[0]
    st = {}
    if os.path.exists(stats):
        with open(stats) as f:
            lines = f.read().splitlines()
        if lines:
            st = json.loads(lines[-1])
    # The window's start is MiniVmm's own CLOCK_MONOTONIC freeze stamp, on the same clock as w.start; inferring it
    # from when the outcome line arrived would shift it by the completion and pipe latency.
    if not st.get("freeze-monotonic-ns"):
        return {"error": "no freeze-monotonic-ns in --snapshot-stats: cannot place the protected window"}
    t_start = st["freeze-monotonic-ns"] / 1e9 - w.start
    # The protected window (freeze to the last page un-protected; the fsync after it is not part of it), the same
    # definition as QEMU's migrate-to-completed below: only reports wholly inside it count.
    protected_s = st["protected-window-ms"] / 1000
    before = w.rates(t_start - args.delay + 0.1, t_start)
    during = w.window_rates(t_start, t_start + protected_s)
    after = w.rates(t_end + 0.05, t_end + args.after)
    pp = present_pages(args.minivmm, image) if engine != "wt-stream" else 0  # a stream has no page table to count
    parts = {m["part"]: float(m["ms"]) for m in BREAKDOWN.finditer(st.get("downtime-breakdown") or "")}
    row = {
        "image_bytes": allocated(image), "nonzero_bytes": pp * 4096 if pp else "", "bytes_written": st["bytes-written"],
        "downtime_ms": st["downtime-ms"], "total_ms": st["total-ms"], "write_ms": st["write-ms"],
        "fsync_ms": st["fsync-ms"], "faults": st["faults-served"], "stall_p50_us": round(st["fault-stall-p50-us"]),
        "stall_p99_us": round(st["fault-stall-p99-us"]),
        "buffer_waits": st.get("fault-buffer-waits", ""), "buffer_wait_ms": st.get("fault-buffer-wait-ms", ""),
        "zero_unread": st.get("zero-pages-unread", ""),
        **{"slow_" + k.replace("-", "_") + "_us": v for k, v in (st.get("slowest-fault-phases-us") or {}).items()},
        "rate_before": statistics.median(before) if before else "", "rate_during": statistics.mean(during) if during else "",
        "rate_during_worst": min(during) if during else "", "protected_ms": round(protected_s * 1000, 2),
        "rate_after": statistics.median(after) if after else "",
        "time_lost_ms": w.time_lost_ms(t_start, t_start + protected_s, statistics.median(before) if before else 0, t_end + args.after),
        "save_mib_s": round(st["bytes-written"] / (1 << 20) / protected_s, 1) if protected_s > 0 else "",
        "rss_growth_mib": round(w.rss_growth_kb(t_start, t_end) / 1024, 1),
        "pause_ms": parts.get("pause", ""), "capture_ms": parts.get("capture", ""), "protect_ms": parts.get("protect", ""),
    }
    row["iterations"] = st["iterations"] if st["iterations"] else ""
    row["converged"] = "" if not st["iterations"] else (1 if st["converged"] else 0)
    if stalls is not None:
        stalls.append(st.get("fault-stall-us", []))
    os.remove(image)
    return row


def run_qemu(args, rate, workdir, khz, pattern="seq", cpus=1, precopy=False):
    image = os.path.join(workdir, f"qemu-{rate}.bin")
    sock = os.path.join(workdir, "qmp.sock")
    if os.path.exists(sock):
        os.remove(sock)
    w = Watched(["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", f"{args.mem_mb}M",
                 "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                 "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", os.path.join(args.guests, "writer.elf"),
                 "-smp", str(cpus), "-append", writer_cmdline(rate, args.mb, khz, pattern, cpus, args.mem_mb), "-qmp", f"unix:{sock},server,nowait"])
    try:
        qmp = Qmp(sock)
        if not w.wait_prefilled():
            raise RuntimeError("writer never finished its prefill sweep")
        time.sleep(args.delay)
        started = []  # when `migrate` was sent: the window starts there, not before the capability round trip
        info, wall = (precopy_migrate(qmp, f"exec:cat > {image}", args.precopy_cap, started=started) if precopy
                      else background_snapshot(qmp, f"exec:cat > {image}", started=started))
        t_start = started[0] - w.start
        t_end = t_start + wall
        time.sleep(args.after)  # the guest's write rate "after"
        qmp.command("quit")
    except Exception as e:  # noqa: BLE001
        w.proc.kill()
        w.wait(10)
        return {"error": str(e)}
    w.wait(60)
    ram = info.get("ram", {})
    # QEMU 7.2 now and then reports total-time 0 for a completed background snapshot: use the time we measured then.
    total_ms = info.get("total-time") or round(wall * 1000, 1)
    converged = 1 if info.get("status") == "completed" else 0
    before = w.rates(t_start - args.delay + 0.1, t_start)
    during = w.window_rates(t_start, t_end)  # migrate to completed: QEMU's protected window
    after = w.rates(t_end + 0.05, t_end + args.after)
    row = {
        "rate_after": statistics.median(after) if after else "",
        # QEMU's "normal" pages count every page sent, re-sends included, so it is not the guest's non-zero RAM:
        # report.py divides QEMU rows by the non-zero RAM MiniVmm found in the same guest configuration.
        "image_bytes": allocated(image), "nonzero_bytes": "", "qemu_sent_bytes": ram.get("normal", 0) * 4096,
        "bytes_written": os.path.getsize(image),
        "downtime_ms": info.get("downtime", ""), "total_ms": total_ms, "write_ms": total_ms,
        "fsync_ms": 0, "faults": "", "stall_p50_us": "", "stall_p99_us": "",
        "rate_before": statistics.median(before) if before else "", "rate_during": statistics.mean(during) if during else "",
        "rate_during_worst": min(during) if during else "", "protected_ms": round((t_end - t_start) * 1000, 2),
        "time_lost_ms": w.time_lost_ms(t_start, t_end, statistics.median(before) if before else 0, t_end + args.after),
        "save_mib_s": round(os.path.getsize(image) / (1 << 20) / (t_end - t_start), 1) if t_end > t_start else "",
        "rss_growth_mib": round(w.rss_growth_kb(t_start, t_end) / 1024, 1),
        "converged": converged, "iterations": ram.get("dirty-sync-count", ""),
    }
    if os.path.exists(image):
        os.remove(image)
    return row


def precopy_migrate(qmp, uri, cap_s, poll=0.01, started=None):
    """QEMU's classic pre-copy migration into a file (max bandwidth unlimited), cancelled after cap_s if it never converges."""
    qmp.command("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    start = time.monotonic()
    if started is not None:
        started.append(start)
    qmp.command("migrate", uri=uri)
    while True:
        info = qmp.command("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info, time.monotonic() - start
        if time.monotonic() - start > cap_s:
            qmp.command("migrate_cancel")
            wall = time.monotonic() - start  # the window ends at the cancel, not after the wait below
            time.sleep(0.2)
            info = qmp.command("query-migrate")
            info["status"] = "not converged"
            return info, wall
        time.sleep(poll)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("guests")
    ap.add_argument("out")
    ap.add_argument("--rates", default="idle,1000,10000,100000,1000000,max")
    ap.add_argument("--engines", default="wt,stop-copy,dirty-log,qemu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fault-around", type=int, default=512)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--mbs", default=None, help="comma-separated buffer sizes (MiB) to sweep; default: --mb")
    ap.add_argument("--buffer-mib", type=int, default=0,
                    help="write tracking's --snapshot-buffer in MiB (0: MiniVmm's default, 16 MiB)")
    ap.add_argument("--mem-mb", type=int, default=512, help="guest RAM (MiB): MiniVmm's --mem, QEMU's -m")
    ap.add_argument("--delay", type=float, default=1.0, help="seconds from the end of the writer's prefill sweep to the snapshot (its rate 'before')")
    ap.add_argument("--after", type=float, default=0.5, help="seconds the guest keeps running after the snapshot (its rate 'after')")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--patterns", default="seq")
    ap.add_argument("--cpus", default="1")
    ap.add_argument("--bw-limit", type=float, default=64.0, help="MiB/s for the dirty-log-bw engine")
    ap.add_argument("--precopy-cap", type=float, default=5.0,
                    help="seconds of pre-copy (QEMU's, and MiniVmm's dirty-log via --snapshot-converge-timeout) before it counts as not converged")
    args = ap.parse_args()
    if args.quick:
        args.rates, args.reps, args.mb, args.delay = "10000,max", 1, 64, 0.5
    engines = args.engines.split(",")
    if not shutil.which("qemu-system-x86_64"):
        for q in [e for e in engines if e.startswith("qemu")]:
            print(f"qemu-system-x86_64 not installed: skipping {q}", file=sys.stderr)
            engines.remove(q)
    repo = os.path.dirname(os.path.abspath(__file__))
    args.minivmm_version = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    if subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no", "--", "vmm", "snapshot", "devices", "firmware"],
                      capture_output=True, text=True).stdout.strip():
        args.minivmm_version += "+changes"  # built from uncommitted sources
    os.makedirs(args.out, exist_ok=True)
    khz = tsc_khz()
    rows = []
    stall_rows = []
    mbs = [int(x) for x in (args.mbs or str(args.mb)).split(",")]
    with tempfile.TemporaryDirectory(dir=args.out) as work:
      for mb in mbs:
        args.mb = mb
        for pattern in args.patterns.split(","):
          for cpus in (int(c) for c in args.cpus.split(",")):
            for rate in args.rates.split(","):
              for engine in engines:
                for rep in range(args.reps):
                    os.sync()  # the previous trial's image must not be written back during this one
                    time.sleep(0.2)
                    if engine.startswith("qemu"):
                        r = run_qemu(args, rate, work, khz, pattern, cpus, precopy=engine == "qemu-precopy")
                    else:
                        samples = []
                        r = run_minivmm(args, rate, engine, work, khz, pattern, cpus, samples)
                        for trial in samples:
                            stall_rows += [{"mb": mb, "pattern": pattern, "cpus": cpus, "rate": rate, "engine": engine, "rep": rep,
                                            "fault_around": args.fault_around, "stall_us": v} for v in trial]
                    r.update({"rate": rate, "engine": engine, "rep": rep, "mb": args.mb, "mem_mb": args.mem_mb, "fault_around": args.fault_around,
                              "buffer_mib": args.buffer_mib or 16, "pattern": pattern, "cpus": cpus, "host": os.uname().nodename, "kernel": os.uname().release,
                              "minivmm": args.minivmm_version})
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    with open(os.path.join(args.out, "stalls.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["mb", "pattern", "cpus", "rate", "engine", "rep", "fault_around", "stall_us"])
        wr.writeheader()
        wr.writerows(stall_rows)
    fields = ["pattern", "cpus", "rate", "engine", "rep", "mb", "mem_mb", "fault_around", "buffer_mib", "iterations", "converged", "image_bytes", "nonzero_bytes", "bytes_written", "downtime_ms",
              "total_ms", "write_ms", "fsync_ms", "faults", "stall_p50_us", "stall_p99_us", "buffer_waits", "buffer_wait_ms", "zero_unread", "slow_copy_us", "slow_claim_wait_us", "slow_unprotect_us", "rate_before", "rate_during", "rate_during_worst", "protected_ms", "rate_after", "time_lost_ms", "save_mib_s",
              "rss_growth_mib", "pause_ms", "capture_ms", "protect_ms", "qemu_sent_bytes", "error", "host", "kernel", "minivmm"]
    with open(os.path.join(args.out, "snapshot.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
    print_table(rows)


def med(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else float("nan")


def print_table(rows):
    rows = fill_nonzero([dict(r) for r in rows])  # QEMU rows get the guest's non-zero RAM as report.py does; CSV untouched
    print(f"\n{'rate':>8} {'engine':>10} {'img/nz':>7} {'wr/nz':>6} {'down ms':>8} {'total ms':>9} {'write ms':>9} {'p50 us':>7} {'p99 us':>7} "
          f"{'w/s before':>11} {'w/s during':>11} {'during/before':>13} {'RSS+ MiB':>8}")
    keys = []
    for r in rows:
        k = (r["pattern"], r["cpus"], r["rate"], r["engine"])
        if k not in keys:
            keys.append(k)
    for pattern, cpus, rate, engine in keys:
        rs = [r for r in rows if (r["pattern"], r["cpus"], r["rate"], r["engine"]) == (pattern, cpus, rate, engine) and "error" not in r]
        if len({k[0] for k in keys}) > 1 or len({k[1] for k in keys}) > 1:
            engine = f"{engine}/{pattern}/{cpus}cpu"
        if not rs:
            print(f"{rate:>8} {engine:>10}  failed")
            continue
        ratio = statistics.median([r["image_bytes"] / r["nonzero_bytes"] for r in rs])
        written = statistics.median([r["bytes_written"] / r["nonzero_bytes"] for r in rs])
        before, during = med(rs, "rate_before"), med(rs, "rate_during")
        frac = during / before if before == before and before else float("nan")
        print(f"{rate:>8} {engine:>10} {ratio:7.3f} {written:6.2f} {med(rs, 'downtime_ms'):8.2f} {med(rs, 'total_ms'):9.1f} {med(rs, 'write_ms'):9.1f} "
              f"{med(rs, 'stall_p50_us'):7.0f} {med(rs, 'stall_p99_us'):7.0f} {before:11.0f} {during:11.0f} {frac:13.3f} {med(rs, 'rss_growth_mib'):8.1f}")


if __name__ == "__main__":
    main()
