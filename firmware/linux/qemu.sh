#!/usr/bin/env bash
# Boots the Linux test guest under QEMU microvm, the reference MiniVmm is compared with (README "Linux test guest").
# Usage: qemu.sh [-d DISK.img] [-r] [-a 'EXTRA KERNEL ARGS'] [GUEST_DIR]   (default out/linux-guest)
#   -d  a raw image as a virtio-blk drive (/dev/vda); -r  a virtio-rng device; -a  appended to the command line,
#   e.g. -a 'selftest=boot,rng'. Exits with the guest's self-test result (QEMU's (N<<1)|1 undone), 125 otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
disk='' rng=0 extra=''
while getopts 'd:ra:' opt; do
  case "$opt" in d) disk=$OPTARG;; r) rng=1;; a) extra=$OPTARG;; *) exit 120;; esac
done
shift $((OPTIND - 1))
guest=${1:-$root/out/linux-guest}
[ -f "$guest/vmlinux" ] && [ -f "$guest/initramfs.cpio" ] || { echo "qemu.sh: no guest in $guest (make linux-guest)" >&2; exit 120; }

# The same command line the integration tests give MiniVmm; see README "Linux test guest" for each word.
tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
cmdline="console=ttyS0 panic=-1 pci=off io_delay=none noxsave clearcpuid=cx16,smap,popcnt tsc_early_khz=$tsc_khz $extra"
# acpi=off: the kernel has no ACPI, and only without it does microvm announce its virtio-mmio devices on the command line.
args=(-M microvm,acpi=off -cpu host,-arch-capabilities -enable-kvm -m 256M -nographic -no-reboot
      -kernel "$guest/vmlinux" -initrd "$guest/initramfs.cpio" -append "$cmdline"
      -device isa-debug-exit,iobase=0xf4,iosize=4)
[ -n "$disk" ] && args+=(-drive "id=vda,file=$disk,format=raw,if=none" -device virtio-blk-device,drive=vda)
[ "$rng" = 1 ] && args+=(-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0)
set +e
qemu-system-x86_64 "${args[@]}"
rc=$?
set -e
# isa-debug-exit makes QEMU exit with (N<<1)|1; anything else (0 after poweroff, a crash) is not a self-test result.
if [ $((rc & 1)) = 1 ]; then exit $((rc >> 1)); fi
echo "qemu.sh: QEMU exited with $rc without a self-test result" >&2
exit 125
