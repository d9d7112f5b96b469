#!/usr/bin/env bash
# Cost vs guest RAM (run.sh's `size` stage; also runs alone): 512 MiB, 2 GiB and 8 GiB guests, the writer's buffer half
# of RAM (all of it non-zero), MiniVmm write-tracking and QEMU 7.2 background-snapshot on the same writer guest, then
# restore to the first guest line for the same sizes. One VM at a time, so an 8 GiB guest costs the host ~4 GiB of RAM
# for its VM plus its image in the page cache; every image is deleted after its trial (at most two 4 GiB images exist
# at once, during the restore runs).
# Usage: experiments/bench_size.sh MINIVMM GUEST_DIR RESULTS_DIR
# Writes RESULTS_DIR/size.csv, restore_size.csv and size-run.txt (duration and load averages, for the report).
set -euo pipefail
minivmm=$1 guests=$2 results=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
sampler=
trap '[ -n "$sampler" ] && kill "$sampler" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$results"
t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# The 1-minute load average every 10 s: the machine is shared, so every number is published next to it.
( while sleep 10; do cut -d' ' -f1 /proc/loadavg; done ) > "$tmp/load" &
sampler=$!
# RAM:buffer in MiB. 512:256 is the main grid's guest, so the table shows growth from the configuration of the rest
# of the report.
sizes="512:256 2048:1024 8192:4096"
for size in $sizes; do
  mem=${size%:*} mb=${size#*:}
  python3 "$here/bench_snapshot.py" "$minivmm" "$guests" "$tmp/s$mem" --mem-mb "$mem" --mb "$mb" \
    --engines wt,qemu --rates 100000,1000000 --reps 2
  # Until the first line: a whole sweep of a 4 GiB buffer through lazy or mmap restore would add seconds per trial.
  # No mmap clones: four clones of an 8 GiB guest would each copy what its writer dirties.
  python3 "$here/bench_restore.py" "$minivmm" "$guests" "$tmp/r$mem" --mem-mb "$mem" --mb "$mb" --reps 3 --until line --no-clones
  echo "size $mem MiB: $((SECONDS - t0)) s, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done
first=${sizes%% *}; first=${first%:*}
{ head -1 "$tmp/s$first/snapshot.csv"; for size in $sizes; do tail -n +2 "$tmp/s${size%:*}/snapshot.csv"; done; } > "$results/size.csv"
{ head -1 "$tmp/r$first/restore.csv"; for size in $sizes; do tail -n +2 "$tmp/r${size%:*}/restore.csv"; done; } > "$results/restore_size.csv"
kill "$sampler"; sampler=
load1=$(awk '{ s += $1; if ($1 > m) m = $1 } END { if (NR) printf "%.2f %.2f %d", s / NR, m, NR }' "$tmp/load")
printf 'seconds=%s\nload_start=%s\nload_end=%s\nload1_mean_max_samples=%s\n' "$((SECONDS - t0))" "$load0" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$load1" > "$results/size-run.txt"
