#!/usr/bin/env bash
# Builds MiniVmm's Linux test guest (`make linux-guest`; README "Linux test guest"):
#   OUT/vmlinux            tinyconfig + guest.config kernel from Debian's linux-source-6.1, patches/*.patch applied
#   OUT/initramfs.cpio     Debian's busybox-static plus init.sh as /init. Not compressed: on a host that emulates
#                          kernel-mode code, gunzip in the kernel takes minutes (measured: not done after 280 s)
# Usage: build.sh [OUT]   (default out/linux-guest). JOBS=N sets make -j (default 2).
# Nothing is rebuilt when the inputs (source tarball, config fragment, patches, init.sh, busybox, this script) are
# unchanged: their digest is kept in OUT/inputs.sha256. The kernel's object tree (OUT/build) is kept between runs, so
# a changed patch or fragment rebuilds only what it touches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root/out/linux-guest}" && cd "${1:-$root/out/linux-guest}" && pwd)
tarball=${LINUX_SOURCE_TAR:-/usr/src/linux-source-6.1.tar.xz}
busybox=${BUSYBOX:-/bin/busybox}
jobs=${JOBS:-2}

missing() { echo "linux-guest: $1 is missing; install it with: apt-get install -y --no-install-recommends $2" >&2; exit 1; }
[ -f "$tarball" ] || missing "$tarball" linux-source-6.1
[ -x "$busybox" ] || missing "$busybox" busybox-static
for tool in gcc make bc bison flex; do command -v "$tool" >/dev/null || missing "$tool" "build-essential bc bison flex"; done
[ -f /usr/include/libelf.h ] || [ -f /usr/include/gelf.h ] || missing libelf.h libelf-dev

patches=("$here"/patches/*.patch)
digest=$( { stat -c '%n %s %Y' "$tarball"; sha256sum "$here/guest.config" "${patches[@]}" "$here/init.sh" "$busybox" "$0"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio" ] && [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$digest" ]; then
  echo "linux-guest: $out is up to date"
  exit 0
fi
started=$(date +%s)
rm -f "$out/inputs.sha256"

# Source tree: extracted afresh when the tarball or the patches changed. tar keeps the archive's (old) mtimes, so the
# kept object tree is reused; files a patch touches (now or in the previous build) are touched so they are recompiled.
src="$out/src/linux-source-6.1"
src_digest=$( { stat -c '%n %s %Y' "$tarball"; sha256sum "${patches[@]}"; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$out/src/digest" 2>/dev/null)" != "$src_digest" ]; then
  echo "linux-guest: extracting $tarball"
  rm -rf "$out/src" && mkdir -p "$out/src"
  tar -xJf "$tarball" -C "$out/src"
  for p in "${patches[@]}"; do
    echo "linux-guest: applying $(basename "$p")"
    patch -d "$src" -p1 --quiet --forward < "$p"
  done
  touched=$(cat "$out/patched-files" 2>/dev/null || true)
  grep -h '^+++ b/' "${patches[@]}" | sed 's|^+++ b/||; s|[[:space:]].*||' | sort -u > "$out/patched-files"
  for f in $touched $(cat "$out/patched-files"); do [ -f "$src/$f" ] && touch "$src/$f"; done
  echo "$src_digest" > "$out/src/digest"
fi

# Kernel: tinyconfig, the fragment merged over it, then vmlinux (the uncompressed ELF; no bzImage, no modules).
build="$out/build"
mkdir -p "$build"
make -C "$src" O="$build" -s tinyconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$here/guest.config" >/dev/null
make -C "$src" O="$build" -s olddefconfig
for want in $(grep -E '^CONFIG_[A-Z0-9_]+=' "$here/guest.config"); do
  grep -qx "$want" "$build/.config" || { echo "linux-guest: $want did not survive olddefconfig (a dependency is missing)" >&2; exit 1; }
done
echo "linux-guest: building vmlinux (make -j$jobs)"
make -C "$src" O="$build" -j"$jobs" -s vmlinux
cp "$build/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"

# Initramfs: written by the kernel's own gen_init_cpio (device nodes without root, fixed timestamps).
list="$out/initramfs.list"
{
  echo "dir /dev 0755 0 0"
  echo "nod /dev/console 0600 0 0 c 5 1"
  for d in bin proc sys tmp mnt; do echo "dir /$d 0755 0 0"; done
  echo "file /bin/busybox $busybox 0755 0 0"
  for applet in $("$busybox" --list); do [ "$applet" = busybox ] || echo "slink /bin/$applet busybox 0777 0 0"; done
  echo "file /init $here/init.sh 0755 0 0"
} > "$list"
"$build/usr/gen_init_cpio" -t 0 "$list" > "$out/initramfs.cpio.tmp"
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"

echo "$digest" > "$out/inputs.sha256"
echo "linux-guest: built $out/vmlinux ($(stat -c %s "$out/vmlinux") bytes) and $out/initramfs.cpio in $(( $(date +%s) - started )) s"
