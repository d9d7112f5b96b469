#!/usr/bin/env python3
"""Turns benchmark CSVs into experiments/REPORT.md and PNG plots (gnuplot).

Usage: report.py RESULTS_DIR [REPORT.md]   (reads snapshot.csv, faultaround.csv, restore.csv, size.csv, restore_size.csv;
writes RESULTS_DIR/plots/ and the report, by default REPORT.md beside RESULTS_DIR)
"""
import csv
import math
import os
import shutil
import statistics
import subprocess
import sys

RATE_ORDER = ["idle", "1000", "10000", "100000", "1000000", "max"]
ENGINES = ["wt", "wt-stream", "wt-rt", "stop-copy", "dirty-log", "dirty-log-bw", "qemu", "qemu-precopy"]
LABEL = {"wt": "MiniVmm write-tracking", "wt-stream": "MiniVmm write-tracking, stream (exec:)", "wt-rt": "MiniVmm write-tracking, real-time fault thread", "stop-copy": "MiniVmm stop-and-copy", "dirty-log": "MiniVmm dirty-log precopy",
         "dirty-log-bw": "MiniVmm dirty-log, 64 MiB/s", "qemu": "QEMU 7.2 background-snapshot", "qemu-precopy": "QEMU 7.2 pre-copy"}


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [r for r in csv.DictReader(f) if not r.get("error")]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def med(rows, key):
    vals = [num(r[key]) for r in rows if not math.isnan(num(r.get(key)))]
    return statistics.median(vals) if vals else math.nan


def ratio_rows(rows, rate, engine):
    return [r for r in rows if r["rate"] == rate and r["engine"] == engine]


def guest_key(r):
    return r.get("mb", ""), r.get("mem_mb", ""), r.get("pattern", ""), r.get("cpus", "")


def fill_nonzero(rows):
    """QEMU rows have no non-zero RAM figure of their own (its page counters include re-sends): use the median that
    MiniVmm's snapshots found for the same guest (buffer size, RAM, pattern, vCPUs), else the buffer size."""
    ref = {}
    for r in rows:
        if num(r.get("nonzero_bytes")) > 0:
            ref.setdefault(guest_key(r), []).append(num(r["nonzero_bytes"]))
    for r in rows:
        if not num(r.get("nonzero_bytes")) > 0:
            vals = ref.get(guest_key(r))
            r["nonzero_bytes"] = statistics.median(vals) if vals else num(r.get("mb")) * (1 << 20)
    return rows


def metric(rows, rate, engine, name):
    rs = ratio_rows(rows, rate, engine)
    if name in ("size", "written"):
        col = "image_bytes" if name == "size" else "bytes_written"
        vals = [num(r[col]) / num(r["nonzero_bytes"]) for r in rs if num(r["nonzero_bytes"]) > 0]
        return statistics.median(vals) if vals else math.nan
    if name == "frac":
        vals = [num(r["rate_during"]) / num(r["rate_before"]) for r in rs if num(r["rate_before"]) > 0 and not math.isnan(num(r["rate_during"]))]
        return statistics.median(vals) if vals else math.nan
    return med(rs, name)


def plot(rows, name, ylabel, out, logy=False):
    rates = [r for r in RATE_ORDER if any(x["rate"] == r for x in rows)]
    data = os.path.join(out, f"{name}.dat")
    with open(data, "w") as f:
        for i, rate in enumerate(rates):
            f.write(f"{i} {rate} " + " ".join(f"{metric(rows, rate, e, name):.6g}" for e in ENGINES) + "\n")
    script = [
        "set terminal pngcairo size 900,520 font ',11'", f"set output '{os.path.join(out, name + '.png')}'",
        "set key outside right top", "set grid ytics", f"set ylabel '{ylabel}'", "set xlabel 'guest page writes/s'",
        "set style data linespoints", "set datafile missing 'nan'",
    ]
    if logy:
        script.append("set logscale y")
    present = [e for e in ENGINES if any(r["engine"] == e for r in rows)]
    cols = ", ".join(f"'{data}' using 1:{ENGINES.index(e) + 3}:xticlabels(2) title '{LABEL[e]}' lw 2 pt {ENGINES.index(e) + 5}" for e in present)
    script.append(f"plot {cols}")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    os.remove(data)


def plot_cdf(stalls, out, main_mb):
    """CDF of host-side write-fault stalls of the write-tracking engine in the main configuration, one curve per rate."""
    curves = []
    stalls = [r for r in stalls if r.get("mb", main_mb) == main_mb and r.get("pattern", "seq") == "seq" and r.get("cpus", "1") == "1"]
    for rate in RATE_ORDER:
        vals = sorted(num(r["stall_us"]) for r in stalls if r["rate"] == rate and r["engine"] == "wt")
        vals = [v for v in vals if v > 0]
        if len(vals) < 5 or len(set(vals)) < 2:
            continue
        data = os.path.join(out, f"cdf-{rate}.dat")
        with open(data, "w") as f:
            step = max(1, len(vals) // 2000)
            for i in range(0, len(vals), step):
                f.write(f"{vals[i]} {(i + 1) / len(vals)}\n")
            f.write(f"{vals[-1]} 1\n")
        curves.append((rate, data))
    if not curves:
        return False
    script = ["set terminal pngcairo size 900,520 font ',11'", f"set output '{os.path.join(out, 'stall_cdf.png')}'",
              "set logscale x", "set grid", "set key bottom right", "set xlabel 'write-fault stall, host side (µs)'",
              "set ylabel 'fraction of faults'",
              "plot " + ", ".join(f"'{d}' using 1:2 with lines lw 2 title 'write-tracking, {r} pages/s'" for r, d in curves)]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    for _, d in curves:
        os.remove(d)
    return True


def dims_table(rows):
    lines = ["| buffer MiB | pattern | vCPUs | rate | engine | downtime ms | total ms | guest w/s before → during → after | converged |",
             "|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r.get("mb", ""), r.get("pattern", ""), r.get("cpus", ""), r["rate"], r["engine"]) for r in rows))
    for key in keys:
        rs = [r for r in rows if (r.get("mb", ""), r.get("pattern", ""), r.get("cpus", ""), r["rate"], r["engine"]) == key]
        conv = {r.get("converged", "") for r in rs} - {""}
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {key[4]} | {med(rs, 'downtime_ms'):.2f} | {med(rs, 'total_ms'):.0f} | "
                     f"{med(rs, 'rate_before'):.0f} → {med(rs, 'rate_during'):.0f} → {med(rs, 'rate_after'):.0f} | {'/'.join(sorted(conv)) or '—'} |")
    return "\n".join(lines)


def converged_text(rs):
    vals = [r.get("converged", "") for r in rs if r.get("converged", "") != ""]
    return f"{sum(v == '1' for v in vals)}/{len(vals)}" if vals else "—"


def table(rows):
    lines = ["| rate | engine | image/non-zero | written/non-zero | converged | downtime ms | total ms (write / +fsync) | stall p50/p99 µs | guest w/s before → during (fraction) | RSS growth MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for rate in [r for r in RATE_ORDER if any(x["rate"] == r for x in rows)]:
        for e in ENGINES:
            rs = ratio_rows(rows, rate, e)
            if not rs:
                continue
            stall = "—" if e.startswith("qemu") or math.isnan(med(rs, "stall_p50_us")) or med(rs, "faults") == 0 else f"{med(rs, 'stall_p50_us'):.0f} / {med(rs, 'stall_p99_us'):.0f}"
            total = f"{med(rs, 'write_ms'):.0f} / {med(rs, 'total_ms'):.0f}" if not e.startswith("qemu") else f"{med(rs, 'total_ms'):.0f} (no fsync)"
            conv = converged_text(rs)
            lines.append(f"| {rate} | {e} | {metric(rows, rate, e, 'size'):.3f} | {metric(rows, rate, e, 'written'):.2f} | {conv} | {med(rs, 'downtime_ms'):.2f} | {total} | {stall} | "
                         f"{med(rs, 'rate_before'):.0f} → {med(rs, 'rate_during'):.0f} ({metric(rows, rate, e, 'frac'):.3f}) | {med(rs, 'rss_growth_mib'):.1f} |")
    return "\n".join(lines)


def loss_table(rows):
    """Per rate and engine: the protected window, the guest time lost in and after it, and the save bandwidth over it."""
    lines = ["| rate | engine | protected window ms | guest time lost ms | save MiB/s (bytes saved / window) |", "|---|---|---|---|---|"]
    for rate in [r for r in RATE_ORDER if any(x["rate"] == r for x in rows)]:
        for e in ENGINES:
            rs = ratio_rows(rows, rate, e)
            if not rs or math.isnan(med(rs, "time_lost_ms")):
                continue
            lines.append(f"| {rate} | {e} | {med(rs, 'protected_ms'):.0f} | {med(rs, 'time_lost_ms'):.0f} | {med(rs, 'save_mib_s'):.0f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def span(values, fmt="{:.2f}"):
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    lo, hi = min(vals), max(vals)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def reading(rows, restore):
    """A short reading whose numbers come from this run's rows (medians per rate), so it never contradicts the tables."""
    if not rows:
        return ["No snapshot rows."]
    rates = [r for r in RATE_ORDER if any(x["rate"] == r for x in rows)]
    have = [e for e in ENGINES if any(r["engine"] == e for r in rows)]

    def per_rate(engine, name):
        return [metric(rows, rate, engine, name) for rate in rates]

    out = []
    wr = {e: per_rate(e, "written") for e in have}
    out.append("- **One copy per page vs. re-sends.** Bytes written / non-zero RAM across rates: " +
               "; ".join(f"{e} {span(wr[e])}" for e in have) +
               ". Write-tracking and stop-and-copy write each page once whatever the rate; the pre-copy engines re-send "
               "what the guest dirtied, so a stream image grows with the write rate (in MiniVmm's page-addressed file a "
               "re-send overwrites its slot, so the file stays at " + span(per_rate("dirty-log", "size") if "dirty-log" in have else [math.nan]) +
               "× but the bytes and time are spent).")
    not_conv = {e: [r for r in rows if r["engine"] == e and r.get("converged") == "0"] for e in have}
    nc = [f"{e} at {', '.join(dict.fromkeys(r['rate'] for r in v))}" for e, v in not_conv.items() if v]
    conv = [e for e in have if any(r["engine"] == e and r.get("converged") == "1" for r in rows) and not not_conv[e]
            and e not in ("qemu",)]
    out.append("- **Convergence** (5 s cap): " + ("; ".join(nc) + " did not converge in some trials" if nc else "no pre-copy trial hit the cap") +
               (f"; {', '.join(conv)} converged every time, paying with the re-sends above and the guest slowdown below." if conv else "."))
    if "qemu" in have and any(num(r["downtime_ms"]) > 0.5 * num(r["total_ms"]) > 0 for r in rows if r["engine"] == "qemu"):
        out.append("- QEMU's background-snapshot sometimes reports a downtime close to its total time while its guest kept "
                   "writing at full rate (rate column): a reporting artefact of QEMU 7.2; the guest rate is the ground truth.")
    if "wt" in have:
        out.append(f"- **Downtime**: write-tracking {span(per_rate('wt', 'downtime_ms'))} ms (median per rate)" +
                   (f"; stop-and-copy {span(per_rate('stop-copy', 'downtime_ms'), '{:.0f}')} ms" if "stop-copy" in have else "") +
                   (f"; dirty-log {span(per_rate('dirty-log', 'downtime_ms'))} ms" if "dirty-log" in have else "") +
                   (f"; QEMU background-snapshot {span(per_rate('qemu', 'downtime_ms'), '{:.0f}')} ms (QEMU reports whole ms)" if "qemu" in have else "") + ".")
    if "max" in rates:
        fr = {e: metric(rows, "max", e, "frac") for e in have}
        out.append("- **Guest throughput at max rate** (write rate during / before the snapshot): " +
                   "; ".join(f"{e} {fr[e]:.3f}" for e in have if not math.isnan(fr[e])) + ".")
    low = [r for r in rates if r not in ("max", "idle")]
    if "wt" in have and low:
        out.append(f"- At paced rates ({', '.join(low)} pages/s) write-tracking keeps the guest at "
                   f"{span([metric(rows, r, 'wt', 'frac') for r in low], '{:.3f}')} of its rate.")
    if "wt" in have and "qemu" in have:
        ratios = [metric(rows, r, "wt", "total_ms") / q for r in rates if (q := metric(rows, r, "qemu", "total_ms")) > 0]
        out.append(f"- **Total time** (MiniVmm incl. fsync, QEMU's `exec:cat` without): write-tracking / QEMU background-snapshot "
                   f"= {span(ratios)} across rates; it is bounded by page-cache writeback on this disk.")
    if restore:
        def first(vmm, mode):
            v = [num(r.get("first_line_ms", "")) for r in restore if r["vmm"] == vmm and r["mode"] == mode]
            v = [x for x in v if not math.isnan(x)]
            return statistics.median(v) if v else math.nan
        modes = [m for m in dict.fromkeys(r["mode"] for r in restore if r["vmm"] == "minivmm") if not math.isnan(first("minivmm", m))]
        q = next((first("qemu", m) for m in dict.fromkeys(r["mode"] for r in restore if r["vmm"] == "qemu")), math.nan)
        out.append("- **Restore**, to the restored guest's first serial line (median, same definition for both VMMs): " + "; ".join(f"{m} {first('minivmm', m):.1f} ms" for m in modes) +
                   (f"; QEMU `-incoming` {q:.0f} ms" if not math.isnan(q) else "") + ".")
    return out


def incremental_section(results):
    """Tables of bench_incremental.py: each link next to the full snapshot of the same VM, restore, tracking cost."""
    inc = load(os.path.join(results, "incremental.csv"))
    if not inc:
        return []
    md = ["## Incremental snapshots (chains)", "",
          "`experiments/bench_incremental.py`: one writer VM per interval (sequential, paced), a full snapshot, then links",
          "every *interval* with `--snapshot-incremental`. A link's changed set is everything written since the previous",
          "link's *freeze*, including what the guest wrote while that snapshot ran, so the achieved fraction is measured per",
          "link (*changed*), not assumed. *size/changed* is bytes on disk over changed pages × 4 KiB. *downtime* is the",
          "freeze pause; *handover* the second pause that gives RAM back to the WP_ASYNC tracker; *guest w/s* is the writer's",
          "rate in the protected window (same definition as above).", "",
          "| interval (% of RAM at the paced rate) | link | kind | changed pages (% RAM) | size/changed | total ms | protected ms | downtime ms | handover ms | guest w/s before → during |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in inc:
        ram = max(num(x["changed_pages"]) for x in inc if x["kind"] == "full")
        md.append(f"| {r['fraction_pct']} | {r['link']} | {r['kind']} | {r['changed_pages']} ({100 * num(r['changed_pages']) / ram:.1f} %) | "
                  f"{r['size_over_changed'] or '—'} | {r['total_ms']} | {r['protected_ms']} | {r['downtime_ms']} | {r['handover_ms']} | "
                  f"{r['rate_before']} → {r['rate_during']} |")
    md.append("")
    rest = load(os.path.join(results, "incremental-restore.csv"))
    if rest:
        md += ["Restore to the guest's first serial line (median, after one warm-up run), the chain's tip against the merged chain:", "",
               "| interval | source | links | mode | first line ms | merge ms |", "|---|---|---|---|---|---|"]
        for r in rest:
            md.append(f"| {r['fraction_pct']} | {r['source']} | {r['links']} | {r['mode']} | {r['first_line_ms_median']} | {r['merge_ms'] or '—'} |")
        md.append("")
    track = load(os.path.join(results, "tracking.csv"))
    if track:
        md += ["Cost of tracking between snapshots: the writer's rate in the second after a snapshot ends, with the WP_ASYNC",
               "tracker holding RAM (after a `--snapshot-incremental` snapshot) against none (after a plain one). Each page's",
               "first write after a snapshot takes one write-protection fault; a sequential writer meets fresh pages all the",
               "time, so this window is the worst case:", "",
               "| writer rate | RAM MiB | untracked w/s | tracked w/s | tracked / untracked |", "|---|---|---|---|---|"]
        for r in track:
            md.append(f"| {r['rate']} | {r['mem_mb']} | {r['untracked_rate']} | {r['tracked_rate']} | {r['tracked_over_untracked']} |")
        md.append("")
    return md


SIZE_ENGINES = ["wt", "qemu"]


def size_rows(rows, engine, mem, rate):
    return [r for r in rows if r["engine"] == engine and r.get("mem_mb") == mem and r["rate"] == rate]


def growth(lo, hi, fmt="{:.1f}"):
    """hi / lo as text ("×N"), or what the two values are when a ratio says nothing (a zero or missing end)."""
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    if lo <= 0:
        return f"{fmt.format(lo)} → {fmt.format(hi)}"
    return f"×{hi / lo:.1f}"


def plot_size(rows, mems, rates, out):
    """Total and downtime (log) against guest RAM (log), one line per engine, metric and rate."""
    data = os.path.join(out, "size_vs_ram.dat")
    cols = [(e, rate, m) for e in SIZE_ENGINES for rate in rates for m in ("total_ms", "downtime_ms")
            if any(size_rows(rows, e, mem, rate) for mem in mems)]
    with open(data, "w") as f:
        for mem in mems:
            f.write(mem + " " + " ".join(f"{med(size_rows(rows, e, mem, rate), m):.6g}" for e, rate, m in cols) + "\n")
    name = {"total_ms": "total", "downtime_ms": "downtime"}
    short = {"wt": "MiniVmm write-tracking", "qemu": "QEMU background-snapshot"}
    # One colour family per engine (dark: 100k/s, light: 1M/s); solid lines total, dashed downtime.
    colour = {("wt", 0): "#1f4e9c", ("wt", 1): "#6baed6", ("qemu", 0): "#b2182b", ("qemu", 1): "#f4a582"}
    script = ["set terminal pngcairo size 900,600 font ',11'", f"set output '{os.path.join(out, 'size_vs_ram.png')}'",
              "set key below horizontal maxcols 2", "set grid",
              f"set xrange [{int(mems[0]) / 1.5:g}:{int(mems[-1]) * 1.5:g}]", "set logscale xy", "set xlabel 'guest RAM (MiB; half of it non-zero)'",
              "set ylabel 'ms'", f"set xtics ({', '.join(mems)})", "set style data linespoints", "set datafile missing 'nan'",
              "plot " + ", ".join(f"'{data}' using 1:{i + 2} title '{short[e]}, {name[m]}, {rate}/s' lw 2 "
                                  f"lc rgb '{colour.get((e, rates.index(rate) % 2), '#444444')}' "
                                  f"dt {1 if m == 'total_ms' else 2} pt {SIZE_ENGINES.index(e) * 2 + 5 + rates.index(rate)}"
                                  for i, (e, rate, m) in enumerate(cols))]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    os.remove(data)


def size_section(results, out):
    """Cost vs guest RAM (bench_size.sh): the snapshot table, its plot, restore to the first line, growth ratios."""
    rows = fill_nonzero(load(os.path.join(results, "size.csv")))
    restore = load(os.path.join(results, "restore_size.csv"))
    if not rows and not restore:
        return []
    mems = sorted({r["mem_mb"] for r in rows + restore if r.get("mem_mb")}, key=int)
    rates = [r for r in RATE_ORDER if any(x["rate"] == r for x in rows)]
    lo, hi = mems[0], mems[-1]
    md = ["## Cost vs guest RAM", "",
          "`experiments/bench_size.sh`: guests of " + ", ".join(f"{m} MiB" for m in mems) + ", the writer's buffer half of RAM",
          "(prefilled, so all of it is non-zero; it starts at 16 MiB, or at 4 GiB, above the 32-bit MMIO hole, where it does",
          "not fit below 3 GiB), sequential, 1 vCPU, MiniVmm write-tracking (file form, fsync included in *total*) against",
          "QEMU 7.2 background-snapshot (`exec:cat`, no fsync) in the same run, one VM at a time. The definitions are those",
          "of the first section: *protected window*, guest rate in it (mean of the 20 ms reports wholly inside it) over the",
          "rate before, *guest time lost*, *save bandwidth* (bytes saved / window), RSS growth of the VMM process."]
    run = os.path.join(results, "size-run.txt")
    if os.path.exists(run):
        kv = dict(line.strip().split("=", 1) for line in open(run) if "=" in line)
        mean_max = kv.get("load1_mean_max_samples", "").split()
        md.append(f"The stage took {int(kv.get('seconds', 0)) / 60:.1f} min; 1-minute load average "
                  f"{kv.get('load_start', '?').split()[0]} at its start, {kv.get('load_end', '?').split()[0]} at its end"
                  + (f", {mean_max[0]} mean and {mean_max[1]} max over {mean_max[2]} samples (10 s apart)" if len(mean_max) == 3 else "")
                  + " on this 2-core machine (shared: read the numbers with that load).")
    if rows:
        reps = max(int(r["rep"]) for r in rows) + 1
        md += ["", f"Medians of up to {reps} trials, fresh VM each; QEMU reports downtime in whole ms.", "",
               "| engine | RAM MiB | non-zero MiB | rate | downtime ms | total ms (write / +fsync) | protected window ms | "
               "guest w/s in window / before (fraction) | guest time lost ms | save MiB/s | RSS growth MiB |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for e in SIZE_ENGINES:
            for mem in mems:
                for rate in rates:
                    rs = size_rows(rows, e, mem, rate)
                    if not rs:
                        continue
                    total = f"{med(rs, 'write_ms'):.0f} / {med(rs, 'total_ms'):.0f}" if e != "qemu" else f"{med(rs, 'total_ms'):.0f} (no fsync)"
                    fr = [num(r["rate_during"]) / num(r["rate_before"]) for r in rs if num(r["rate_before"]) > 0 and not math.isnan(num(r["rate_during"]))]
                    md.append(f"| {e} | {mem} | {med(rs, 'nonzero_bytes') / (1 << 20):.0f} | {rate} | {med(rs, 'downtime_ms'):.2f} | {total} | "
                              f"{med(rs, 'protected_ms'):.0f} | {med(rs, 'rate_during'):.0f} / {med(rs, 'rate_before'):.0f} "
                              f"({statistics.median(fr) if fr else math.nan:.3f}) | {med(rs, 'time_lost_ms'):.0f} | {med(rs, 'save_mib_s'):.0f} | "
                              f"{med(rs, 'rss_growth_mib'):.1f} |")
        if shutil.which("gnuplot"):
            plot_size(rows, mems, rates, out)
            md += ["", "![cost vs guest RAM](results/plots/size_vs_ram.png)"]
        ram_x = int(hi) / int(lo)
        present = [(e, rate) for e in SIZE_ENGINES for rate in rates if size_rows(rows, e, lo, rate) and size_rows(rows, e, hi, rate)]
        if present and lo != hi:
            md += ["", f"**Growth from {lo} MiB to {hi} MiB** (RAM and non-zero RAM ×{int(hi) / int(lo):.0f}): the median at {hi} MiB over",
                   f"the median at {lo} MiB, per engine and rate:", "",
                   "| cost | " + " | ".join(f"{e} {rate}/s" for e, rate in present) + " |", "|---|" + "---|" * len(present)]
            for m, what in [("downtime_ms", "downtime"), ("total_ms", "total"), ("protected_ms", "protected window"),
                            ("time_lost_ms", "guest time lost"), ("save_mib_s", "save bandwidth"), ("rss_growth_mib", "RSS growth")]:
                md.append(f"| {what} | " + " | ".join(growth(med(size_rows(rows, e, lo, rate), m), med(size_rows(rows, e, hi, rate), m))
                                                     for e, rate in present) + " |")
            wt_q = [f"{q / w:.1f} at {rate}/s" for rate in rates
                    if (w := med(size_rows(rows, "wt", hi, rate), "total_ms")) > 0 and (q := med(size_rows(rows, "qemu", hi, rate), "total_ms")) > 0]
            if wt_q:
                md += ["", f"At {hi} MiB, QEMU's total time over write-tracking's (fsync included): " + ", ".join(wt_q) + "."]
    if restore:
        modes = list(dict.fromkeys((r["vmm"], r["mode"]) for r in restore))
        md += ["", "Restore, process start to the restored guest's first serial line (the same definition as in *Restore*",
               "above; each trial stops there, so *RSS* is the VMM's peak resident memory up to that line):", "",
               "| VMM | mode | " + " | ".join(f"{m} MiB: first line ms (min / median), RSS MiB" for m in mems) + f" | median {hi} / {lo} |",
               "|---|---|" + "---|" * len(mems) + "---|"]
        for key in modes:
            cells, meds = [], {}
            for mem in mems:
                rs = [r for r in restore if (r["vmm"], r["mode"]) == key and r.get("mem_mb") == mem]
                v = [num(r["first_line_ms"]) for r in rs if not math.isnan(num(r["first_line_ms"]))]
                meds[mem] = statistics.median(v) if v else math.nan
                cells.append(f"{min(v):.0f} / {meds[mem]:.0f}, {med(rs, 'rss_mib'):.0f}" if v else "—")
            md.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + f" | {growth(meds[lo], meds[hi])} |")
    md.append("")
    return md


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    out = os.path.join(results, "plots")
    os.makedirs(out, exist_ok=True)
    # The main plots and table: sequential writer, 1 vCPU (older CSVs have no pattern/cpus columns).
    all_rows = fill_nonzero(load(os.path.join(results, "snapshot.csv")))
    base = [r for r in all_rows if r.get("pattern", "seq") in ("seq", "") and r.get("cpus", "1") in ("1", "")]
    # The main grid is the buffer size with the most sequential 1-vCPU rows (the working-set runs add a few at max rate).
    sizes = [r.get("mb", "") for r in base]
    main_mb = max(dict.fromkeys(sizes), key=sizes.count, default="")
    rows = [r for r in base if r.get("mb", "") == main_mb]
    other = [r for r in all_rows if r not in rows]
    stalls = load(os.path.join(results, "stalls.csv"))
    if shutil.which("gnuplot") and rows:
        plot(rows, "size", "image size on disk / non-zero RAM", out)
        plot(rows, "written", "bytes written / non-zero RAM (= stream image size)", out, logy=True)
        plot(rows, "total_ms", "total snapshot time (ms)", out, logy=True)
        plot(rows, "downtime_ms", "downtime (ms)", out, logy=True)
        plot(rows, "frac", "guest write rate during / before", out, logy=True)
        plot(rows, "time_lost_ms", "guest time lost in the protected window (ms)", out, logy=True)
    has_cdf = bool(stalls) and shutil.which("gnuplot") and plot_cdf(stalls, out, main_mb)
    fa = load(os.path.join(results, "faultaround.csv"))
    restore = load(os.path.join(results, "restore.csv"))
    md = ["# MiniVmm experiments", "", "Generated by `experiments/report.py` from the CSVs in `experiments/results/`.", ""]
    if rows:
        host = rows[0].get("host", "?"), rows[0].get("kernel", "?")
        host_txt = os.path.join(results, "host.txt")  # written by run.sh: the host setting that moves these numbers most
        host_note = ""
        if os.path.exists(host_txt):
            with open(host_txt) as f:
                host_note = f.read().strip()
        md += [f"## Live snapshot, {main_mb} MiB non-zero guest RAM (512 MiB VM), 1 vCPU, sequential writer", "",
               f"Host {host[0]}, kernel {host[1]}, kvm_pvm; medians of {max(int(r['rep']) for r in rows) + 1} trials, fresh VM each."
               + (f" {host_note[0].upper()}{host_note[1:]}." if host_note else ""), "",
               "Columns: *image/non-zero* is the file on disk (page-addressed: a re-sent page overwrites its slot);",
               "*written/non-zero* is every byte the engine wrote, i.e. the size of a stream (`exec:`) image, where re-sent",
               "pages pile up; *converged* counts trials that converged / all trials (pre-copy engines, capped at 5 s).", "",
               "**How we measure the guest's throughput *during* a snapshot**: over the *protected window* only, the same",
               "definition for every engine and for QEMU: MiniVmm from the freeze to the moment the last page is saved and",
               "un-protected (write-tracking) or the copy ends (stop-copy, dirty-log), as its summary line reports it; QEMU from",
               "`migrate` to `completed`. MiniVmm's fsync after the write phase is *not* in the window (nothing is protected",
               "then) and is reported apart in *total*. The value is the mean of the writer's 20 ms reports that lie wholly",
               "inside the window (the CSV also has the worst report, `rate_during_worst`, and the window, `protected_ms`).", "",
               table(rows), "",
               "**Guest time lost** is the integral of (1 − rate/rate before) over the protected window and on until the",
               "writer is back at 95 % of its rate (at most the 0.5 s after the snapshot), in ms of guest time: a stalled",
               "report counts whole. **Save bandwidth** is the bytes saved (MiniVmm: written to the file; QEMU: its file's",
               "size) over the protected window.", "", loss_table(rows), "",
               "![bytes written](results/plots/written.png)", "![image size](results/plots/size.png)", "![total time](results/plots/total_ms.png)",
               "![downtime](results/plots/downtime_ms.png)", "![guest throughput](results/plots/frac.png)",
               "![guest time lost](results/plots/time_lost_ms.png)", ""]
    limits = load(os.path.join(results, "limits.csv"))
    if limits:
        md += ["### The machine's limits, same run (`host_limits.py`)", "",
               "| limit | MiB/s |", "|---|---|"] + [f"| {r['limit']} | {num(r['mib_s']):.0f} |" for r in limits]
        dd = next((num(r["mib_s"]) for r in limits if r["limit"].startswith("page-cache")), math.nan)
        pipe = next((num(r["mib_s"]) for r in limits if r["limit"].startswith("pipe")), math.nan)
        for e in ("wt", "qemu"):
            rs = ratio_rows(rows, "max", e)
            if rs and not math.isnan(med(rs, "save_mib_s")) and dd > 0:
                md.append(f"\n{e} at max rate saves {med(rs, 'save_mib_s'):.0f} MiB/s over its window: "
                          f"{med(rs, 'save_mib_s') / dd:.2f} of the page-cache write bandwidth.")
        rs = ratio_rows(rows, "max", "wt-stream")
        if rs and not math.isnan(med(rs, "save_mib_s")) and pipe > 0:
            md.append(f"\nwt-stream at max rate saves {med(rs, 'save_mib_s'):.0f} MiB/s over its window: "
                      f"{med(rs, 'save_mib_s') / pipe:.2f} of what `dd | cat > FILE` moves with no guest running.")
        md.append("")
    if has_cdf:
        md += ["### Write-fault stall distribution (write-tracking, the configuration above; every fault of every trial)", "", "![fault stall CDF](results/plots/stall_cdf.png)", ""]
    if other:
        md += ["## Other dimensions (random pattern, 2 vCPUs, other buffer sizes)", "",
               "Under QEMU the writer's second vCPU never starts (QEMU does not run MiniVmm's AP-entry note), so its 2-vCPU rows",
               "run on one vCPU.", "", dims_table(other), ""]
    if fa:
        md += ["## Fault-around block (write-tracking, adaptive growth on)", "",
               "| base block (pages) | rate | faults | stall p50/p99 µs | guest w/s during | downtime ms | total ms |", "|---|---|---|---|---|---|---|"]
        for blk in sorted({int(r["fault_around"]) for r in fa}):
            for rate in ["10000", "max"]:
                rs = [r for r in fa if int(r["fault_around"]) == blk and r["rate"] == rate]
                if rs:
                    md.append(f"| {blk} | {rate} | {med(rs, 'faults'):.0f} | {med(rs, 'stall_p50_us'):.0f} / {med(rs, 'stall_p99_us'):.0f} | "
                              f"{med(rs, 'rate_during'):.0f} | {med(rs, 'downtime_ms'):.2f} | {med(rs, 'total_ms'):.0f} |")
        md.append("")
    if restore:
        md += ["## Restore (256 MiB non-zero, 512 MiB VM)", "",
               "Both VMMs are timed from process start to the restored guest's first serial line and to its first full",
               "sweep; *vCPUs started* is MiniVmm's own log mark (QEMU has none), shown for the start-up breakdown only.", "",
               "| VMM | mode | first guest line ms (min / median) | vCPUs started ms (min / median) | first full sweep ms (min / median) | RSS MiB |",
               "|---|---|---|---|---|---|"]
        for key in dict.fromkeys((r["vmm"], r["mode"]) for r in restore):
            rs = [r for r in restore if (r["vmm"], r["mode"]) == key]
            def mm(k):
                v = [num(r.get(k, "")) for r in rs if not math.isnan(num(r.get(k, "")))]
                return f"{min(v):.1f} / {statistics.median(v):.1f}" if v else "—"
            md.append(f"| {key[0]} | {key[1]} | {mm('first_line_ms')} | {mm('first_instruction_ms')} | {mm('first_sweep_ms')} | {med(rs, 'rss_mib'):.0f} |")
        md.append("")
    md += incremental_section(results)
    md += size_section(results, out)
    boot = os.path.join(results, "boot.txt")
    if os.path.exists(boot):
        md += ["## Boot: process start to exit of the `hello` guest", "", "```", open(boot).read().strip(), "```", ""]
    md += ["## Reading", ""] + reading(rows, restore)
    timing = os.path.join(results, "timing.txt")
    if os.path.exists(timing):
        md += ["", "Run time of this sweep (seconds since the start, per stage): " +
               "; ".join(line.strip() for line in open(timing) if line.strip()) + "."]
    md.append("")
    report = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(results.rstrip("/")), "REPORT.md")
    rel = os.path.relpath(out, os.path.dirname(os.path.abspath(report)))
    md = [line.replace("(results/plots/", f"({rel}/") for line in md]
    with open(report, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
