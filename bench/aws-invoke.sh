#!/usr/bin/env bash
# Benchmark: `hypertest invoke` through the aws provider against
# tests/aws/endpoint.py in "success" mode (every SigV4 checked by botocore,
# each invocation answered after delayMs without blocking the others).
# Three runs:
#   N=2000 at concurrency  500, delayMs 1000   ideal 4 s (4 waves of 1 s)
#   N=2000 at concurrency 2000, delayMs 1000   ideal 1 s (one wave)
#   N=5000 at concurrency 1000, delayMs    0   ideal ~0 (all overhead)
# For each: wall time of the run against the ideal, orchestrator CPU time
# and peak RSS (from the "N tests in X ms, at most M in flight; this
# process: ..." line of hypertest --verbose), and the most invocations in
# flight at the endpoint (its /_control stats).  Targets: within 5 % of the
# ideal wall time, under 0.2 ms orchestrator CPU per invocation, under 64 MB
# peak RSS.  endpoint.py (Python) shares the machine's cores with hypertest.
#
#   bench/aws-invoke.sh [BUILD_DIR]       (default: _build or .)
# Uses the services of the environment (HT_AWS_ENDPOINT & co.) or starts
# tests/aws/services.sh for the duration.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$here/_build/cli/hypertest" ] && build=$here/_build || build=$here; }
hypertest=$build/cli/hypertest
[ -x "$hypertest" ] || { echo "no $hypertest: build first"; exit 1; }
[ -e "$build/plugins/.libs/provider-aws.so" ] || { echo "no provider-aws.so in $build/plugins/.libs"; exit 1; }
export HYPERTEST_PLUGIN_PATH=$build/plugins/.libs
tmp=$(mktemp -d /tmp/ht-bench-aws-XXXXXX)
started=""
cleanup() {
	[ -n "$started" ] && "$here/tests/aws/services.sh" stop "$tmp/svc" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -z "${HT_AWS_ENDPOINT:-}" ]; then
	"$here/tests/aws/services.sh" start "$tmp/svc" >"$tmp/services.log" 2>&1 ||
		{ cat "$tmp/services.log"; echo "the services did not start"; exit 1; }
	started=1
	. "$tmp/svc/env"
fi
py=${HT_AWS_PYTHON:-python3}
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
fn="bench-$$"

control() { # METHOD PATH [BODY]
	"$py" - "$HT_AWS_CONTROL$2" "$1" "${3:-}" <<'PY'
import sys, urllib.request
url, method, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=30).read().decode())
PY
}

# project N C: a config with N no-op tests at concurrency C
project() {
	mkdir -p "$tmp/p/tests"
	echo "no-op" >"$tmp/p/tests/noop.txt"
	"$py" - "$tmp/p" "$1" "$2" "$fn" <<'PY'
import json, os, sys
d, n, c, fn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ep = os.environ["HT_AWS_ENDPOINT"]
cfg = {"concurrency": c, "driftDetectionPolicy": "silence", "imageName": "bench/aws",
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": {
           "region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
           "ecrRegistry": os.environ["HT_ECR_REGISTRY"],
           "endpoints": {"lambda": ep, "ecr": ep, "servicequotas": ep,
                         "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

control POST /quota '{"value": 5000}' >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
deployed=""

run() { # N C DELAY_MS IDEAL_S
	local n=$1 c=$2 delay=$3 ideal=$4
	project "$n" "$c"
	if [ "$deployed" != "$n" ]; then # the manifest lists the tests
		control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 100}' >/dev/null
		"$hypertest" -C "$tmp/p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; exit 1; }
		deployed=$n
	fi
	control POST "/function/$fn" "{\"mode\": \"success\", \"delayMs\": $delay}" >/dev/null
	control POST /reset '{}' >/dev/null
	${HT_BENCH_WRAP:-} "$hypertest" -C "$tmp/p" --verbose invoke >"$tmp/out" 2>&1 || true
	control GET "/function/$fn" >"$tmp/fn.json"
	line=$(grep -o '[0-9]* tests in [0-9]* ms.*max RSS' "$tmp/out" | tail -1)
	"$py" - "$n" "$c" "$delay" "$ideal" "$line" "$tmp/p/hypertest.results.json" "$tmp/fn.json" <<'PY'
import json, re, sys
n, c, delay, ideal = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
line, res, fn = sys.argv[5], json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
m = re.search(r"(\d+) tests in (\d+) ms, at most (\d+) in flight; this process: (\d+) ms user CPU, "
              r"(\d+) ms system CPU, (\d+) KB max RSS", line)
wall = int(m.group(2)) / 1000
cpu = (int(m.group(4)) + int(m.group(5))) / 1000
rss = int(m.group(6)) / 1024
st = fn["stats"]
print("N=%d at concurrency %d, delayMs %d: %s" % (n, c, delay, res["tests"]))
if ideal > 0:
    print("  wall %.2f s against the ideal %.0f s (%+.1f %%; target within 5 %%)"
          % (wall, ideal, (wall - ideal) * 100 / ideal))
else:
    print("  wall %.2f s (ideal ~0: %.3f ms per invocation, %.0f invocations/s)"
          % (wall, wall * 1000 / n, n / wall if wall else 0))
print("  orchestrator CPU %.2f s = %.3f ms per invocation (target < 0.2); peak RSS %.1f MB (target < 64)"
      % (cpu, cpu * 1000 / n, rss))
print("  in flight at most: %s (hypertest), %s (endpoint); endpoint statuses %s"
      % (m.group(3), st["maxInFlight"], st["statuses"]))
PY
}

run 2000 500 1000 4
run 2000 2000 1000 1
run 5000 1000 0 0
control POST /quota '{"value": 1000}' >/dev/null
