#!/usr/bin/env bash
# Benchmark: building the summary report of a run of 5,000 tests with
# `hypertest report RUN_ID` through the local provider.  The run is made up:
# a results file of 5,000 tests (10 % failed with a five-line message, a
# stack trace and 10 KB of stderr, 5 % skipped) and each test's stdout.log
# and stderr.log in the bucket directory, as the function leaves them.  Prints the wall time of
# the report (HTML only, then HTML and JUnit XML) and the size of
# index.html, each beside its target: under 1 s, under 5 MB.
#
#   bench/report.sh [BUILD_DIR]     (default: _build or .)
#   env: BENCH_TESTS (default 5000)
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$src/_build/cli/hypertest" ] && build=$src/_build || build=$PWD; }
build=$(cd "$build" && pwd)
hypertest=$build/cli/hypertest
[ -x "$hypertest" ] || { echo "no $hypertest: build first" >&2; exit 1; }
export HYPERTEST_PLUGIN_PATH=$build/plugins/.libs
export HYPERTEST_FUNCTION_PROGRAM=$build/cli/hypertest-function
n=${BENCH_TESTS:-5000}
tmp=$(mktemp -d /tmp/ht-bench-report-XXXXXX) || exit 1
[ -n "${HT_KEEP:-}" ] || trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
# the local provider's function tree (its default is in the user's cache)
export XDG_CACHE_HOME="$tmp/cache"

mkdir -p "$tmp/tests"
cat >"$tmp/hypertest.config.json" <<'JSON'
{"imageName": "bench/report",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests", "list": ["true"], "run": ["true"]}},
 "cloudProvider": {"plugin": "local", "options": {"bucketDir": "bucket"}}}
JSON
run=$(python3 - "$tmp" "$n" <<'PY'
import json, os, sys, uuid
root, n = sys.argv[1], int(sys.argv[2])
run = str(uuid.uuid4())
t0 = 1_800_000_000_000
tests = []
for i in range(n):
    tid = str(uuid.uuid4())
    start = t0 + (i // 100) * 1000 + (i % 100) * 7
    dur = 200 + (i * 37) % 900
    st = "failed" if i % 10 == 3 else "skipped" if i % 20 == 7 else "success"
    iso = lambda ms: "%s.%03dZ" % (__import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(ms // 1000)), ms % 1000)
    e = {"testId": tid, "name": f"suite {i // 50} > test number {i} does something", "filePath": f"tests/spec_{i // 50}.spec.ts",
         "status": st, "startDate": iso(start), "endDate": iso(start + dur), "duration": dur,
         "context": {"id": f"tests/spec_{i // 50}.spec.ts:{i}"},
         "startTime": start, "endTime": start + dur, "expectedDuration": dur - 20,
         "artifacts": {"prefix": f"{run}/{tid}/", "stdout": f"{run}/{tid}/stdout.log", "stderr": f"{run}/{tid}/stderr.log"}}
    if st == "failed":
        e["error"] = {"message": "Error: expect(received).toBe(expected)\n\nExpected: 4\nReceived: 5\n  at line %d" % i,
                      "stackTrace": "\n".join("    at frame%d (tests/spec_%d.spec.ts:%d:5)" % (k, i // 50, k) for k in range(12))}
    if st == "skipped":
        e["skipMessage"] = "not on this platform"
    tests.append(e)
    d = os.path.join(root, "bucket", run, tid)
    os.makedirs(d)
    with open(os.path.join(d, "stdout.log"), "w") as f:
        f.write(("log line of test %d\n" % i) * 40)
    with open(os.path.join(d, "stderr.log"), "w") as f:
        f.write(("warning from test %d\n" % i) * (400 if st == "failed" else 1))
doc = {"runId": run, "startDate": tests[0]["startDate"], "endDate": tests[-1]["endDate"],
       "duration": tests[-1]["endTime"] - t0,
       "tests": {"total": n, "success": sum(t["status"] == "success" for t in tests),
                 "skipped": sum(t["status"] == "skipped" for t in tests),
                 "failed": sum(t["status"] == "failed" for t in tests)},
       "testResults": tests, "concurrency": 100}
with open(os.path.join(root, "bucket", run, "hypertest.results.json"), "w") as f:
    json.dump(doc, f)
print(run)
PY
) || exit 1

measure() { # LABEL ARGS...: best of 3 runs: wall time, and CPU time (user + system)
	local label=$1 best= cpu= t c
	shift
	for _ in 1 2 3; do
		/usr/bin/time -f '%e %U %S' -o "$tmp/time" \
			"$hypertest" -C "$tmp" --quiet report "$run" "$@" >/dev/null 2>"$tmp/err" ||
			{ cat "$tmp/err"; exit 1; }
		read -r t u s <"$tmp/time"
		c=$(echo "$u + $s" | bc)
		if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; cpu=$c; fi
	done
	printf '%-38s wall %6.3f s (CPU %5.3f s)   target < 1 s   %s\n' "$label" "$best" "$cpu" \
		"$([ "$(echo "$best < 1" | bc)" = 1 ] && echo PASS || echo MISS)"
}
echo "report of $n tests (build: $build; load average $(cut -d' ' -f1-3 /proc/loadavg))"
measure "hypertest report (HTML)"
measure "hypertest report --junit (HTML+XML)" --junit "$tmp/junit.xml"
size=$(stat -c %s "$tmp/bucket/$run/report/index.html")
printf '%-38s %6.2f MB                         target < 5 MB  %s\n' "index.html" "$(echo "scale=2; $size / 1048576" | bc)" \
	"$([ "$size" -lt 5242880 ] && echo PASS || echo MISS)"
printf '%-38s %6.2f MB\n' "junit.xml" "$(echo "scale=2; $(stat -c %s "$tmp/junit.xml") / 1048576" | bc)"
