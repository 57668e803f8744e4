#!/usr/bin/env bash
# Reliability run: `hypertest invoke` through the aws provider while the
# Lambda endpoint injects a seeded mix of faults into 20 % of the
# invocations: 429, 500, 503, reset connections, truncated bodies, bodies
# that are not JSON, slow bodies and function errors.  Then
# tests/services/aws/reliability.py checks that every test is in the results file
# exactly once (passed, retried to success or not, or failed with the
# reason its last invocation deserved), that no result was lost, and that
# the endpoint's count of each kind of fault matches the outcomes; it
# prints the figures: invocations, faults of each kind, results accounted
# for.  tests/e2e/aws-faults.sh is the same at 300 invocations in `make check`.
#
#   bench/reliability.sh [BUILD_DIR]     (default: _build or .)
#   env: RELIABILITY_N (5000 tests), RELIABILITY_CONCURRENCY (200),
#        RELIABILITY_RATE (0.2), RELIABILITY_SEED (1), RELIABILITY_SLOW_MS (300),
#        BENCH_ENDPOINT=c|python (default c: bench/lambda-endpoint.c, compiled
#        here with cc; python: tests/services/aws/endpoint.py, every SigV4 verified),
#        BENCH_KEEP=1 keeps the temp dir (results, endpoint figures, output)
# Deploy goes to the services of tests/services/aws/services.sh (those of the
# environment, HT_AWS_ENDPOINT & co., or started for the duration).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$here/_build/cli/hypertest" ] && build=$here/_build || build=$here; }
hypertest=$build/cli/hypertest
[ -x "$hypertest" ] || { echo "no $hypertest: build first"; exit 1; }
[ -e "$build/plugins/.libs/provider-aws.so" ] || { echo "no provider-aws.so in $build/plugins/.libs"; exit 1; }
export HYPERTEST_PLUGIN_PATH=$build/plugins/.libs
export HYPERTEST_FUNCTION_PROGRAM=$build/cli/hypertest-function
n=${RELIABILITY_N:-5000}
conc=${RELIABILITY_CONCURRENCY:-200}
rate=${RELIABILITY_RATE:-0.2}
seed=${RELIABILITY_SEED:-1}
slow=${RELIABILITY_SLOW_MS:-300}
mode=${BENCH_ENDPOINT:-c}
case "$mode" in c | python) ;; *) echo "BENCH_ENDPOINT must be c or python, not '$mode'"; exit 2 ;; esac
tmp=$(mktemp -d /tmp/ht-bench-reliability-XXXXXX)
. "$here/bench/lib-endpoint.sh"
trap bench_cleanup EXIT
bench_services_start
fn="reliability-$$"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

http() { # METHOD URL [BODY]
	"$py" - "$2" "$1" "${3:-}" <<'PY'
import sys, urllib.request
url, method, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
PY
}
control() { http "$1" "$HT_AWS_CONTROL$2" "${3:-}"; }

invoke_ep=$HT_AWS_ENDPOINT
if [ "$mode" = c ]; then
	bench_endpoint_build
	bench_endpoint_start ep
	invoke_ep=http://127.0.0.1:$port
fi

project() { # LAMBDA_ENDPOINT
	mkdir -p "$tmp/p/tests"
	echo "no-op" >"$tmp/p/tests/noop.txt"
	"$py" - "$tmp/p" "$n" "$conc" "$fn" "$1" <<'PY'
import json, os, sys
d, n, c, fn, lam = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ep = os.environ["HT_AWS_ENDPOINT"]
cfg = {"concurrency": c, "driftDetectionPolicy": "silence", "imageName": "bench/reliability",
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": {
           "region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
           "ecrRegistry": os.environ["HT_ECR_REGISTRY"],
           "endpoints": {"lambda": lam, "ecr": ep, "servicequotas": ep,
                         "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

control POST /quota '{"value": 5000}' >/dev/null
project "$HT_AWS_ENDPOINT"
control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 100}' >/dev/null
"$hypertest" -C "$tmp/p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; exit 1; }
project "$invoke_ep"
faults="{\"rate\": $rate, \"seed\": $seed, \"slowMs\": $slow}"
if [ "$mode" = c ]; then
	http POST "$invoke_ep/_faults" "$faults" >/dev/null
else
	control POST "/function/$fn" "{\"mode\": \"success\", \"faults\": $faults}" >/dev/null
fi
echo "reliability: $n tests at concurrency $conc, $rate of the invocations faulty (seed $seed), endpoint:" \
	"$([ "$mode" = c ] && echo bench/lambda-endpoint.c || echo tests/services/aws/endpoint.py)"
start=$(date +%s.%N)
rc=0
"$hypertest" -C "$tmp/p" invoke >"$tmp/invoke.out" 2>&1 || rc=$?
end=$(date +%s.%N)
if [ "$mode" = c ]; then
	http GET "$invoke_ep/_faults" >"$tmp/faults.json"
else
	control GET "/function/$fn" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["stats"]))' >"$tmp/faults.json"
fi
control POST /quota '{"value": 1000}' >/dev/null
cp "$tmp/p/hypertest.results.json" "$tmp/results.json"
echo "invoke exited $rc (1: some tests failed) in $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"
[ "$rc" -le 1 ] || { tail -30 "$tmp/invoke.out"; echo "invoke failed"; exit 1; }
"$py" "$here/tests/services/aws/reliability.py" "$tmp/results.json" "$tmp/faults.json" "$n" ||
	{ echo "FAIL: not every test accounted for"; exit 1; }
