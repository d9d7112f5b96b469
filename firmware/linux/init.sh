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
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

say() { echo "selftest: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
say "init reached at $(uptime_s) s uptime"

# port_write PORT VALUE: one byte to an I/O port through /dev/port.
port_write() { printf "\\$(printf %o "$2")" | dd of=/dev/port bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null; }
# port_read PORT: one byte from an I/O port, as a decimal number.
port_read() { dd if=/dev/port bs=1 skip="$1" count=1 2>/dev/null | od -An -tu1 | tr -d ' '; }

arg() { # arg NAME DEFAULT: the value of NAME= on the kernel command line
  for w in $(cat /proc/cmdline); do case "$w" in "$1"=*) echo "${w#*=}"; return;; esac; done; echo "$2"
}

failed=0
pass() { say "$1 pass: $2"; }
fail() { say "$1 fail: $2"; failed=1; }

check_boot() {
  [ -r /proc/version ] || { fail boot "no /proc/version"; return; }
  [ -d /sys/class ] || { fail boot "no sysfs"; return; }
  [ -c /dev/console ] || { fail boot "no /dev/console"; return; }
  pass boot "$(cut -d' ' -f1-3 /proc/version), $(grep -c ^processor /proc/cpuinfo) cpu(s)"
}

blk_sum() { # sha256 of the data area: KIB KiB from offset 4096
  dd if=/dev/vda bs=4096 skip=1 count=$(($1 / 4)) 2>/dev/null | sha256sum | cut -d' ' -f1
}

check_blk_write() {
  kib=$(arg blkdata 256)
  [ -b /dev/vda ] || { fail blk-write "no /dev/vda"; return; }
  dd if=/dev/urandom of=/tmp/data bs=1024 count="$kib" 2>/dev/null
  dd if=/tmp/data of=/dev/vda bs=4096 seek=1 conv=notrunc,fsync 2>/dev/null || { fail blk-write "write failed"; return; }
  want=$(sha256sum /tmp/data | cut -d' ' -f1)
  printf 'minivmm-selftest %s %s\n' "$kib" "$want" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc,fsync 2>/dev/null
  echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  got=$(blk_sum "$kib")
  [ "$got" = "$want" ] && pass blk-write "$kib KiB sha256 $want" || fail blk-write "read back $got, wrote $want"
  rm -f /tmp/data
}

check_blk_check() {
  [ -b /dev/vda ] || { fail blk-check "no /dev/vda"; return; }
  set -- $(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n 1)
  [ "$1" = minivmm-selftest ] || { fail blk-check "sector 0 has no checksum record"; return; }
  got=$(blk_sum "$2")
  [ "$got" = "$3" ] && pass blk-check "$2 KiB sha256 $got" || fail blk-check "data sha256 $got, record says $3"
}

check_rng() {
  cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
  case "$cur" in virtio_rng*) ;; *) fail rng "rng_current is '$cur'"; return;; esac
  a=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  b=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  zeros=0000000000000000000000000000000000000000000000000000000000000000
  if [ ${#a} -ne 64 ] || [ ${#b} -ne 64 ]; then fail rng "short read ('$a')"
  elif [ "$a" = "$zeros" ] || [ "$a" = "$b" ]; then fail rng "not random: $a $b"
  else pass rng "$cur: $a"; fi
}

centis() { tr -d . < /proc/uptime | cut -d' ' -f1; }  # uptime in centiseconds

check_blk_speed() {
  kib=$(arg blkspeed 2048)
  [ -b /dev/vda ] || { fail blk-speed "no /dev/vda"; return; }
  dd if=/dev/urandom of=/tmp/speed bs=1024 count="$kib" 2>/dev/null
  t0=$(centis)
  dd if=/tmp/speed of=/dev/vda bs=65536 seek=16 count=$((kib / 64)) conv=notrunc,fsync oflag=direct 2>/dev/null ||
    { fail blk-speed "write failed"; return; }
  t1=$(centis)
  got=$(dd if=/dev/vda bs=65536 skip=16 count=$((kib / 64)) iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
  t2=$(centis)
  want=$(sha256sum /tmp/speed | cut -d' ' -f1)
  rm -f /tmp/speed
  [ "$got" = "$want" ] || { fail blk-speed "read back $got, wrote $want"; return; }
  # +1 centisecond: a rate, never a division by zero on a fast host
  pass blk-speed "$kib KiB write $((kib * 100 / (t1 - t0 + 1))) KiB/s read $((kib * 100 / (t2 - t1 + 1))) KiB/s"
}

round() { # round N: 64 KiB of data for round N in RAM (/tmp) and at disk block N (64 KiB blocks from 64 KiB)
  dd if=/dev/urandom of=/tmp/round.$1 bs=1024 count=64 2>/dev/null
  sha256sum /tmp/round.$1 | cut -d' ' -f1 > /tmp/round.$1.sum
  dd if=/tmp/round.$1 of=/dev/vda bs=65536 seek="$1" count=1 conv=notrunc,fsync oflag=direct 2>/dev/null
}

verify_rounds() { # verify_rounds N: every round 1..N intact in RAM and on disk
  i=1
  while [ "$i" -le "$1" ]; do
    want=$(cat /tmp/round.$i.sum)
    [ "$(sha256sum /tmp/round.$i | cut -d' ' -f1)" = "$want" ] || { echo "round $i RAM copy differs"; return 1; }
    disk=$(dd if=/dev/vda bs=65536 skip="$i" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
    [ "$disk" = "$want" ] || { echo "round $i disk copy differs"; return 1; }
    i=$((i + 1))
  done
}

check_snapshot() {
  n=$(arg rounds 8)
  [ -b /dev/vda ] || { fail snapshot "no /dev/vda"; return; }
  i=1
  while [ "$i" -le $((n / 2)) ]; do round "$i"; i=$((i + 1)); done
  say "snapshot: requesting after $((n / 2)) rounds"
  port_write 1312 1  # MiniVmm control port 0x520: 1 requests a snapshot
  # Status 0 until the VMM takes the request, then 1 (running: a live snapshot runs while the guest writes on),
  # 2 done, 3 failed. A restored copy resumes here and reads the status frozen with it (1).
  status=0 tries=0
  while [ "$status" = 0 ] && [ "$tries" -lt 60 ]; do sleep 1; status=$(port_read 1312); tries=$((tries + 1)); done
  say "snapshot: control port status $status"
  case "$status" in 1|2) ;; *) fail snapshot "control port status $status (1 running, 2 done)"; return;; esac
  while [ "$i" -le "$n" ]; do round "$i"; i=$((i + 1)); done
  say "snapshot: $n rounds written"
  if why=$(verify_rounds "$n"); then pass snapshot "$n rounds intact in RAM and on disk"; else fail snapshot "$why"; fi
}

for check in $(arg selftest boot | tr ',' ' '); do
  case "$check" in
    boot) check_boot;; blk-write) check_blk_write;; blk-check) check_blk_check;; rng) check_rng;;
    blk-speed) check_blk_speed;;
    snapshot) check_snapshot;;
    *) say "$check fail: unknown check"; [ "$failed" = 0 ] && failed=2;;
  esac
done

say "result $failed"
port_write 244 "$failed"
# No debug-exit device (a plain QEMU run): halt instead of returning, which would panic the kernel.
poweroff -f
