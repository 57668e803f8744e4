#!/usr/bin/env bash
# Benchmark: N no-op tests at concurrency C through the local provider and
# the command runner (each test runs `true` in its own function process).
# Prints wall time, the orchestrator's own CPU time and peak RSS (from
# hypertest --verbose, which reports getrusage of its own process), and the
# overhead per invocation against the ideal (a no-op test takes no time, so
# the ideal wall time is zero and everything measured is overhead), beside
# the floor: `xargs -P C` running the same N commands (targets: within
# 1.5x of it, at most 0.2 ms of orchestrator CPU per test, C in flight).
#
#   bench/local.sh [BUILD_DIR] [N] [C]      (defaults: _build or ., 2000, 500)
#
# The project (and with it the bucket, where each test leaves a directory
# and two logs, and the function's scratch directories) goes to BENCH_DIR,
# default $TMPDIR or /tmp; the script prints that directory's file system
# (for ext4, with or without a journal), which weighs: each test creates
# three inodes and renames three directories there.  On ext4 without a
# journal the kernel also skips every inode deleted in the last 60 to 360 s
# when it allocates one, so right after a large removal (this script's own,
# at its end) creating a file costs about 0.5 ms of system CPU instead of
# 10 us, and a second run straight after the first measures that.  ext4
# with a journal costs more per test still than ext4 without one; tmpfs
# least.
#
# Two runs of the same deployment: the first after deploy makes the
# function's scratch directories (one per invocation in flight, kept in a
# pool), the next reuses them, as every later run of a project does; each
# is measured against its own xargs floor.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$here/_build/cli/hypertest" ] && build=$here/_build || build=$here; }
n=${2:-2000}
c=${3:-500}
hypertest=$build/cli/hypertest
[ -x "$hypertest" ] || { echo "no $hypertest: build first"; exit 1; }
export HYPERTEST_PLUGIN_PATH=$build/plugins/.libs
export HYPERTEST_FUNCTION_PROGRAM=$build/cli/hypertest-function
dir=${BENCH_DIR:-${TMPDIR:-/tmp}}
tmp=$(mktemp -d "$dir/ht-bench-local-XXXXXX")
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# the local provider's function tree (its default is in the user's cache)
export XDG_CACHE_HOME="$tmp/cache"
mkdir -p "$tmp/tests"
echo "no-op" >"$tmp/tests/noop.txt"
python3 - "$tmp" "$n" "$c" <<'PY'
import json, sys
tmp, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = {"concurrency": c, "driftDetectionPolicy": "silence",
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "local", "options": {}}}
json.dump(cfg, open(tmp + "/hypertest.config.json", "w"))
PY
# fs_kind DIR: the file system DIR is on, and for ext4 whether it keeps a
# journal (/proc/fs/jbd2 lists the journaled devices)
fs_kind() {
	local t src dev
	t=$(findmnt -no FSTYPE -T "$1" 2>/dev/null | head -1) || t=""
	[ -n "$t" ] || { stat -f -c %T "$1"; return; }
	if [ "$t" = ext4 ]; then
		src=$(findmnt -no SOURCE -T "$1" 2>/dev/null | head -1)
		dev=${src##*/}
		if [ -n "$dev" ] && compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
			t="ext4 with a journal"
		elif [ -d /proc/fs/jbd2 ] && [ -n "$dev" ]; then
			t="ext4 without a journal"
		fi
	fi
	echo "$t"
}
"$hypertest" -C "$tmp" --quiet deploy >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for which in "first run after deploy" "next run"; do
start=$(date +%s.%N)
"$hypertest" -C "$tmp" --verbose invoke >"$tmp/out" 2>&1 || true
end=$(date +%s.%N)
line=$(grep -o '[0-9]* tests in [0-9]* ms.*max RSS' "$tmp/out" | tail -1)
fstart=$(date +%s.%N)
seq "$n" | xargs -P "$c" -n 1 true
fend=$(date +%s.%N)
fs="$dir ($(fs_kind "$tmp"))"
python3 - "$start" "$end" "$n" "$c" "$line" "$tmp/hypertest.results.json" "$fstart" "$fend" "$fs" "$which" <<'PY'
import json, re, sys
fs, which = sys.argv[9], sys.argv[10]
start, end, n, c, line, results = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
floor = float(sys.argv[8]) - float(sys.argv[7])
res = json.load(open(results))
m = re.search(r"(\d+) tests in (\d+) ms, at most (\d+) in flight; this process: (\d+) ms user CPU, (\d+) ms system CPU, (\d+) KB max RSS", line)
wall = end - start
print("N = %d no-op tests at concurrency %d through local, project on %s: %s" % (n, c, fs, which))
print("results: %s" % res["tests"])
print("wall time (whole command): %.2f s; run: %.2f s" % (wall, int(m.group(2)) / 1000))
print("most in flight: %s" % m.group(3))
cpu = (int(m.group(4)) + int(m.group(5))) / 1000
print("orchestrator CPU: %.2f s (%.3f ms per invocation)" % (cpu, cpu * 1000 / n))
print("orchestrator peak RSS: %.1f MB" % (int(m.group(6)) / 1024))
print("overhead per invocation against the ideal (0 s): %.2f ms of wall time per test, %.1f ms per wave of %d"
      % (int(m.group(2)) / n, int(m.group(2)) / ((n + c - 1) // c), c))
print("wall %.2f s   floor (xargs -P %d, %d commands) %.2f s   ratio %.2f   target 1.5   %s"
      % (wall, c, n, floor, wall / floor, "PASS" if wall <= 1.5 * floor else "MISS"))
print("orchestrator CPU per test %.3f ms   target 0.2 ms   ratio %.2f   %s"
      % (cpu * 1000 / n, cpu * 1000 / n / 0.2, "PASS" if cpu * 1000 / n <= 0.2 else "MISS"))
print("most in flight %s   target %d   %s" % (m.group(3), min(c, n), "PASS" if int(m.group(3)) >= min(c, n) else "MISS"))
PY
done
