#!/usr/bin/env python3
"""One QMP script, two VMMs: background-snapshot MiniVmm and QEMU running the same writer guest, then restore both.

    python3 experiments/qmp_side_by_side.py [--minivmm "dotnet vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll"]
                                            [--guests out/guests] [--out out/qmp-side-by-side] [--mb 64] [--sweeps 60000]

Both VMs boot writer.elf with "mb=N sweeps=S"; after --delay seconds the very same background_snapshot() (from
qmp_client.py) sends migrate-set-capabilities background-snapshot, migrate-set-parameters max-bandwidth and
migrate exec:cat > FILE to each. Then MiniVmm's stream is converted and restored with `minivmm restore`, and QEMU's is
restored with `-incoming exec:cat FILE`. The writer re-checks every page it wrote, so a restored guest that exits
with status 0 (QEMU reports (0<<1)|1 = 1) proves the snapshot was a point-in-time copy. Exit status 0 = all good.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp_client import Qmp, background_snapshot  # noqa: E402

# On this project's hosts plain `-cpu host` aborts QEMU 7.2 (arch-capabilities); see README.
QEMU = ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "512M",
        "-nographic", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def run(cmd, **kw):
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minivmm", default="dotnet vmm/MiniVmm.Cli/bin/Release/net10.0/minivmm.dll")
    ap.add_argument("--guests", default="out/guests")
    ap.add_argument("--out", default="out/qmp-side-by-side")
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--sweeps", type=int, default=60000)
    ap.add_argument("--delay", type=float, default=1.5, help="seconds of guest run time before the snapshot")
    ap.add_argument("--max-bandwidth", type=int, default=1 << 30, help="bytes/s for both (QEMU's default is 32 MiB/s)")
    a = ap.parse_args()

    minivmm = shlex.split(a.minivmm)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    writer = os.path.abspath(os.path.join(a.guests, "writer.elf"))
    cmdline = f"mb={a.mb} sweeps={a.sweeps} report_ms=500"
    sockets = {"minivmm": os.path.join(out, "minivmm.sock"), "qemu": os.path.join(out, "qemu.sock")}
    states = {name: os.path.join(out, f"{name}_state") for name in sockets}
    for path in list(sockets.values()) + list(states.values()):
        if os.path.exists(path):
            os.unlink(path)

    procs = {
        "minivmm": subprocess.Popen(minivmm + ["run", "--kernel", writer, "--cmdline", cmdline, "--mem", "512M",
                                               "--serial", "file:" + os.path.join(out, "minivmm-serial.txt"),
                                               "--qmp", f"unix:{sockets['minivmm']},server,nowait"],
                                    stdin=subprocess.DEVNULL),
        "qemu": subprocess.Popen(QEMU + ["-kernel", writer, "-append", cmdline,
                                         "-qmp", f"unix:{sockets['qemu']},server,nowait"],
                                 stdin=subprocess.DEVNULL, stdout=open(os.path.join(out, "qemu-serial.txt"), "wb")),
    }
    ok = True
    try:
        clients = {name: Qmp(path, timeout=60) for name, path in sockets.items()}
        time.sleep(a.delay)
        for name, qmp in clients.items():
            version = qmp.greeting["QMP"]["version"]
            info, wall = background_snapshot(qmp, f"exec:cat > {states[name]}", a.max_bandwidth)
            ram = info.get("ram", {})
            print(json.dumps({"vmm": name, "package": version.get("package") or "QEMU", "status": info.get("status"),
                              "total_time_ms": info.get("total-time"), "downtime_ms": info.get("downtime"),
                              "ram_total": ram.get("total"), "normal": ram.get("normal"), "duplicate": ram.get("duplicate"),
                              "transferred": ram.get("transferred"), "x-minivmm": info.get("x-minivmm"),
                              "wall_s": round(wall, 3), "state_bytes": os.path.getsize(states[name])}), flush=True)
            ok &= info.get("status") == "completed"
            qmp.close()
        for name, proc in procs.items():
            rc = proc.wait(timeout=600)
            expected = 1 if name == "qemu" else 0
            print(f"original {name} VM exited with {rc} (expected {expected})", flush=True)
            ok &= rc == expected
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()

    image = os.path.join(out, "minivmm.mvs")
    ok &= run(minivmm + ["snapshot", "convert", states["minivmm"], image]).returncode == 0
    ok &= run(minivmm + ["snapshot", "verify", image]).returncode == 0
    rc = run(minivmm + ["restore", image, "--serial", "file:" + os.path.join(out, "minivmm-restored-serial.txt")],
             timeout=600).returncode
    print(f"restored MiniVmm snapshot: writer exited with {rc} (0 = every page held the right generation)", flush=True)
    ok &= rc == 0
    rc = run(QEMU + ["-kernel", writer, "-append", cmdline, "-incoming", f"exec:cat {states['qemu']}"],
             stdin=subprocess.DEVNULL, stdout=open(os.path.join(out, "qemu-restored-serial.txt"), "wb"),
             timeout=600).returncode
    print(f"restored QEMU snapshot: exit {rc} = writer status {rc >> 1} (QEMU exits (status<<1)|1; 1 = success)", flush=True)
    ok &= rc == 1
    for name in ("minivmm", "qemu"):
        with open(os.path.join(out, f"{name}-restored-serial.txt"), "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        # The first line a restored writer prints shows where the snapshot caught it.
        print(f"restored {name} console: {lines[0] if lines else ''} ... {lines[-1] if lines else ''}", flush=True)
    print("side by side: " + ("OK" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
