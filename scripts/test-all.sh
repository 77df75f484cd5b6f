#!/usr/bin/env bash
# npm test: setup, build (typecheck), unit tests, then the privileged suite in a matrix of VM
# boots (one boot per cell), then the benchmark smoke run. Cells:
#   1. the default Debian kernel (linux-image-amd64's 6.1), no udev: every test/privileged file;
#   2. a Debian 6.12 (linux-image-6.12.*-amd64-unsigned, fetched into .cache/vm/kernels), no udev:
#      every test/privileged file;
#   3. the default kernel with systemd-udevd running in the guest: the dm, thin and DeviceSet files
#      (dm*, thin*, deviceset* by pattern, so new files join automatically).
# Ends with "unit: …", one "vm[<kernel>(, udev)]: …" per cell and "total: N passed, M failed";
# exits non-zero on any failure in any cell. Prints the time every stage took.
# Knobs: DEVMAPPER_CI_KERNEL2 (cell 2's kernel selector), DEVMAPPER_VM_JOBS (cells booted at once;
# default 1: on 2 cores two TCG guests take as long as one after the other, see DEVELOPERS.md).
set -uo pipefail
cd "$(dirname "$0")/.."

KERNEL2=${DEVMAPPER_CI_KERNEL2:-pkg:linux-image-6.12.*-amd64-unsigned}
JOBS=${DEVMAPPER_VM_JOBS:-1}
UDEV_FILES='^(dm|thin|deviceset)([.-][^/]*)?\.test\.js$'

times=()
t0=$(date +%s)
stage_start=$t0
stage_done() { # <name>: records and prints the time since the previous stage ended
  local now
  now=$(date +%s)
  local d=$((now - stage_start))
  times+=("$(printf '%-34s %3dm%02ds' "$1" $((d / 60)) $((d % 60)))")
  echo "test-all: [time] $1: $((d / 60))m$(printf %02d $((d % 60)))s"
  stage_start=$now
}
print_times() {
  local d=$(($(date +%s) - t0))
  echo "test-all: stage times"
  for t in "${times[@]}"; do echo "  $t"; done
  printf '  %-34s %3dm%02ds\n' "whole run" $((d / 60)) $((d % 60))
}

bash scripts/setup.sh || { echo "test-all: setup failed"; exit 1; }
stage_done setup
echo "test-all: tsc -p tsconfig.json"
npx tsc -p tsconfig.json || { echo "test-all: build (typecheck) failed"; exit 1; }
stage_done tsc

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "test-all: unit tests"
node node_modules/uvu/bin.js dist/test/unit '\.test\.js$' 2>&1 | tee "$logs/unit.log"
unit_rc=${PIPESTATUS[0]}
stage_done unit

# The kernels, resolved once: cell 1 boots the kernel linux-image-amd64 depends on (not simply
# the newest in /boot, which would be 6.12 too on a host that has one installed).
k1=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
[ -n "$k1" ] && [ -e "/boot/vmlinuz-$k1" ] || k1=''
echo "test-all: kernels: ${k1:-newest in /boot} and $KERNEL2"
k2_line=$(node dist/test/vm/fetch-kernel.js "$KERNEL2" 2>"$logs/fetch.err" | tail -n 1)
k2=${k2_line%% *}
if [ -z "$k2" ]; then
  echo "test-all: cannot fetch $KERNEL2:"; cat "$logs/fetch.err"
  k2=$KERNEL2 # the cell then fails with the reason, and is counted
else
  echo "test-all: second kernel ${k2_line#* } ($k2)"
fi
stage_done "kernels (fetch or cache)"

names=(kernel1 kernel2 udev)
args_kernel1=(${k1:+--kernel "$k1"})
args_kernel2=(--kernel "$k2")
args_udev=(${k1:+--kernel "$k1"} --udev --files "$UDEV_FILES")
declare -A rc started
run_cell() { # <name>: one VM boot; output to $logs/<name>.log (and the terminal when JOBS=1)
  local n=$1 a="args_$1[@]"
  if [ "$JOBS" -le 1 ]; then
    env -u DEVMAPPER_VM_KERNEL -u DEVMAPPER_VM_UDEV node dist/test/vm/run-privileged.js "${!a}" --summary-file "$logs/$n.json" 2>&1 | tee "$logs/$n.log"
    return "${PIPESTATUS[0]}"
  fi
  env -u DEVMAPPER_VM_KERNEL -u DEVMAPPER_VM_UDEV node dist/test/vm/run-privileged.js "${!a}" --summary-file "$logs/$n.json" > "$logs/$n.log" 2>&1
}
cell_done() { # <name> <rc>
  rc[$1]=$2
  [ "$JOBS" -le 1 ] || { echo "test-all: ---- output of cell $1 ----"; cat "$logs/$1.log"; }
  local d=$(($(date +%s) - started[$1]))
  local label
  label=$(tail -n 1 "$logs/$1.log")
  times+=("$(printf '%-34s %3dm%02ds' "cell ${label%%:*}" $((d / 60)) $((d % 60)))")
  echo "test-all: [time] cell ${label%%:*}: $((d / 60))m$(printf %02d $((d % 60)))s"
}
echo "test-all: privileged tests in the VM, ${#names[@]} cells, $JOBS at a time"
vm_start=$(date +%s)
if [ "$JOBS" -le 1 ]; then
  for n in "${names[@]}"; do
    started[$n]=$(date +%s)
    run_cell "$n"
    cell_done "$n" $?
  done
else
  declare -A pid_of
  for n in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    started[$n]=$(date +%s)
    run_cell "$n" &
    pid_of[$n]=$!
  done
  for n in "${names[@]}"; do
    wait "${pid_of[$n]}"
    cell_done "$n" $?
  done
fi
stage_start=$vm_start
stage_done "privileged suite (all cells)"

# Benchmarks are never timed tests: CI only checks that they run, with tiny sizes, in their own
# VM boot (~30 s). Ratios from a smoke run mean nothing; `npm run bench` is the real measurement.
echo "test-all: benchmark smoke run (tiny sizes; checks that every benchmark runs)"
env -u DEVMAPPER_VM_UDEV ${k1:+DEVMAPPER_VM_KERNEL="$k1"} node dist/bench/run.js --smoke > "$logs/bench.log" 2>&1
bench_rc=$?
tail -n 3 "$logs/bench.log"
[ "$bench_rc" -eq 0 ] || { echo "test-all: the benchmark smoke run failed (exit $bench_rc):"; tail -n 40 "$logs/bench.log"; }
stage_done "bench smoke"

print_times
cells=()
for n in "${names[@]}"; do cells+=("$n" "$logs/$n.json" "${rc[$n]}"); done
node dist/test/vm/summarize.js "$logs/unit.log" "$unit_rc" "${cells[@]}"
summary_rc=$?
[ "$summary_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
