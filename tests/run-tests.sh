#!/usr/bin/env bash
# Runs every test project of the solution and ends with one summary line "N passed, N failed, N skipped".
# Usage: tests/run-tests.sh CONFIG [extra dotnet test args]
set -uo pipefail
config=${1:-Release}; shift || true
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet test MiniVmm.sln -c "$config" --no-build -nologo "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# dotnet test prints one line per test assembly: "Passed!  - Failed: 0, Passed: 64, Skipped: 0, Total: 64, ..."
read -r failed passed skipped < <(awk -F'[:,]' '/(Passed|Failed)! +- +Failed:/ { f+=$2; p+=$4; s+=$6 } END { printf "%d %d %d\n", f, p, s }' "$log")
rm -f "$log"
echo "Tests: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then exit 1; fi
if [ "$passed" -eq 0 ]; then echo "no test ran"; exit 1; fi
exit 0
