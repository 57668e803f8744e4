#!/bin/sh
# Reliability under injected faults, through the CLI with the `aws`
# provider against the strict endpoint (tests/services/aws/endpoint.py): deploy,
# then HT_FAULTS_N (300) invocations while the function answers 20 % of
# them with a seeded mix of faults: 429, 500, 503, a reset connection, a
# truncated body, a body that is not JSON, a slow body, a function error.
# tests/services/aws/reliability.py then checks that every test is in the results
# file exactly once, passed (retried to success or not) or failed with the
# reason its last invocation deserved, and that the endpoint's count of
# each kind of fault matches.  bench/reliability.sh is the same at 5,000.
#
# The services: those of the environment (HT_AWS_ENDPOINT & co.), else
# started here; exit 77 when they cannot start.
. "$(dirname "$0")/preamble.sh"
n=${HT_FAULTS_N:-300}
tmp=$(mktemp -d /tmp/ht-aws-faults-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
trap aws_cleanup EXIT
aws_services_start

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="faults-$id"
proj="$tmp/project"
mkdir -p "$proj/tests"
echo "no-op" >"$proj/tests/noop.txt"
"$py" - "$proj" "$n" "$fn" "$id" <<'PY'
import json, os, sys
d, n, fn, id_ = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ep = os.environ["HT_AWS_ENDPOINT"]
# the bucket is shared with the other tests that run at the same time: a
# manifest name of its own
cfg = {"concurrency": 30, "driftDetectionPolicy": "silence", "imageName": "faults/aws-" + id_,
       "buildManifestFileName": "faults-%s.manifest" % id_,
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": {
           "region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
           "ecrRegistry": os.environ["HT_ECR_REGISTRY"], "lambdaUpdateMaxWaitTime": 30,
           "endpoints": {"lambda": ep, "ecr": ep, "servicequotas": ep,
                         "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 100}' >/dev/null ||
	fail "cannot create the function"
"$hypertest" -C "$proj" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

# 20 % faults, every kind alike; retryAfter 0 keeps the throttled retries short
control POST "/function/$fn" '{"mode": "success", "faults": {"rate": 0.2, "seed": 13,
	"slowMs": 200, "retryAfter": 0}}' >/dev/null || fail "cannot set the faults"
"$hypertest" -C "$proj" invoke >"$tmp/invoke.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { tail -30 "$tmp/invoke.out"; fail "invoke with failed tests must exit 1, not $rc"; }
function_stats "$tmp/stats.json" || fail "no statistics from the endpoint"
"$py" "$tests_src/services/aws/reliability.py" "$proj/hypertest.results.json" "$tmp/stats.json" "$n" ||
	{ tail -30 "$tmp/invoke.out"; fail "not every test accounted for"; }
# each kind of fault happened at least once (the seed gives every kind)
every_fault_kind "$tmp/stats.json" || fail "a kind of fault never happened"

# Then faults that are all worth a retry, 80 % of the invocations: many
# tests run out of attempts; each must still be in the results, failed
# with the reason and the number of attempts.
control POST "/function/$fn" '{"mode": "success", "faults": {"rate": 0.8, "seed": 5,
	"retryAfter": 0, "kinds": {"throttle": 1, "server500": 1, "server503": 1, "reset": 1,
	"truncated": 1}}}' >/dev/null || fail "cannot set the faults"
"$hypertest" -C "$proj" invoke >"$tmp/invoke2.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { tail -30 "$tmp/invoke2.out"; fail "invoke with failed tests must exit 1, not $rc"; }
function_stats "$tmp/stats2.json" || fail "no statistics from the endpoint"
"$py" "$tests_src/services/aws/reliability.py" "$proj/hypertest.results.json" "$tmp/stats2.json" "$n" \
	"$tmp/summary2.txt" || { tail -30 "$tmp/invoke2.out"; fail "not every test accounted for (80 %)"; }
grep -q 'retries exhausted [1-9]' "$tmp/summary2.txt" || fail "no test ran out of retries at 80 %"
echo "PASS: $n invocations under 20 % faults, then 80 % retryable ones, every test accounted for"
