#!/usr/bin/env bash
# Snapshot to the store vs to a local file, and lazy restore from the store vs from the local file, with the NativeAOT
# binary and the writer guest (256 MiB written). Starts its own gateway (rgw.sh) under a temporary directory.
#   tests/s3/bench.sh [MINIVMM] [GUESTS]      prints one line per measurement (ms)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
M=${1:-out/minivmm}; G=${2:-out/guests}
work=$(mktemp -d); trap 'bash "$here/rgw.sh" stop "$work/rgw" >/dev/null 2>&1; rm -rf "$work"' EXIT
mapfile -t rgw < <(bash "$here/rgw.sh" start "$work/rgw")
export AWS_ENDPOINT_URL=${rgw[0]} AWS_ACCESS_KEY_ID=${rgw[1]} AWS_SECRET_ACCESS_KEY=${rgw[2]}
bash "$here/rgw.sh" bucket "$work/rgw" bench
echo "rgw start: $(cat "$work/rgw/start-time")"
# The writer's first line after a restore: the time from exec to the first "writer:" line on stdout.
first_line() { python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
first = None
for line in p.stdout:
    if first is None and line.startswith(b"writer:"): first = time.monotonic() - t
    if b"done sweeps" in line: break
p.wait()
print(f"first line {first*1000:.0f} ms, to exit {(time.monotonic()-t)*1000:.0f} ms, rc {p.returncode}")
PY
}
for dest in "$work/local.mvs" "s3://bench/vm.mvs"; do
  line=$("$M" run --kernel "$G/writer.elf" --mem 512M --cmdline "mb=256 sweeps=600" --snapshot-to "$dest" \
    --snapshot-after 1s --exit-after-snapshot 2>&1 >/dev/null | grep 'snapshot (')
  echo "snapshot to ${dest##*/}: $line"
done
for src in "$work/local.mvs" "s3://bench/vm.mvs"; do
  echo "lazy restore from ${src##*/}: $(first_line "$M" restore "$src" --memory lazy)"
done
echo "eager restore from the store: $(first_line "$M" restore s3://bench/vm.mvs --memory eager)"
