#!/usr/bin/env python3
"""Free page reporting (virtio-balloon) on the benchmark host, held off while the experiments run.

On a host that is itself a guest with free page reporting, the kernel hands freed memory back to its hypervisor, and
the next allocation of that memory faults in at the hypervisor's speed. Every trial allocates fresh guest RAM and
fresh page cache for its image, so how fast a snapshot writes then depends on which free pages the allocator picked:
see docs/DESIGN-NOTES.md, "Free page reporting on the benchmark host". Holding reporting off for the run makes the
trials comparable with each other and with the limits measured in the same run; MiniVmm and QEMU run under the same
setting either way.

Usage:
  page_reporting.py off STATE     raise the reporting order above the largest free block (nothing is reported) and
                                  keep the old order in STATE; prints what it did
  page_reporting.py restore STATE put the order kept in STATE back (no-op when STATE is missing)
  page_reporting.py describe      one line for the report: reporting on or off, and its order"""
import os
import sys

PARAMS = "/sys/module/page_reporting/parameters"
ORDER = os.path.join(PARAMS, "page_reporting_order")
# One more than the largest buddy order on x86-64 (MAX_PAGE_ORDER 10): no free block is ever that large.
NEVER = 11


def read_order():
    try:
        with open(ORDER) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def reporting_active():
    """Whether a driver (virtio-balloon with VIRTIO_BALLOON_F_REPORTING) reports free pages at all."""
    try:
        with open(os.path.join(PARAMS, "reported_kib")) as f:
            return int(f.read().strip()) > 0
    except (OSError, ValueError):
        return os.path.isdir("/sys/bus/virtio/drivers/virtio_balloon")


def write_order(order):
    with open(ORDER, "w") as f:
        f.write(str(order))


def off(state):
    order = read_order()
    if order is None:
        print("page reporting: not on this host (nothing to hold off)")
        return 0
    if order >= NEVER:
        print(f"page reporting: already held off (order {order})")
        return 0
    try:
        write_order(NEVER)
    except OSError as e:
        print(f"page reporting: could not hold it off ({e.strerror}); the trials may vary with the host's allocator",
              file=sys.stderr)
        return 0
    with open(state, "w") as f:
        f.write(str(order))
    print(f"page reporting: held off for the run (order {order} -> {NEVER}; restored at the end)")
    return 0


def restore(state):
    try:
        with open(state) as f:
            order = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    try:
        write_order(order)
        os.remove(state)
        print(f"page reporting: order {order} restored")
    except OSError as e:
        print(f"page reporting: could not restore order {order}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


def describe():
    order = read_order()
    if order is None:
        return "free page reporting: not on this host"
    if order >= NEVER:
        return f"free page reporting: held off during the run (order {order})"
    if not reporting_active():
        return f"free page reporting: available, nothing reported so far (order {order})"
    return f"free page reporting: on (order {order}): trials may vary with which free pages the allocator hands out"


def main(argv):
    if len(argv) == 3 and argv[1] == "off":
        return off(argv[2])
    if len(argv) == 3 and argv[1] == "restore":
        return restore(argv[2])
    if len(argv) == 2 and argv[1] == "describe":
        print(describe())
        return 0
    print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
