# shellcheck shell=sh disable=SC2034,SC2154 # $tests_src and $tmp are the caller's, $py is for it
# Sourced by the end-to-end scripts of the aws provider, after preamble.sh
# and once they have made their $tmp:
#   . "$(dirname "$0")/aws-helpers.sh"
# What they share about the local services of tests/services/aws: starting
# and stopping them, the strict endpoint's control API and its log of
# requests.

aws_started=""

# aws_services_start: the services of the environment (HT_AWS_ENDPOINT &
# co., as CI exports them), else started in $tmp/svc for the script's
# duration; exit 77 (skipped) when they cannot start or lack s3rver or the
# registry.  Then $py is the services' python, and no AWS_ variable of the
# caller's sends a request elsewhere.
aws_services_start() {
	if [ -z "${HT_AWS_ENDPOINT:-}" ]; then
		"$tests_src/services/aws/services.sh" start "$tmp/svc" >"$tmp/services.log" 2>&1 ||
			{ cat "$tmp/services.log"; echo "services did not start: skipped"; exit 77; }
		aws_started=1
		. "$tmp/svc/env"
	fi
	[ -n "${HT_S3_CHECKED_ENDPOINT:-}" ] && [ -n "${HT_ECR_REGISTRY:-}" ] ||
		{ echo "no s3rver or registry: skipped"; exit 77; }
	py=${HT_AWS_PYTHON:-python3}
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
}

# aws_cleanup: the EXIT trap's part: stops the services started here and
# removes $tmp (kept when HT_KEEP is set).
aws_cleanup() {
	[ -n "$aws_started" ] && "$tests_src/services/aws/services.sh" stop "$tmp/svc" >/dev/null 2>&1
	[ -n "${HT_KEEP:-}" ] || rm -rf "$tmp"
}

# control METHOD PATH [BODY]: the endpoint's control API (HT_AWS_CONTROL)
control() {
	"$py" - "$HT_AWS_CONTROL$2" "$1" "${3:-}" <<'PY'
import sys, urllib.request
url, method, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=30).read().decode())
PY
}

# function_stats FILE: the endpoint's statistics of function $fn (its
# invocations and the faults it injected) into FILE
function_stats() {
	control GET "/function/$fn" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["stats"]))' >"$1"
}

# every_fault_kind FILE: each kind of fault the endpoint injects happened at
# least once in FILE (function_stats); fails naming those that did not
every_fault_kind() {
	"$py" - "$1" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["faults"]
missing = [k for k in ("throttle", "server500", "server503", "reset", "truncated", "garbage",
                       "slow", "functionError") if not f.get(k)]
assert not missing, "no %s fault in %s" % (missing, f)
PY
}

# json FILE EXPR: EXPR (Python, the file's JSON as d) printed
json() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# last_seq: the number of the last request the endpoint logged (-1: none yet)
last_seq() {
	control GET "/requests?last=1" | "$py" -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(r[-1]["seq"] if r else -1)'
}

# authentic_since SEQ FILE: the requests logged after SEQ that claim the key
# AWS_ACCESS_KEY_ID (this test's: the endpoint is shared with tests that
# send refused requests on purpose, under keys of their own) into FILE, a
# JSON array; fails unless there is one at least and every signature was
# accepted.
authentic_since() {
	control GET /requests >"$2" || return 1
	"$py" - "$1" "$AWS_ACCESS_KEY_ID" "$2" <<'PY'
import json, sys
seq, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
reqs = [r for r in json.load(open(out))["requests"]
        if r["seq"] > seq and r.get("claimedKeyId") == key]
json.dump(reqs, open(out, "w"))
bad = [r for r in reqs if r.get("auth") != "ok"]
assert reqs and not bad, bad
print(len(reqs), "requests, every signature accepted")
PY
}
