#!/usr/bin/env bash
# Snapshot to the store vs to a local file, and lazy restore from the store vs from the local file vs downloading the
# object first, and 4 concurrent clones with and without a shared cache, with the NativeAOT binary and the writer
# guest (256 MiB written). Starts its own gateway (rgw.sh) under a temporary directory.
#   tests/s3/bench.sh [MINIVMM] [GUESTS]      prints one line per measurement (ms)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
M=${1:-out/minivmm}; G=${2:-out/guests}
work=$(mktemp -d); trap 'bash "$here/rgw.sh" stop "$work/rgw" >/dev/null 2>&1; rm -rf "$work"' EXIT
mapfile -t rgw < <(bash "$here/rgw.sh" start "$work/rgw")
export AWS_ENDPOINT_URL=${rgw[0]} AWS_ACCESS_KEY_ID=${rgw[1]} AWS_SECRET_ACCESS_KEY=${rgw[2]}
bash "$here/rgw.sh" bucket "$work/rgw" bench
echo "rgw start: $(cat "$work/rgw/start-time")"
# The writer's first line after a restore (the time from exec to the first "writer:" line on stdout) and its first
# full sweep after the restored point (the sweep count G of "writer: gen=G" two above the first one seen: the sweep
# the snapshot interrupted ended, then one whole sweep of the 256 MiB ran). OFFSET_MS is added (a download before).
first_line() { python3 - "$@" <<'PY'
import os, re, subprocess, sys, time
t = time.monotonic() - float(os.environ.get("OFFSET_MS", "0")) / 1000
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
first = sweep = g0 = None
for line in p.stdout:
    if first is None and line.startswith(b"writer:"): first = time.monotonic() - t
    m = re.match(rb"writer: gen=(\d+) ", line)
    if m:
        g = int(m.group(1))
        if g0 is None: g0 = g
        elif sweep is None and g >= g0 + 2: sweep = time.monotonic() - t
    if b"done sweeps" in line: break
    if sweep is not None and os.environ.get("STOP_AFTER_SWEEP"): p.kill(); break
p.wait()
sw = f"{sweep*1000:.0f} ms" if sweep is not None else "n/a"
print(f"first line {first*1000:.0f} ms, first full sweep {sw}, to exit {(time.monotonic()-t)*1000:.0f} ms, rc {p.returncode}")
PY
}
for dest in "$work/local.mvs" "s3://bench/vm.mvs"; do
  line=$("$M" run --kernel "$G/writer.elf" --mem 512M --cmdline "mb=256 sweeps=600 report_ms=5" --snapshot-to "$dest" \
    --snapshot-after 1s --exit-after-snapshot 2>&1 >/dev/null | grep 'snapshot (')
  echo "snapshot to ${dest##*/}: $line"
done
for src in "$work/local.mvs" "s3://bench/vm.mvs"; do
  echo "lazy restore from ${src##*/}: $(STOP_AFTER_SWEEP=1 first_line "$M" restore "$src" --memory lazy)"
done
echo "eager restore from the store: $(STOP_AFTER_SWEEP=1 first_line "$M" restore s3://bench/vm.mvs --memory eager)"
# Downloading the whole object first (one GET, curl's SigV4), then a lazy restore of the local copy.
port=${AWS_ENDPOINT_URL##*:}
t0=$(date +%s%N)
curl -s -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o "$work/downloaded.mvs" "http://127.0.0.1:$port/bench/vm.mvs"
dl_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
size=$(stat -c %s "$work/downloaded.mvs")
echo "download of the object: $dl_ms ms ($size bytes, $(( size / 1048576 * 1000 / (dl_ms > 0 ? dl_ms : 1) )) MiB/s)"
echo "download, then lazy restore of the copy: $(STOP_AFTER_SWEEP=1 OFFSET_MS=$dl_ms first_line "$M" restore "$work/downloaded.mvs" --memory lazy)"
# Four clones of one object at once, without and with a shared block cache (the wall time until all four exited).
clones() {
  local t0 rc=0 pids=(); t0=$(date +%s%N)
  for i in 1 2 3 4; do "$M" restore s3://bench/vm.mvs --memory lazy --serial none "$@" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms (rc $rc)"
}
echo "4 clones at once, no cache: $(clones)"
rm -rf "$work/cache"
echo "4 clones at once, shared --cache-dir (cold): $(clones --cache-dir "$work/cache")"
echo "4 clones at once, shared --cache-dir (warm): $(clones --cache-dir "$work/cache")"
