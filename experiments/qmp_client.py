#!/usr/bin/env python3
"""A minimal QMP client (standard library only) and a background-snapshot driver.

Drives QEMU and MiniVmm with the same code path:
    python3 experiments/qmp_client.py SOCKET snapshot 'exec:cat > /tmp/vm_state' [--max-bandwidth BYTES]
prints one JSON line with the final query-migrate result and the wall time;
    python3 experiments/qmp_client.py SOCKET hmp 'info migrate'
runs one HMP line through human-monitor-command and prints its text;
    python3 experiments/qmp_client.py SOCKET cmd query-status ['{"json": "arguments"}']
runs one QMP command and prints its return value as JSON.
See experiments/qmp_side_by_side.py for a snapshot of both VMMs with restore checks.
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, timeout=120.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.file = self.sock.makefile("rwb")
        self.greeting = self._read()
        self.events = []
        self.command("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("QMP connection closed")
        return json.loads(line)

    def command(self, name, **arguments):
        msg = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")
            return reply.get("return")

    def close(self):
        self.sock.close()


def hmp(qmp, line):
    """One HMP command line through QMP (human-monitor-command); returns the text QEMU/MiniVmm printed."""
    return qmp.command("human-monitor-command", **{"command-line": line})


def background_snapshot(qmp, uri, max_bandwidth=None, poll=0.005, started=None):
    """QEMU 7.2's background snapshot: write-tracking RAM, one pass. Returns (query-migrate, wall seconds); the wall
    runs from the `migrate` command (its time.monotonic() is appended to `started` when given) to `completed` seen."""
    qmp.command("migrate-set-capabilities",
                capabilities=[{"capability": "background-snapshot", "state": True}])
    if max_bandwidth:
        qmp.command("migrate-set-parameters", **{"max-bandwidth": int(max_bandwidth)})
    start = time.monotonic()
    if started is not None:
        started.append(start)
    qmp.command("migrate", uri=uri)
    while True:
        info = qmp.command("query-migrate")
        status = info.get("status")
        if status in ("completed", "failed", "cancelled"):
            return info, time.monotonic() - start
        time.sleep(poll)


def main(argv):
    if len(argv) >= 4 and argv[2] == "hmp":
        qmp = Qmp(argv[1])
        sys.stdout.write(hmp(qmp, argv[3]))
        qmp.close()
        return 0
    if len(argv) >= 4 and argv[2] == "cmd":
        qmp = Qmp(argv[1])
        args = json.loads(argv[4]) if len(argv) > 4 else {}
        print(json.dumps(qmp.command(argv[3], **args)))
        qmp.close()
        return 0
    if len(argv) < 4 or argv[2] != "snapshot":
        print(__doc__, file=sys.stderr)
        return 2
    bw = None
    if "--max-bandwidth" in argv:
        bw = argv[argv.index("--max-bandwidth") + 1]
    qmp = Qmp(argv[1])
    info, wall = background_snapshot(qmp, argv[3], bw)
    print(json.dumps({"wall_s": wall, "migrate": info}))
    qmp.close()
    return 0 if info.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
