#!/usr/bin/env bash
# `make demo`: boot the hello guest, then take a live snapshot of a running writer guest, verify it and restore it.
# Usage: experiments/demo.sh MINIVMM GUEST_DIR OUT_DIR   (make demo passes the NativeAOT binary, out/minivmm: the
# build the README's numbers come from; the JIT build's first snapshot is slower while its code is compiled)
set -uo pipefail
minivmm=$1 guests=$2 out=$3
mkdir -p "$out"
failed=0
# Runs a command, prints its real exit status, and remembers a failure for the demo's own exit status.
step() {
  local status=0
  "$@" || status=$?
  echo "   (exit status $status)"
  [ "$status" -eq 0 ] || failed=1
}

echo "== 1. boot the hello guest"
step $minivmm run --kernel "$guests/hello.elf" --mem 64M

echo
echo "== 2. a self-checking writer guest (128 MiB buffer, 2M page writes/s); live snapshot after 300 ms"
rm -f "$out/demo.mvs"
step $minivmm run --kernel "$guests/writer.elf" --mem 512M --cmdline "mb=128 rate=2000000 sweeps=60 report_ms=250" \
  --snapshot-to "$out/demo.mvs" --snapshot-after 300ms --serial "file:$out/writer-serial.txt"
echo "   writer finished; its console:"
sed 's/^/   | /' "$out/writer-serial.txt" | tail -n 4
echo "   The summary line above: downtime is how long the vCPUs were stopped (the README reports 0.3-0.5 ms for the"
echo "   NativeAOT build on its 2-core test host); each page was written once ('pages saved' = non-zero pages)."

echo
echo "== 3. inspect and verify the image (a sparse file: ls shows its size, du the disk it uses)"
step $minivmm snapshot inspect "$out/demo.mvs"
step $minivmm snapshot verify "$out/demo.mvs"
ls -l "$out/demo.mvs" | awk '{print "   ls: " $5 " bytes"}'
du -k "$out/demo.mvs" | awk '{print "   du: " $1 " KiB on disk"}'

echo
echo "== 4. restore it: the writer re-checks every page; exit status 0 means the image was a point-in-time copy"
step $minivmm restore "$out/demo.mvs"
exit $failed
