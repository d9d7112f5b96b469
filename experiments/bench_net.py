#!/usr/bin/env python3
"""virtio-net echo benchmark: MiniVmm vs QEMU microvm (virtio-net-device) on the same tap set-up and the same guest.

Creates a throw-away tap (no address, IPv6 off), boots vnet.elf on it (frames=0: echo for ever), then from an
AF_PACKET socket on the tap measures (1) ping-pong: one frame in flight, round trips per second, and (2) a window of
W frames in flight: echoed frames per second. Needs root (tap creation) and python3 only.

usage: bench_net.py MINIVMM GUEST_DIR [--qemu] [--frames N] [--window W]
  MINIVMM: the minivmm command (e.g. out/minivmm, or "dotnet vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll")
"""
import argparse, os, shlex, socket, subprocess, sys, time

GUEST_MAC = bytes.fromhex("525400123456")
HOST_MAC = bytes.fromhex("020000000001")
ETHERTYPE = b"\x88\xb5"


def frame(seq):
    return GUEST_MAC + HOST_MAC + ETHERTYPE + seq.to_bytes(4, "little") + bytes(46)


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def start_vmm(kind, minivmm, guest, tap):
    if kind == "minivmm":
        cmd = shlex.split(minivmm) + ["run", "--kernel", guest, "--mem", "32M", "--cmdline", "frames=0",
                                      "--net", f"tap={tap},mac=52:54:00:12:34:56"]
    else:
        cmd = ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host,-arch-capabilities",
               "-m", "32M", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
               "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
               "-device", "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56",
               "-kernel", guest, "-append", "frames=0"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("vnet: ready"):
            return p
    p.kill()
    raise SystemExit(f"{kind}: the guest did not come up")


def echo(sock, timeout=2.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            r = sock.recv(2048)
        except socket.timeout:
            return None
        if r[6:12] == GUEST_MAC and r[12:14] == ETHERTYPE:
            return r
    return None


def measure(kind, minivmm, guest, frames, window):
    tap = f"mvb{os.getpid() % 100000}"
    ip("tuntap", "add", "dev", tap, "mode", "tap")
    try:
        with open(f"/proc/sys/net/ipv6/conf/{tap}/disable_ipv6", "w") as f:
            f.write("1")
        ip("link", "set", tap, "up")
        p = start_vmm(kind, minivmm, guest, tap)
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
            s.bind((tap, 0))
            s.settimeout(2.0)
            # warm-up (and wait until the VMM's tap is attached: frames before that are dropped)
            for _ in range(200):
                s.send(frame(0))
                if echo(s, 0.1):
                    break
            while echo(s, 0.2):
                pass
            n = max(frames // 10, 100)
            t0 = time.perf_counter()
            for i in range(n):
                s.send(frame(i))
                if echo(s) is None:
                    raise SystemExit(f"{kind}: ping-pong lost frame {i}")
            rtt = (time.perf_counter() - t0) / n
            sent = got = 0
            t0 = time.perf_counter()
            while sent < min(window, frames):
                s.send(frame(sent)); sent += 1
            while got < frames:
                if echo(s) is None:
                    raise SystemExit(f"{kind}: window run lost frames ({got} of {frames})")
                got += 1
                if sent < frames:
                    s.send(frame(sent)); sent += 1
            rate = frames / (time.perf_counter() - t0)
            return rtt, rate
        finally:
            p.kill()
            p.wait()
    finally:
        subprocess.run(["ip", "link", "del", tap], check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("minivmm")
    ap.add_argument("guest_dir")
    ap.add_argument("--qemu", action="store_true")
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--window", type=int, default=8)
    a = ap.parse_args()
    guest = os.path.join(a.guest_dir, "vnet.elf")
    kinds = ["minivmm"] + (["qemu"] if a.qemu else [])
    print("vmm,ping_pong_us,window_frames_per_s")
    for k in kinds:
        rtt, rate = measure(k, a.minivmm, guest, a.frames, a.window)
        print(f"{k},{rtt * 1e6:.1f},{rate:.0f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
