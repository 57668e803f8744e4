#!/bin/sh
# The first SIGINT ends, within seconds, what the aws provider blocks in
# before anything is in hand to save, with status 1 and a message saying it
# was cancelled and in which request:
#
#  1. invoke reading the manifest (S3 GetObject) from an endpoint that
#     accepts the connection and never answers;
#  2. invoke asking for the function's image (Lambda GetFunction, the drift
#     check) from such an endpoint, the manifest read from s3rver: the run
#     does not start and no results are written;
#  3. provision creating the resources, its first request (ECR
#     DescribeRepositories) unanswered;
#  4. provision --dry-run, the plan made by the services and its last
#     request (Service Quotas GetServiceQuota) unanswered: a cancel is not
#     a quota that cannot be read (a warning, and the plan handed back);
#  5. destroy, its first request (Lambda GetFunction) unanswered.
#
# The endpoint that never answers is a listener of this script's (it ends
# by itself after 90 s).  The services: those of the environment
# (HT_AWS_ENDPOINT & co., as CI exports them), else started here; exit 77
# when they cannot start.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-invoke-interrupt-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
listener=""
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	aws_cleanup
}
trap cleanup EXIT
aws_services_start
export AWS_REGION=us-east-1

# ---- the endpoint that never answers -------------------------------------------------------
# Accepts every connection, holds it, reads nothing and answers nothing;
# one line in $tmp/accepted per connection.  Its port in $tmp/port.
"$py" -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
s.settimeout(0.5)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
held, end = [], time.time() + 90
while time.time() < end:
    try:
        held.append(s.accept()[0])
        open(sys.argv[2], "a").write("accepted\n")
    except socket.timeout:
        pass' "$tmp/port" "$tmp/accepted" &
listener=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$tmp/port" ] || fail "the listener did not start"
hang="http://127.0.0.1:$(cat "$tmp/port")"
: >"$tmp/accepted"

# signalled WHAT -- COMMAND...: COMMAND with its output in $tmp/WHAT.out,
# SIGINT a second after the listener accepts a connection of its
# (signal_timed); then check it exited 1 within 5 s and said "cancelled".
signalled() {
	what=$1
	shift 2
	signal_timed "$tmp/$what.out" SIGINT "$tmp/accepted" accepted -- "$@" >"$tmp/$what.rc" ||
		{ cat "$tmp/$what.out"; fail "$what was not interrupted"; }
	read -r rc secs <"$tmp/$what.rc"
	echo "$what exited $rc, $secs s after SIGINT"
	[ "$rc" -eq 1 ] || { cat "$tmp/$what.out"; fail "$what exited $rc after SIGINT, not 1"; }
	[ "${secs%.*}" -lt 5 ] || { cat "$tmp/$what.out"; fail "$what took $secs s to stop after SIGINT"; }
	grep "^hypertest: .*cancelled" "$tmp/$what.out" ||
		{ cat "$tmp/$what.out"; fail "$what does not say it was cancelled"; }
}

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="e2e-ii-$id"
proj="$tmp/project"
mkdir -p "$proj/tests"
printf 'echo passed\n' >"$proj/tests/pass.sh"
# write_config S3 LAMBDA ECR IAM SERVICEQUOTAS: the endpoints
write_config() {
	cat >"$proj/hypertest.config.json" <<JSON
{"concurrency": 2, "imageName": "e2e/ii-$id", "buildManifestFileName": "e2e-ii-$id.manifest",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "us-east-1",
   "functionName": "$fn", "bucketName": "$HT_S3_BUCKET", "ecrRegistry": "$HT_ECR_REGISTRY",
   "roleName": "$fn-exec",
   "endpoints": {"s3": "$1", "lambda": "$2", "ecr": "$3", "iam": "$4", "servicequotas": "$5"}}}}
JSON
}
ht() { "$hypertest" -C "$proj" --verbose "$@"; }
svc_iam=${HT_IAM_ENDPOINT:-$HT_AWS_ENDPOINT}

# ---- 1. invoke, the manifest never comes -----------------------------------------------------
write_config "$hang" "$HT_AWS_ENDPOINT" "$HT_AWS_ENDPOINT" "$svc_iam" "$HT_AWS_ENDPOINT"
signalled invoke-manifest -- "$hypertest" -C "$proj" --verbose invoke
grep -q "^hypertest: .*GetObject.*e2e-ii-$id.manifest.*cancelled" "$tmp/invoke-manifest.out" ||
	{ cat "$tmp/invoke-manifest.out"; fail "invoke does not name the manifest's request"; }

# ---- 2. invoke, GetFunction never answers -----------------------------------------------------
control POST "/function/$fn" '{"mode": "success"}' >/dev/null || fail "cannot create the function"
write_config "$HT_S3_CHECKED_ENDPOINT" "$HT_AWS_ENDPOINT" "$HT_AWS_ENDPOINT" "$svc_iam" "$HT_AWS_ENDPOINT"
ht deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
write_config "$HT_S3_CHECKED_ENDPOINT" "$hang" "$HT_AWS_ENDPOINT" "$svc_iam" "$HT_AWS_ENDPOINT"
signalled invoke-getfunction -- "$hypertest" -C "$proj" --verbose invoke
grep -q "^hypertest: .*GetFunction.*cancelled" "$tmp/invoke-getfunction.out" ||
	{ cat "$tmp/invoke-getfunction.out"; fail "invoke does not name GetFunction"; }
[ ! -e "$proj/hypertest.results.json" ] || fail "a cancelled invoke wrote results"
grep -q "^run .* started:\|cancelled before it started" "$tmp/invoke-getfunction.out" &&
	{ cat "$tmp/invoke-getfunction.out"; fail "the run started after the cancel"; }
# the same handle's next command is not cut short: with the endpoint back,
# the invoke runs
write_config "$HT_S3_CHECKED_ENDPOINT" "$HT_AWS_ENDPOINT" "$HT_AWS_ENDPOINT" "$svc_iam" "$HT_AWS_ENDPOINT"
ht invoke >"$tmp/invoke.out" 2>&1 || { cat "$tmp/invoke.out"; fail "invoke after the cancelled one"; }

# ---- 3. provision, its first request never answered ----------------------------------------
write_config "$hang" "$hang" "$hang" "$hang" "$hang"
signalled provision -- "$hypertest" -C "$proj" --verbose provision
grep -q "^hypertest: .*ECR DescribeRepositories.*cancelled" "$tmp/provision.out" ||
	{ cat "$tmp/provision.out"; fail "provision does not name the request"; }

# ---- 4. provision --dry-run, the quota never comes -------------------------------------------
write_config "$HT_S3_CHECKED_ENDPOINT" "$HT_AWS_ENDPOINT" "$HT_AWS_ENDPOINT" "$svc_iam" "$hang"
signalled plan -- "$hypertest" -C "$proj" --verbose provision --dry-run
grep -q "^hypertest: .*GetServiceQuota.*cancelled" "$tmp/plan.out" ||
	{ cat "$tmp/plan.out"; fail "the plan does not name the quota's request"; }

# ---- 5. destroy, its first request never answered ---------------------------------------------
write_config "$hang" "$hang" "$hang" "$hang" "$hang"
signalled destroy -- "$hypertest" -C "$proj" --verbose destroy --yes
grep -q "^hypertest: .*GetFunction.*cancelled" "$tmp/destroy.out" ||
	{ cat "$tmp/destroy.out"; fail "destroy does not name the request"; }
exit 0
