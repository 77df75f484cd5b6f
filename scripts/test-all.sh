#!/usr/bin/env bash
# npm test: setup, build (typecheck), unit tests, then the whole privileged suite in ONE VM boot.
# Ends with "unit: …", "vm: …" and "total: N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "test-all: setup failed"; exit 1; }
echo "test-all: tsc -p tsconfig.json"
npx tsc -p tsconfig.json || { echo "test-all: build (typecheck) failed"; exit 1; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "test-all: unit tests"
node node_modules/uvu/bin.js dist/test/unit '\.test\.js$' 2>&1 | tee "$logs/unit.log"
unit_rc=${PIPESTATUS[0]}

echo "test-all: privileged tests in the VM"
node dist/test/vm/run-privileged.js --summary-file "$logs/vm.json"
vm_rc=$?

# Benchmarks are never timed tests: CI only checks that they run, with tiny sizes, in their own
# VM boot (~30 s). Ratios from a smoke run mean nothing; `npm run bench` is the real measurement.
echo "test-all: benchmark smoke run (tiny sizes; checks that every benchmark runs)"
node dist/bench/run.js --smoke > "$logs/bench.log" 2>&1
bench_rc=$?
tail -n 3 "$logs/bench.log"
[ "$bench_rc" -eq 0 ] || { echo "test-all: the benchmark smoke run failed (exit $bench_rc):"; tail -n 40 "$logs/bench.log"; }

node dist/test/vm/summarize.js "$logs/unit.log" "$unit_rc" "$logs/vm.json" "$vm_rc"
summary_rc=$?
[ "$summary_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
