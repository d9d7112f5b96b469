#!/usr/bin/env bash
# Process start to guest exit for `hello`: MiniVmm (published NativeAOT binary) vs QEMU microvm, same run.
# Usage: experiments/bench-boot.sh OUT/minivmm GUEST_DIR [REPS]
set -euo pipefail
minivmm=$1 guests=$2 reps=${3:-20}
. "$(dirname "$0")/need.sh"
need qemu-system-x86_64 qemu-system-x86

time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
stats() { sort -n | awk '{a[NR]=$1} END {printf "min %.2f ms  median %.2f ms  (n=%d)\n", a[1]/1000, (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000, NR}'; }

echo "hello guest, process start to exit, $reps runs each, $(nproc) cores, $(uname -r)"
printf 'minivmm: '; for i in $(seq "$reps"); do time_ms "$minivmm" run --kernel "$guests/hello.elf" --mem 64M; done | stats
printf 'qemu:    '; for i in $(seq "$reps"); do time_ms qemu-system-x86_64 -M microvm -enable-kvm -cpu host,-arch-capabilities -m 64M -nodefaults -no-user-config -nographic -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$guests/hello.elf"; done | stats
