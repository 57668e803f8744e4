#!/bin/sh
# End to end through the CLI with the `aws` provider and the `command`
# runner, against the local services of tests/services/aws (endpoint.py for Lambda,
# ECR and Service Quotas with every SigV4 checked; docker-registry as ECR's
# registry; s3rver behind the signature-checking S3 front):
#
#  1. deploy: the image is pushed to the registry with the ECR login, the
#     manifest stored in S3, UpdateFunctionCode pinned to the digest and
#     waited for; doctor passes.
#  2. invoke: endpoint.py's Invoke runs in "command" mode: it starts the
#     built hypertest-function with the payload on stdin, in the project
#     directory with HYPERTEST_FUNCTION_CONFIG pointing at its configuration
#     (the same files the image carries in /var/task; unpacking the image
#     would only add a copy), the function's credentials in its environment.
#     hypertest-function serves it through the aws provider (no
#     AWS_LAMBDA_RUNTIME_API: stdin to stdout) and stores the artifacts in
#     S3.  Results: 3 passed, 1 failed with its message; artifacts and the
#     results file in the bucket; every request authentic.
#  3. the Lambda Runtime API loop under @vercel/fun (tests/services/aws/fun-smoke.js):
#     a bootstrap that execs hypertest-function; two payloads in, their
#     responses out, artifacts in s3rver.  Skipped (with a note) without npm.
#
# The services: those of the environment (HT_AWS_ENDPOINT & co., as CI
# exports them), else started here; exit 77 when they cannot start.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-aws-e2e-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
trap aws_cleanup EXIT
aws_services_start

fnprog=$HYPERTEST_FUNCTION_PROGRAM
first_seq=$(last_seq)

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="e2e-$id"
proj="$tmp/project"
mkdir -p "$proj/tests"
printf 'echo first passed\n' >"$proj/tests/pass1.sh"
printf 'echo second passed\n' >"$proj/tests/pass2.sh"
printf 'echo third passed; echo "a note" >"$1/note.txt"\n' >"$proj/tests/pass3.sh"
printf 'echo "expected 4, got 5" >&2\nexit 1\n' >"$proj/tests/fail.sh"
cat >"$proj/hypertest.config.json" <<JSON
{"concurrency": 10, "imageName": "e2e/aws-$id", "buildManifestFileName": "e2e-$id.manifest",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}", "{artifactsDir}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "us-east-1",
   "functionName": "$fn", "bucketName": "$HT_S3_BUCKET", "ecrRegistry": "$HT_ECR_REGISTRY",
   "lambdaUpdateMaxWaitTime": 30,
   "endpoints": {"lambda": "$HT_AWS_ENDPOINT", "ecr": "$HT_AWS_ENDPOINT",
                 "servicequotas": "$HT_AWS_ENDPOINT", "s3": "$HT_S3_CHECKED_ENDPOINT"}}}}
JSON

# The function: hypertest-function in the project directory, the payload on stdin.
behaviour=$("$py" - "$fnprog" "$proj" "$HYPERTEST_PLUGIN_PATH" <<'PY'
import json, os, sys
prog, proj, plugins = sys.argv[1:4]
env = {"HYPERTEST_FUNCTION_CONFIG": proj + "/hypertest.config.json",
       "HYPERTEST_PLUGIN_PATH": plugins, "AWS_REGION": "us-east-1",
       "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
       "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]}
print(json.dumps({"mode": "command", "command": [prog], "cwd": proj, "env": env,
                  "timeoutMs": 60000, "updateDelayMs": 500}))
PY
)
control POST "/function/$fn" "$behaviour" >/dev/null || fail "cannot create the function"

# ---- 1. deploy and doctor ----------------------------------------------------------------
"$hypertest" -C "$proj" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
control GET "/function/$fn" >"$tmp/fn.json"
digest=$(json "$tmp/fn.json" 'd["configuration"]["CodeSha256"]')
uri=$(json "$tmp/fn.json" 'd["imageUri"]')
case "$uri" in
*.dkr.ecr.us-east-1.amazonaws.com/e2e/aws-$id@sha256:$digest) ;;
*) cat "$tmp/deploy.out"; fail "function image $uri (digest $digest)" ;;
esac
[ "$(json "$tmp/fn.json" 'd["configuration"]["LastUpdateStatus"]')" = Successful ] || fail "update not done"
grep -q "sha256:$digest" "$tmp/deploy.out" || { cat "$tmp/deploy.out"; fail "deploy does not name the digest"; }
echo "deployed: $uri"
# the runtime layer and the test layer, both new to this repository
grep -q "2 of 2 layers uploaded" "$tmp/deploy.out" || { cat "$tmp/deploy.out"; fail "first push"; }
"$hypertest" -C "$proj" doctor >"$tmp/doctor.out" 2>&1 || { cat "$tmp/doctor.out"; fail "doctor"; }
for c in credentials region function bucket registry concurrency; do
	grep -q "provider.aws.$c" "$tmp/doctor.out" || { cat "$tmp/doctor.out"; fail "doctor lacks $c"; }
done
grep -qF "$AWS_SECRET_ACCESS_KEY" "$tmp/deploy.out" "$tmp/doctor.out" && fail "a secret in the output"

# ---- 2. invoke -----------------------------------------------------------------------------------
"$hypertest" -C "$proj" --verbose invoke >"$tmp/invoke.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/invoke.out"; fail "invoke with a failing test must exit 1, not $rc"; }
grep -qF "$AWS_SECRET_ACCESS_KEY" "$tmp/invoke.out" && fail "a secret in the verbose output"
res="$proj/hypertest.results.json"
"$py" - "$res" <<'PY' || { cat "$tmp/invoke.out"; fail "results"; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tests"] == {"total": 4, "success": 3, "skipped": 0, "failed": 1}, d["tests"]
by = {t["context"]["id"]: t for t in d["testResults"]}
assert by["tests/fail.sh"]["status"] == "failed", by["tests/fail.sh"]
assert "expected 4, got 5" in by["tests/fail.sh"]["error"]["message"], by["tests/fail.sh"]
for n in ("1", "2", "3"):
    assert by["tests/pass%s.sh" % n]["status"] == "success", by
PY
run=$(json "$res" 'd["runId"]')
pass3=$(json "$res" '[t["testId"] for t in d["testResults"] if t["context"]["id"] == "tests/pass3.sh"][0]')
# the bucket: the results file and the artifacts, read back with botocore
s3get() {
	"$py" - "$HT_S3_CHECKED_ENDPOINT" "$HT_S3_BUCKET" "$1" <<'PY'
import sys, botocore.session
from botocore.config import Config
ep, bucket, key = sys.argv[1:4]
c = botocore.session.get_session().create_client("s3", endpoint_url=ep, region_name="us-east-1",
                                                  config=Config(s3={"addressing_style": "path"}))
sys.stdout.write(c.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
PY
}
s3get "$run/hypertest.results.json" >"$tmp/results.s3" || fail "no results file in the bucket"
[ "$(json "$tmp/results.s3" 'd["tests"]["total"]')" = 4 ] || fail "results in the bucket"
[ "$(s3get "$run/$pass3/note.txt")" = "a note" ] || fail "no artifact note.txt in the bucket"
s3get "$run/$pass3/stdout.log" | grep -q "third passed" || fail "no stdout.log artifact in the bucket"
# the summary report invoke built, in S3 (ListObjectsV2 through s3rver)
s3get "$run/report/index.html" >"$tmp/report.s3" || fail "no report in the bucket"
grep -q 'expected 4, got 5' "$tmp/report.s3" || fail "the report in S3 lacks the failure"
failid=$(json "$res" '[t["testId"] for t in d["testResults"] if t["context"]["id"] == "tests/fail.sh"][0]')
grep -qF "aws s3 cp &#39;s3://$HT_S3_BUCKET/$run/$failid/stderr.log&#39; ." "$tmp/report.s3" ||
	fail "the report in S3 lacks the aws s3 cp command of a failure's artifact"
grep -qF "aws s3 cp --recursive &#39;s3://$HT_S3_BUCKET/$run/$pass3/&#39; ." "$tmp/report.s3" ||
	fail "the report in S3 lacks the aws s3 cp command of a test's artifacts"
# hypertest report of that run on "another machine": the configuration alone
other="$tmp/other"
mkdir -p "$other"
cp "$proj/hypertest.config.json" "$other/"
"$hypertest" -C "$other" report "$run" --junit junit.xml >"$tmp/report.out" 2>&1 ||
	{ cat "$tmp/report.out"; fail "hypertest report from S3"; }
grep -q "^report: $other/.hypertest/reports/$run/index.html (stored at s3://$HT_S3_BUCKET/$run/report/index.html)" \
	"$tmp/report.out" || { cat "$tmp/report.out"; fail "report: where it is"; }
grep -q "^artifacts: s3://$HT_S3_BUCKET/$run" "$tmp/report.out" || { cat "$tmp/report.out"; fail "report: artifacts"; }
grep -q "2 files\|3 files" "$other/.hypertest/reports/$run/index.html" || fail "report from S3: artifacts not counted"
if command -v xmllint >/dev/null 2>&1; then
	xmllint --noout --schema "$tests_src/e2e/junit/junit-10.xsd" "$other/junit.xml" ||
		fail "report from S3: JUnit XML does not validate"
fi
grep -q 'third passed' "$other/junit.xml" || fail "report from S3: no system-out from the logs"
echo "report: built from S3 by invoke and again by hypertest report"
control GET "/function/$fn" >"$tmp/fn.json"
[ "$(json "$tmp/fn.json" 'd["stats"]["invocations"]')" = 4 ] || fail "not 4 invocations"
# the cost: the billed durations of the REPORT lines of the log tails, summed
"$py" - "$res" "$tmp/fn.json" <<'PY' || fail "cost"
import json, sys
d, fn = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
c, billed = d["cost"], fn["stats"]["billedMs"]
assert billed > 0 and c["billedMs"] == billed, (c, billed)
assert sum(t["cost"]["billedMs"] for t in d["testResults"]) == billed, d["testResults"]
assert abs(c["gbSeconds"] - billed / 1000.0 * 2048 / 1024) < 1e-9, c
assert c["invocations"] == 4 and c["pricePerGBSecond"] == 0.0000166667, c
assert abs(c["dollars"] - (c["gbSeconds"] * 0.0000166667 + 4 * 0.0000002)) < 1e-12, c
PY
grep -q "GB-s billed" "$tmp/invoke.out" || fail "the cost is not printed"
echo "invoked: 3 passed, 1 failed; results and artifacts in s3://$HT_S3_BUCKET/$run/"

# every request since the start was authentic
authentic_since "$first_seq" "$tmp/requests.json" || fail "a request was not authentic"

# ---- a redeploy after a change uploads the new test layer only: the runtime layer
# (same hypertest build) is in the registry already
printf 'echo second passed, changed\n' >"$proj/tests/pass2.sh"
"$hypertest" -C "$proj" deploy >"$tmp/deploy2.out" 2>&1 || { cat "$tmp/deploy2.out"; fail "redeploy"; }
grep -q "1 of 2 layers uploaded" "$tmp/deploy2.out" || { cat "$tmp/deploy2.out"; fail "redeploy pushed the runtime layer again"; }
echo "redeployed: the runtime layer was not uploaded again"

# ---- 3. the Runtime API loop under @vercel/fun -----------------------------------------------
if [ -z "${HT_FUN_SMOKE:-}" ] || ! command -v node >/dev/null; then
	echo "no @vercel/fun: the Runtime API part is skipped"
	exit 0
fi
mkdir -p "$tmp/code"
# fun's runtime gets a fresh environment (no HOME, no LD_LIBRARY_PATH, ...)
cat >"$tmp/code/bootstrap" <<SH
#!/bin/sh
export HOME=/tmp HYPERTEST_PLUGIN_PATH='$HYPERTEST_PLUGIN_PATH'
export HYPERTEST_FUNCTION_CONFIG='$proj/hypertest.config.json'
cd '$proj' || exit 1
exec '$fnprog'
SH
chmod +x "$tmp/code/bootstrap"
frun="fun-$id"
printf '{"runId": "%s", "testId": "t1", "context": {"id": "tests/pass3.sh"}, "bucketName": "%s"}' \
	"$frun" "$HT_S3_BUCKET" >"$tmp/p1.json"
printf '{"runId": "%s", "testId": "t2", "context": {"id": "tests/fail.sh"}, "bucketName": "%s"}' \
	"$frun" "$HT_S3_BUCKET" >"$tmp/p2.json"
NODE_PATH=${HT_FUN_DIR:-} XDG_CACHE_HOME="$tmp/cache" node "$HT_FUN_SMOKE" --out "$tmp/fun.out" \
	"$tmp/code" "$tmp/p1.json" "$tmp/p2.json" >"$tmp/fun.log" 2>&1 || { cat "$tmp/fun.log"; fail "fun-smoke"; }
"$py" - "$tmp/fun.out" <<'PY' || { cat "$tmp/fun.log"; fail "Runtime API responses"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 2, lines
a, b = lines
assert a["StatusCode"] == 200 and a["FunctionError"] is None, a
assert a["Payload"]["success"] is True, a
assert b["FunctionError"] is None and b["Payload"]["success"] is False, b
assert "expected 4, got 5" in b["Payload"]["message"], b
PY
[ "$(s3get "$frun/t1/note.txt")" = "a note" ] || { cat "$tmp/fun.log"; fail "no artifact from the Runtime API run"; }
echo "Runtime API under @vercel/fun: 2 payloads answered, artifacts in s3://$HT_S3_BUCKET/$frun/"
exit 0
