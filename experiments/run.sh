#!/usr/bin/env bash
# `make experiments`: the snapshot and restore experiments side by side with QEMU, then REPORT.md and plots.
# Usage: experiments/run.sh MINIVMM GUEST_DIR [--quick]
#   full (about 20 min on 2 cores: 12.5 min before the size stage, see results/timing.txt, plus the size stage, 7.5 min
#   measured alone at a 1-minute load average of 7.4 mean, results/size-run.txt): all rates x engines (MiniVmm
#   write-tracking, stop-copy, dirty-log unlimited and 64 MiB/s, QEMU background-snapshot and pre-copy; pre-copy capped
#   at 5 s), 2 reps; random pattern (1 and 2 vCPUs) and sequential on 2 vCPUs at 10k and max; 64 and 448 MiB buffers at
#   max; the fault-around sweep; restore modes; boot; incremental chains; cost vs guest RAM (512 MiB, 2 and 8 GiB guests,
#   write-tracking and QEMU background-snapshot, bench_size.sh; needs ~5 GiB of free host RAM and ~9 GiB of disk).
#   --quick (~25 s plus the build): a smoke run of the same pipeline, without the size stage.
set -euo pipefail
minivmm=$1 guests=$2 quick=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
results=$here/results
[ "$quick" = "--quick" ] && results=$here/results-quick   # a smoke run never overwrites the committed results
mkdir -p "$results"
. "$here/need.sh"
need qemu-system-x86_64 qemu-system-x86
need python3 python3
need gnuplot gnuplot-nox optional || echo "   (REPORT.md is written without plots)" >&2
tmp=$(mktemp -d)
trap 'python3 "$here/page_reporting.py" restore "$tmp/page-reporting"; rm -rf "$tmp"' EXIT
# Free page reporting makes a fresh allocation cost whatever the hypervisor below charges for it, trial by trial: held
# off for the run unless MINIVMM_BENCH_KEEP_PAGE_REPORTING=1 (docs/DESIGN-NOTES.md, "Free page reporting ...").
if [ "${MINIVMM_BENCH_KEEP_PAGE_REPORTING:-0}" != 1 ]; then
  python3 "$here/page_reporting.py" off "$tmp/page-reporting" >&2
fi
python3 "$here/page_reporting.py" describe > "$results/host.txt"
engines=wt,wt-stream,wt-rt,stop-copy,dirty-log,dirty-log-bw,qemu,qemu-precopy
t0=$SECONDS
stage() { echo "$1: $((SECONDS - t0)) s" | tee -a "$results/timing.txt" >&2; }
: > "$results/timing.txt"
# The machine's memcpy and page-cache write bandwidth, in the directory the snapshots go to, for the report.
python3 "$here/host_limits.py" "$results" --dir "$tmp" --reps "$([ "$quick" = "--quick" ] && echo 1 || echo 3)"
stage limits
if [ "$quick" = "--quick" ]; then
  python3 "$here/bench_snapshot.py" "$minivmm" "$guests" "$tmp/main" --quick --engines wt,dirty-log,qemu
  cp "$tmp/main/snapshot.csv" "$tmp/main/stalls.csv" "$results/"
  stage snapshot
  python3 "$here/bench_incremental.py" "$minivmm" "$guests" "$results" --quick
  stage incremental
else
  snap() { python3 "$here/bench_snapshot.py" "$minivmm" "$guests" "$@"; }
  snap "$tmp/main" --reps 2 --engines "$engines"; stage "main grid"
  # Other dimensions at a low and the highest rate, against the engines that differ most.
  snap "$tmp/rand" --reps 2 --engines wt,dirty-log,qemu --rates 10000,max --patterns rand --cpus 1,2
  snap "$tmp/cpu2" --reps 2 --engines wt,dirty-log,qemu --rates 10000,max --patterns seq --cpus 2
  snap "$tmp/ws" --reps 2 --engines wt,dirty-log,qemu --rates max --mbs 64,448; stage "pattern/vCPU/working-set"
  parts="main rand cpu2 ws"
  { head -1 "$tmp/main/snapshot.csv"; for p in $parts; do tail -n +2 "$tmp/$p/snapshot.csv"; done; } > "$results/snapshot.csv"
  { head -1 "$tmp/main/stalls.csv"; for p in $parts; do tail -n +2 "$tmp/$p/stalls.csv"; done; } > "$results/stalls.csv"
  for fa in 1 16 64 512; do
    snap "$tmp/fa$fa" --rates max,10000 --engines wt --reps 1 --fault-around $fa
  done
  { head -1 "$tmp/fa1/snapshot.csv"; for fa in 1 16 64 512; do tail -n +2 "$tmp/fa$fa/snapshot.csv"; done; } > "$results/faultaround.csv"
  stage "fault-around"
  python3 "$here/bench_restore.py" "$minivmm" "$guests" "$tmp/restore" --reps 3
  cp "$tmp/restore/restore.csv" "$results/restore.csv"
  stage restore
  bash "$here/bench-boot.sh" "$minivmm" "$guests" 20 > "$results/boot.txt"
  stage boot
  python3 "$here/bench_incremental.py" "$minivmm" "$guests" "$results"
  stage incremental
  bash "$here/bench_size.sh" "$minivmm" "$guests" "$results"
  stage size
fi
if [ "$quick" = "--quick" ]; then report=$results/REPORT.md; else report=$here/REPORT.md; fi
python3 "$here/report.py" "$results" "$report"
echo "report: $report"
