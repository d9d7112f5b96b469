#!/usr/bin/env bash
# The Linux test guest's benchmark (a note, not a timed test), one run, MiniVmm and QEMU microvm one after the other
# on the same vmlinux, initramfs, command line and RAM:
#   1. time to /init: wall time from start to the console's "selftest: init reached" line and to the VM's exit
#      (selftest=boot), and the kernel's own uptime at /init;
#   2. virtio-blk throughput from inside Linux: /init's blk-speed check (direct I/O, 64 KiB requests, past the page
#      cache) on a raw image, write then read;
#   3. MiniVmm only: a live snapshot of the running guest while /init writes to RAM and disk (selftest=snapshot),
#      its downtime, protected window and total from --snapshot-stats, then the wall time of a lazy restore until
#      the restored guest has verified its rounds and exited. QEMU has no counterpart here (its guest has no control
#      port to ask for a snapshot at the same point), so these numbers are not a comparison.
# Usage: experiments/linux-bench.sh MINIVMM_COMMAND [GUEST_DIR]
#   e.g. experiments/linux-bench.sh "dotnet vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minivmm=${1:?usage: linux-bench.sh MINIVMM_COMMAND [GUEST_DIR]}
guest=${2:-$root/out/linux-guest}
speed_kib=${SPEED_KIB:-2048}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# What MiniVmm appends by itself (console, TSC rate, its virtio-mmio devices) QEMU is given or adds by itself.
base="panic=-1 pci=off io_delay=none noxsave clearcpuid=cx16,smap,popcnt quiet"

# measure NAME COMMAND...: runs COMMAND with its console on a pipe, stamps the /init line and the end.
measure() {
  local name=$1; shift
  local start; start=$(date +%s.%N)
  "$@" 2>"$work/$name.err" | while IFS= read -r line; do
    case "$line" in *"selftest: init reached"*) echo "$(date +%s.%N) $line" > "$work/$name.init";; esac
    echo "$line" >> "$work/$name.out"
  done || true
  local end; end=$(date +%s.%N)
  local init; init=$(cut -d' ' -f1 "$work/$name.init" 2>/dev/null || echo "$end")
  printf '%-16s to /init %6.1f s, to exit %6.1f s, %s\n' "$name" "$(echo "$init - $start" | bc)" \
    "$(echo "$end - $start" | bc)" "$(grep -o 'init reached at [0-9.]* s uptime' "$work/$name.out" || echo 'no /init line')"
}

minivmm_run() { $minivmm run --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio" --mem 256M --serial stdio "$@"; }

echo "== time to /init (selftest=boot)"
truncate -s 1M "$work/boot.img"
measure minivmm minivmm_run --drive "file=$work/boot.img" --rng --cmdline "$base selftest=boot"
measure qemu bash "$root/firmware/linux/qemu.sh" -d "$work/boot.img" -r -a "$base selftest=boot" "$guest"

echo "== virtio-blk from inside Linux (selftest=blk-speed, $speed_kib KiB, direct I/O)"
for vmm in minivmm qemu; do
  truncate -s $(( (speed_kib + 2048) * 1024 )) "$work/speed.img"
  if [ "$vmm" = minivmm ]; then
    measure minivmm-blk minivmm_run --drive "file=$work/speed.img" --cmdline "$base selftest=blk-speed blkspeed=$speed_kib" >/dev/null
  else
    measure qemu-blk bash "$root/firmware/linux/qemu.sh" -d "$work/speed.img" -a "$base selftest=blk-speed blkspeed=$speed_kib" "$guest" >/dev/null
  fi
  printf '%-16s %s\n' "$vmm" "$(grep -o 'blk-speed [a-z]*: .*' "$work/$vmm-blk.out" || echo 'no blk-speed line')"
done

echo "== MiniVmm: live snapshot of the running guest (selftest=snapshot rounds=8), then a lazy restore"
truncate -s 1M "$work/snap.img"
measure minivmm-snapshot minivmm_run --drive "file=$work/snap.img" --cmdline "$base selftest=snapshot rounds=8" \
  --snapshot-to "$work/linux.mvs" --exit-after-snapshot --snapshot-stats "$work/stats.json" >/dev/null
python3 - "$work/stats.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    s = json.loads(line)
    print(f"snapshot         {s['engine']}: {s['pages-saved']} pages saved, downtime {s['downtime-ms']:.2f} ms, "
          f"protected window {s['protected-window-ms']:.0f} ms, total {s['total-ms']:.0f} ms (fsync {s['fsync-ms']:.0f} ms), "
          f"{s['faults-served']} write faults, stall p99 {s['fault-stall-p99-us']} us")
PY
start=$(date +%s.%N)
$minivmm restore "$work/linux.mvs" --memory lazy --drive-from-snapshot --serial stdio > "$work/restore.out" 2>&1 || true
end=$(date +%s.%N)
printf 'lazy restore     to exit %.1f s, %s\n' "$(echo "$end - $start" | bc)" \
  "$(grep -o 'selftest: snapshot [a-z]*: .*' "$work/restore.out" || echo 'no snapshot result line')"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared)"
