#!/usr/bin/env bash
# `make demo`: boot the hello guest, then take a live snapshot of a running writer guest, verify it and restore it.
# Usage: experiments/demo.sh "MINIVMM COMMAND" GUEST_DIR OUT_DIR
set -euo pipefail
minivmm=$1 guests=$2 out=$3
mkdir -p "$out"

echo "== 1. boot the hello guest"
$minivmm run --kernel "$guests/hello.elf" --mem 64M
echo "   (exit status $?)"

echo
echo "== 2. a self-checking writer guest (128 MiB buffer, 2M page writes/s); live snapshot after 300 ms"
rm -f "$out/demo.mvs"
$minivmm run --kernel "$guests/writer.elf" --mem 512M --cmdline "mb=128 rate=2000000 sweeps=60 report_ms=250" \
  --snapshot-to "$out/demo.mvs" --snapshot-after 300ms --serial "file:$out/writer-serial.txt" --log-level information
echo "   writer finished; its console:"
sed 's/^/   | /' "$out/writer-serial.txt" | tail -n 4

echo
echo "== 3. inspect and verify the image"
$minivmm snapshot inspect "$out/demo.mvs"
$minivmm snapshot verify "$out/demo.mvs"

echo
echo "== 4. restore it: the writer re-checks every page; exit status 0 means the image was a point-in-time copy"
$minivmm restore "$out/demo.mvs"
echo "   restored guest exited with status $?"
