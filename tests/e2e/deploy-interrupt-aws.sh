#!/bin/sh
# The first SIGINT ends `hypertest deploy` with the aws provider while the
# provider waits for the Lambda function update (endpoint.py's
# updateDelayMs: 20 s), within a few seconds, with a non-zero status and a
# message saying it was cancelled and while doing what.  What it leaves:
# the update goes on in Lambda (the manifest, stored before, names the
# image it moves to); the next deploy waits for it and completes.
#
# The services: those of the environment (HT_AWS_ENDPOINT & co., as CI
# exports them), else started here; exit 77 when they cannot start.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-deploy-interrupt-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
trap aws_cleanup EXIT
aws_services_start

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="e2e-int-$id"
proj="$tmp/project"
mkdir -p "$proj/tests"
printf 'echo passed\n' >"$proj/tests/pass.sh"
cat >"$proj/hypertest.config.json" <<JSON
{"concurrency": 2, "imageName": "e2e/interrupt-$id", "buildManifestFileName": "e2e-int-$id.manifest",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "us-east-1",
   "functionName": "$fn", "bucketName": "$HT_S3_BUCKET", "ecrRegistry": "$HT_ECR_REGISTRY",
   "lambdaUpdateMaxWaitTime": 120,
   "endpoints": {"lambda": "$HT_AWS_ENDPOINT", "ecr": "$HT_AWS_ENDPOINT",
                 "servicequotas": "$HT_AWS_ENDPOINT", "s3": "$HT_S3_CHECKED_ENDPOINT"}}}}
JSON
# an update that takes 20 s
control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 20000}' >/dev/null ||
	fail "cannot create the function"

# ---- SIGINT while the update is waited for -------------------------------------------------
# Start deploy, wait until it says it is updating the function, let it sit
# in the wait for a second (between two polls, or in one), send SIGINT and
# wait at most 30 s for the exit.
signal_timed "$tmp/deploy.out" SIGINT "$tmp/deploy.out" "Lambda $fn: updating to" -- \
	"$hypertest" -C "$proj" --verbose deploy >"$tmp/signalled" ||
	{ cat "$tmp/deploy.out"; fail "deploy was not interrupted"; }
read -r rc secs <"$tmp/signalled"
echo "deploy exited $rc, $secs s after SIGINT (the update lasts 20 s)"
[ "$rc" -ne 0 ] || { cat "$tmp/deploy.out"; fail "a cancelled deploy exited 0"; }
[ "${secs%.*}" -lt 5 ] || { cat "$tmp/deploy.out"; fail "deploy took $secs s to stop after SIGINT"; }
grep -q "Lambda $fn: cancelled while waiting for the function update to .*@sha256:" "$tmp/deploy.out" ||
	{ cat "$tmp/deploy.out"; fail "deploy does not say it was cancelled waiting for the update"; }
grep -q "deploy failed at step 'update'" "$tmp/deploy.out" ||
	{ cat "$tmp/deploy.out"; fail "deploy does not name the step"; }
grep "cancel" "$tmp/deploy.out"

# what it left: the update goes on in Lambda, towards the image the
# manifest names
control GET "/function/$fn" >"$tmp/fn.json"
[ "$(json "$tmp/fn.json" 'd["configuration"]["LastUpdateStatus"]')" = InProgress ] ||
	{ cat "$tmp/fn.json"; fail "the update is not in progress any more"; }
digest=$(json "$tmp/fn.json" 'd["configuration"]["CodeSha256"]')
grep -q "sha256:$digest" "$tmp/deploy.out" || { cat "$tmp/deploy.out"; fail "the update is not to the pushed image"; }

# ---- the next deploy waits for that update and completes ------------------------------------
control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 300}' >/dev/null ||
	fail "cannot change the function"
"$hypertest" -C "$proj" deploy >"$tmp/deploy2.out" 2>&1 || { cat "$tmp/deploy2.out"; fail "the next deploy"; }
control GET "/function/$fn" >"$tmp/fn.json"
[ "$(json "$tmp/fn.json" 'd["configuration"]["LastUpdateStatus"]')" = Successful ] ||
	{ cat "$tmp/fn.json"; fail "the next deploy left the update unfinished"; }
[ "$(json "$tmp/fn.json" 'd["configuration"]["CodeSha256"]')" = "$digest" ] ||
	fail "the next deploy points the function at another image"
echo "the next deploy waited for the update and completed"
exit 0
