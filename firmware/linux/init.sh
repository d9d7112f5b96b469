#!/bin/busybox sh
# /init of MiniVmm's Linux test guest (busybox initramfs built by build.sh).
#
# Runs the checks named on the kernel command line, `selftest=CHECK[,CHECK...]` (default: boot), prints one
# `selftest: CHECK pass|fail: detail` line per check on the console (ttyS0), then a last line
# `selftest: result N` and writes N to the debug-exit port 0xF4 (0 all passed, 1 a check failed, 2 unknown check).
# MiniVmm exits with N; QEMU with -device isa-debug-exit,iobase=0xf4,iosize=4 exits with (N<<1)|1.
# Checks:
#   boot       proc/sysfs/devtmpfs mounted, the console and the kernel version visible
#   blk-write  fills the data area of /dev/vda (from offset 4096) with random bytes and writes their sha256 in sector 0
#   blk-check  recomputes the data area's sha256 and compares it with the one in sector 0 (written by an earlier boot)
#   rng        /dev/hwrng is backed by virtio-rng and two reads differ and are not all zeros
#   blk-speed  writes then reads blkspeed=KIB (default 2048) KiB of /dev/vda from offset 1 MiB in 64 KiB direct I/O
#              requests (past the page cache, so every byte crosses the virtio queue) and prints both rates in KiB/s;
#              it fails only when the data read back differs (a benchmark line, not a timed check)
#   snapshot   writes rounds of data to RAM and /dev/vda, asks the VMM for a snapshot through the control port 0x520
#              in the middle, waits until it is taken, writes more rounds (while a live snapshot runs) and verifies
#              every round in RAM and, read past the page cache, on disk (a restored copy resumes in the middle and
#              verifies the same, so it proves RAM and disk came back as they were at the freeze)
# Sizes: blkdata=KIB (default 256) for the blk checks, rounds=N (default 8) for snapshot.
# This host's KVM (kvm_pvm) now and then starts a process whose first instructions crash (SIGSEGV in glibc's start-up,
# the same address under QEMU as under MiniVmm; docs/DESIGN-NOTES.md). Only exec'd busybox applets are exposed, so
# this script uses shell built-ins where it can, and a step that fails while the kernel logged such a crash runs again
# (at most 5 tries, with a `selftest: note:` line). A failure without a crash is final.
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

say() { echo "selftest: $*"; }
note() { echo "selftest: note: $*" >&2; }
uptime_s() { read -r up _ < /proc/uptime; echo "$up"; }
say "init reached at $(uptime_s) s uptime"
read -r CMDLINE < /proc/cmdline

# crashes: how many process crashes the kernel has logged (empty when counting them crashed too).
crashes() { dmesg 2>/dev/null | grep -c 'segfault at'; }

# again CMD...: runs CMD; when it fails and the kernel logged a crash meanwhile (or could not be asked), runs it again.
again() {
  tries=1
  while :; do
    before=$(crashes)
    "$@" && return 0
    after=$(crashes)
    if [ "$tries" -ge 5 ] || { [ -n "$after" ] && [ "$after" = "$before" ]; }; then return 1; fi
    note "a process crashed during '$*' (this host's emulator); running it again"
    tries=$((tries + 1))
  done
}

# port_write PORT VALUE: one byte to an I/O port through /dev/port.
port_write() { printf "\\$(printf %o "$2")" | dd of=/dev/port bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null; }
# port_read PORT: one byte from an I/O port, as a decimal number (empty when a helper crashed).
port_read() { dd if=/dev/port bs=1 skip="$1" count=1 2>/dev/null | od -An -tu1 | tr -d ' '; }

arg() { # arg NAME DEFAULT: the value of NAME= on the kernel command line
  for w in $CMDLINE; do case "$w" in "$1"=*) echo "${w#*=}"; return;; esac; done; echo "$2"
}

# Each check sets $detail and returns 0 (pass) or 1 (fail); run_check prints the line and retries crashed ones.
failed=0
run_check() {
  detail=''
  if again "$2"; then say "$1 pass: $detail"; else say "$1 fail: $detail"; failed=1; fi
}

check_boot() {
  [ -r /proc/version ] || { detail="no /proc/version"; return 1; }
  [ -d /sys/class ] || { detail="no sysfs"; return 1; }
  [ -c /dev/console ] || { detail="no /dev/console"; return 1; }
  read -r w1 w2 w3 _ < /proc/version
  cpus=$(grep -c ^processor /proc/cpuinfo)
  [ -n "$cpus" ] || { detail="cannot count the cpus"; return 1; }
  detail="$w1 $w2 $w3, $cpus cpu(s)"
}

blk_sum() { # sha256 of the data area: KIB KiB from offset 4096
  dd if=/dev/vda bs=4096 skip=1 count=$(($1 / 4)) 2>/dev/null | sha256sum | cut -d' ' -f1
}

check_blk_write() {
  kib=$(arg blkdata 256)
  [ -b /dev/vda ] || { detail="no /dev/vda"; return 1; }
  dd if=/dev/urandom of=/tmp/data bs=1024 count="$kib" 2>/dev/null || { detail="no random data"; return 1; }
  dd if=/tmp/data of=/dev/vda bs=4096 seek=1 conv=notrunc,fsync 2>/dev/null || { detail="write failed"; return 1; }
  want=$(sha256sum /tmp/data | cut -d' ' -f1)
  [ ${#want} = 64 ] || { detail="no checksum of the data"; return 1; }
  printf 'minivmm-selftest %s %s\n' "$kib" "$want" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc,fsync 2>/dev/null ||
    { detail="record write failed"; return 1; }
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  got=$(blk_sum "$kib")
  rm -f /tmp/data
  [ "$got" = "$want" ] || { detail="read back $got, wrote $want"; return 1; }
  detail="$kib KiB sha256 $want"
}

check_blk_check() {
  [ -b /dev/vda ] || { detail="no /dev/vda"; return 1; }
  set -- $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n 1)
  [ "$1" = minivmm-selftest ] || { detail="sector 0 has no checksum record"; return 1; }
  got=$(blk_sum "$2")
  [ "$got" = "$3" ] || { detail="data sha256 $got, record says $3"; return 1; }
  detail="$2 KiB sha256 $got"
}

check_rng() {
  cur=""; read -r cur 2>/dev/null < /sys/class/misc/hw_random/rng_current
  case "$cur" in virtio_rng*) ;; *) detail="rng_current is '$cur'"; return 1;; esac
  a=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  b=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  zeros=0000000000000000000000000000000000000000000000000000000000000000
  if [ ${#a} -ne 64 ] || [ ${#b} -ne 64 ]; then detail="short read ('$a' '$b')"; return 1; fi
  if [ "$a" = "$zeros" ] || [ "$a" = "$b" ]; then detail="not random: $a $b"; return 1; fi
  detail="$cur: $a"
}

centis() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}"; }  # uptime in centiseconds

check_blk_speed() {
  kib=$(arg blkspeed 2048)
  [ -b /dev/vda ] || { detail="no /dev/vda"; return 1; }
  dd if=/dev/urandom of=/tmp/speed bs=1024 count="$kib" 2>/dev/null || { detail="no random data"; return 1; }
  t0=$(centis)
  dd if=/tmp/speed of=/dev/vda bs=65536 seek=16 count=$((kib / 64)) conv=notrunc,fsync oflag=direct 2>/dev/null ||
    { detail="write failed"; return 1; }
  t1=$(centis)
  got=$(dd if=/dev/vda bs=65536 skip=16 count=$((kib / 64)) iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
  t2=$(centis)
  want=$(sha256sum /tmp/speed | cut -d' ' -f1)
  rm -f /tmp/speed
  [ ${#want} = 64 ] && [ "$got" = "$want" ] || { detail="read back $got, wrote $want"; return 1; }
  # +1 centisecond: a rate, never a division by zero on a fast host
  detail="$kib KiB write $((kib * 100 / (t1 - t0 + 1))) KiB/s read $((kib * 100 / (t2 - t1 + 1))) KiB/s"
}

round() { # round N: 64 KiB of data for round N in RAM (/tmp) and at disk block N (64 KiB blocks from 64 KiB)
  dd if=/dev/urandom of=/tmp/round.$1 bs=1024 count=64 2>/dev/null || return 1
  sum=$(sha256sum /tmp/round.$1 | cut -d' ' -f1)
  [ ${#sum} = 64 ] || return 1
  echo "$sum" > /tmp/round.$1.sum
  dd if=/tmp/round.$1 of=/dev/vda bs=65536 seek="$1" count=1 conv=notrunc,fsync oflag=direct 2>/dev/null
}

verify_rounds() { # verify_rounds N: every round 1..N intact in RAM and on disk; sets $detail on failure
  i=1
  while [ "$i" -le "$1" ]; do
    read -r want < /tmp/round.$i.sum
    [ "$(sha256sum /tmp/round.$i | cut -d' ' -f1)" = "$want" ] || { detail="round $i RAM copy differs"; return 1; }
    disk=$(dd if=/dev/vda bs=65536 skip="$i" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
    [ "$disk" = "$want" ] || { detail="round $i disk copy differs"; return 1; }
    i=$((i + 1))
  done
}

# Not retried as a whole (it asks for a snapshot); its steps are.
check_snapshot() {
  n=$(arg rounds 8)
  [ -b /dev/vda ] || { say "snapshot fail: no /dev/vda"; failed=1; return; }
  r=1
  while [ "$r" -le $((n / 2)) ]; do again round "$r" || { say "snapshot fail: round $r not written"; failed=1; return; }; r=$((r + 1)); done
  say "snapshot: requesting after $((n / 2)) rounds"
  again port_write 1312 1 || { say "snapshot fail: the request did not reach the control port"; failed=1; return; }
  # Status 0 until the VMM takes the request, then 1 (running: a live snapshot runs while the guest writes on),
  # 2 done, 3 failed. A restored copy resumes here and reads the status frozen with it (1). An empty read is a
  # crashed helper: read again.
  status=0 tries=0
  while { [ "$status" = 0 ] || [ -z "$status" ]; } && [ "$tries" -lt 60 ]; do sleep 1; status=$(port_read 1312); tries=$((tries + 1)); done
  say "snapshot: control port status $status"
  case "$status" in 1|2) ;; *) say "snapshot fail: control port status $status (1 running, 2 done)"; failed=1; return;; esac
  while [ "$r" -le "$n" ]; do again round "$r" || { say "snapshot fail: round $r not written"; failed=1; return; }; r=$((r + 1)); done
  say "snapshot: $n rounds written"
  detail=''
  if again verify_rounds "$n"; then say "snapshot pass: $n rounds intact in RAM and on disk"; else say "snapshot fail: $detail"; failed=1; fi
}

checks=$(arg selftest boot)
old_ifs=$IFS; IFS=,; set -- $checks; IFS=$old_ifs
for check in "$@"; do
  case "$check" in
    boot) run_check boot check_boot;; blk-write) run_check blk-write check_blk_write;;
    blk-check) run_check blk-check check_blk_check;; rng) run_check rng check_rng;;
    blk-speed) run_check blk-speed check_blk_speed;;
    snapshot) check_snapshot;;
    *) say "$check fail: unknown check"; [ "$failed" = 0 ] && failed=2;;
  esac
done

say "result $failed"
again port_write 244 "$failed"
# No debug-exit device (a plain QEMU run): halt instead of returning, which would panic the kernel.
poweroff -f
