#!/usr/bin/env bash
# Time to /init of the Linux test guest, MiniVmm vs QEMU microvm, one after the other in one run: the same vmlinux,
# initramfs, command line, RAM, a virtio-blk drive and a virtio-rng device. Prints, per VMM, the wall time from start
# to the console's "selftest: init reached" line and to the VM's exit (selftest=boot), and the kernel's own uptime
# at /init. Usage: experiments/linux-init-time.sh MINIVMM_COMMAND [GUEST_DIR]
#   e.g. experiments/linux-init-time.sh "dotnet vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minivmm=${1:?usage: linux-init-time.sh MINIVMM_COMMAND [GUEST_DIR]}
guest=${2:-$root/out/linux-guest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
truncate -s 1M "$work/disk.img"
# What MiniVmm appends by itself (console, TSC rate, its virtio-mmio devices) QEMU is given or adds by itself.
args="panic=-1 pci=off io_delay=none noxsave clearcpuid=cx16,smap,popcnt quiet selftest=boot"

# measure NAME COMMAND...: runs COMMAND with its console on a pipe, stamps the /init line and the end.
measure() {
  local name=$1; shift
  local start; start=$(date +%s.%N)
  "$@" 2>"$work/$name.err" | while IFS= read -r line; do
    case "$line" in *"selftest: init reached"*) echo "$(date +%s.%N) $line" > "$work/$name.init";; esac
    echo "$line" >> "$work/$name.out"
  done
  local end; end=$(date +%s.%N)
  local init; init=$(cut -d' ' -f1 "$work/$name.init" 2>/dev/null || echo "$end")
  printf '%-8s to /init %6.1f s, to exit %6.1f s, %s\n' "$name" "$(echo "$init - $start" | bc)" \
    "$(echo "$end - $start" | bc)" "$(grep -o 'init reached at [0-9.]* s uptime' "$work/$name.out" || echo 'no /init line')"
}

measure minivmm $minivmm run --kernel "$guest/vmlinux" --initrd "$guest/initramfs.cpio" --mem 256M \
  --drive "file=$work/disk.img" --rng --cmdline "$args" --serial stdio
measure qemu bash "$root/firmware/linux/qemu.sh" -d "$work/disk.img" -r -a "$args" "$guest" || true
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared)"
