#!/usr/bin/env bash
# `make bench-snapshot`: MiniVmm's snapshot engines vs QEMU's background snapshot, same writer guest, same run.
# Usage: experiments/bench-snapshot.sh OUT/minivmm GUEST_DIR [extra bench_snapshot.py options]
set -euo pipefail
minivmm=$1 guests=$2; shift 2
. "$(dirname "$0")/need.sh"
need qemu-system-x86_64 qemu-system-x86
exec python3 "$(dirname "$0")/bench_snapshot.py" "$minivmm" "$guests" "$(dirname "$minivmm")/bench" "$@"
# Results: OUT/bench/snapshot.csv; copy into experiments/results/ and run `make report` for REPORT.md and plots.
