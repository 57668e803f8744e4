#!/bin/sh
# The aws provider end to end against the local provider's Lambda emulator,
# as `sam local start-lambda` serves a function's image:
#
#  1. a base image of nothing but a static busybox, pushed to the registry
#     of services/aws (docker-registry, ECR's stand-in);
#  2. `hypertest deploy --output oci:DIR` with the aws provider: the image
#     (busybox, the runtime layer with the aws provider, the tests) pushed,
#     the manifest stored in S3 (s3rver), UpdateFunctionCode sent to
#     endpoint.py, and the same image written to an OCI layout;
#  3. a deploy with the local provider, isolation "lambda" and
#     functionImage naming that layout: the emulator's function runs the
#     very image the aws provider built (same digest);
#  4. hypertest-function with lambdaApi serves Lambda's Invoke API; the
#     provider's AWS credentials reach the sandboxes as an execution role's;
#  5. `hypertest invoke` with the aws provider, AWS_ENDPOINT_URL_LAMBDA
#     naming the emulator, driftDetectionPolicy "error" (the digest the
#     emulator's GetFunction names must be the manifest's): 50 tests at
#     concurrency 10, each run by the aws provider's function side in a
#     sandbox through the Runtime API, its artifacts stored in S3 from
#     inside the sandbox.  Every result is checked (45 passed, 5 failed with
#     their own message), every test's artifacts and the results file are
#     read back from S3, the sandboxes were reused (fewer cold starts than
#     tests, a /tmp counter above 1), and every request endpoint.py saw,
#     the sandboxes' S3 requests included, was signed correctly.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-lambda-aws-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
emu=""
cleanup() {
	[ -n "$emu" ] && kill "$emu" 2>/dev/null && wait "$emu" 2>/dev/null
	aws_cleanup
}
trap cleanup EXIT

# 1's base: skips, then $tmp/base
. "$(dirname "$0")/lambda-base.sh"

aws_services_start
unset AWS_ENDPOINT_URL_LAMBDA
export AWS_REGION=us-east-1
first_seq=$(last_seq)

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="lambda-aws-$id"
reghost=${HT_ECR_REGISTRY#http://}

# ---- 1. the base image, pushed to the registry -------------------------------------------------
"$py" - "$tmp/base" "$HT_ECR_REGISTRY" base/busybox-$id "$HT_ECR_USER" "$HT_ECR_PASSWORD" <<'PY' ||
import base64, json, os, sys, urllib.parse, urllib.request, urllib.error
layout, reg, repo, user, password = sys.argv[1:6]
auth = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
def call(method, url, data=None, ctype=None):
    h = {"Authorization": auth}
    if ctype:
        h["Content-Type"] = ctype
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    return urllib.request.urlopen(req, timeout=30)
def blob(d):
    data = open(os.path.join(layout, "blobs", "sha256", d[7:]), "rb").read()
    try:
        call("HEAD", "%s/v2/%s/blobs/%s" % (reg, repo, d))
        return
    except urllib.error.HTTPError:
        pass
    loc = call("POST", "%s/v2/%s/blobs/uploads/" % (reg, repo)).headers["Location"]
    loc = urllib.parse.urljoin(reg + "/", loc)
    call("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, data,
         "application/octet-stream")
index = json.load(open(os.path.join(layout, "index.json")))
desc = index["manifests"][0]
raw = open(os.path.join(layout, "blobs", "sha256", desc["digest"][7:]), "rb").read()
man = json.loads(raw)
for d in [man["config"]["digest"]] + [l["digest"] for l in man["layers"]]:
    blob(d)
call("PUT", "%s/v2/%s/manifests/latest" % (reg, repo), raw, desc["mediaType"])
PY
	fail "cannot push the base image to $HT_ECR_REGISTRY"

# ---- 2. the project, deployed with the aws provider ---------------------------------------------
proj=$tmp/project
mkdir -p "$proj/tests"
# t01..t50: t10, t20, ... fail; each leaves out.txt (its name and how many
# tests its sandbox ran before it, a counter in /tmp)
i=1
while [ $i -le 50 ]; do
	t=$(printf 't%02d' $i)
	if [ $((i % 10)) -eq 0 ]; then
		printf 'echo "%s: expected %d, got %d" >&2\nexit 1\n' "$t" $i $((i + 1)) >"$proj/tests/$t.sh"
	else
		cat >"$proj/tests/$t.sh" <<SH
c=\$(busybox cat /tmp/counter 2>/dev/null || echo 0)
c=\$((c + 1))
echo "\$c" >/tmp/counter || exit 1
echo "$t \$c" >"\$1/out.txt"
echo "$t passed"
SH
	fi
	i=$((i + 1))
done
cat >"$proj/hypertest.config.json" <<JSON
{"concurrency": 10, "imageName": "e2e/lambda-aws-$id", "driftDetectionPolicy": "error",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}", "{artifactsDir}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "us-east-1",
   "functionName": "$fn", "bucketName": "$HT_S3_BUCKET", "ecrRegistry": "$HT_ECR_REGISTRY",
   "baseImage": "$reghost/base/busybox-$id:latest", "lambdaUpdateMaxWaitTime": 30,
   "endpoints": {"ecr": "$HT_AWS_ENDPOINT", "servicequotas": "$HT_AWS_ENDPOINT",
                 "s3": "$HT_S3_CHECKED_ENDPOINT"}}}}
JSON
control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 200}' >/dev/null ||
	fail "cannot create the function in endpoint.py"
AWS_ENDPOINT_URL_LAMBDA=$HT_AWS_ENDPOINT "$hypertest" -C "$proj" deploy --output "oci:$tmp/fnimage" \
	>"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy with the aws provider"; }
digest=$(sed -n 's/.*image \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$tmp/deploy.out" | head -1)
[ -n "$digest" ] || { cat "$tmp/deploy.out"; fail "deploy named no digest"; }
echo "deployed with the aws provider: $digest, also in oci:$tmp/fnimage"

# ---- 3. the emulator's function: the aws provider's image --------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
emud=$tmp/emulator
mkdir -p "$emud/tests"
printf 'echo unused\n' >"$emud/tests/unused.sh"
cat >"$emud/hypertest.config.json" <<JSON
{"imageName": "e2e/emulator",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "lambda", "functionImage": "oci:$tmp/fnimage", "functionName": "$fn",
   "lambdaApi": "127.0.0.1:$port", "timeout": 60, "idleTimeout": 120, "ephemeralStorageMB": 16,
   "functionDir": ".hypertest/function"}}}
JSON
"$hypertest" -C "$emud" deploy >"$tmp/emu-deploy.out" 2>&1 || { cat "$tmp/emu-deploy.out"; fail "deploy with the local provider"; }
grep -q "runs functionImage $tmp/fnimage ($digest)" "$tmp/emu-deploy.out" ||
	{ cat "$tmp/emu-deploy.out"; fail "the local deploy did not take functionImage"; }
"$py" - "$emud/.hypertest/function/current" "$digest" <<'PY' || fail "the emulator's current image"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["digest"] == sys.argv[2], c
PY

# ---- 4. the emulator --------------------------------------------------------------------------
"$HYPERTEST_FUNCTION_PROGRAM" --config "$emud/hypertest.config.json" --verbose >"$tmp/emu.log" 2>&1 &
emu=$!
"$py" - "$port" "$fn" <<'PY' || { cat "$tmp/emu.log"; fail "the emulator does not answer"; }
import sys, time, urllib.request, urllib.error
for _ in range(400):
    try:
        urllib.request.urlopen("http://127.0.0.1:%s/2015-03-31/functions/%s" % tuple(sys.argv[1:3]),
                               timeout=5).read()
        sys.exit(0)
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.05)
sys.exit(1)
PY

# ---- 5. invoke with the aws provider through the emulator -------------------------------------
AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$port "$hypertest" -C "$proj" --verbose invoke >"$tmp/invoke.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { cat "$tmp/invoke.out"; tail -50 "$tmp/emu.log"; fail "invoke with 5 failing tests must exit 1, not $rc"; }
grep -qF "$AWS_SECRET_ACCESS_KEY" "$tmp/invoke.out" "$tmp/emu.log" && fail "a secret in the output"
grep -q "GET http://127.0.0.1:$port/2015-03-31/functions/$fn -> ok" "$tmp/invoke.out" ||
	{ cat "$tmp/invoke.out"; fail "invoke did not ask the emulator (AWS_ENDPOINT_URL_LAMBDA) for the function"; }
"$py" - "$proj/hypertest.results.json" "$HT_S3_CHECKED_ENDPOINT" "$HT_S3_BUCKET" "$tmp/emu.log" <<'PY' ||
import json, re, sys, botocore.session
from botocore.config import Config
res, ep, bucket, log = sys.argv[1:5]
d = json.load(open(res))
assert d["tests"] == {"total": 50, "success": 45, "skipped": 0, "failed": 5}, d["tests"]
s3 = botocore.session.get_session().create_client("s3", endpoint_url=ep, region_name="us-east-1",
                                                   config=Config(s3={"addressing_style": "path"}))
def get(key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
run = d["runId"]
counters = []
for t in d["testResults"]:
    path = t["context"]["id"]
    name = path[len("tests/"):-len(".sh")]
    n = int(name[1:])
    pre = "%s/%s/" % (run, t["testId"])
    if n % 10 == 0:
        msg = (t.get("error") or {}).get("message", "")
        assert t["status"] == "failed", t
        assert "%s: expected %d, got %d" % (name, n, n + 1) in msg, t
        assert "expected" in get(pre + "stderr.log"), t
    else:
        assert t["status"] == "success", t
        who, count = get(pre + "out.txt").split()
        assert who == name, (who, t)
        counters.append(int(count))
        assert "%s passed" % name in get(pre + "stdout.log"), t
s = json.loads(get(run + "/hypertest.results.json"))
assert s["runId"] == run and s["tests"] == d["tests"], s["tests"]
cold = len(re.findall(r"cold start: sandbox", open(log).read()))
assert 1 <= cold <= 10 and max(counters) > 1, (cold, sorted(counters))
print("50 results checked, artifacts of each in S3; %d cold starts, counters up to %d"
      % (cold, max(counters)))
PY
	{ cat "$tmp/invoke.out"; tail -80 "$tmp/emu.log"; fail "results"; }

# every request endpoint.py saw since the start was signed correctly, the
# sandboxes' S3 requests (artifacts) among them
authentic_since "$first_seq" "$tmp/requests.json" || fail "requests to endpoint.py"
"$py" - "$tmp/requests.json" "$proj/hypertest.results.json" <<'PY' || fail "requests to endpoint.py"
import json, sys
reqs = json.load(open(sys.argv[1]))
run = json.load(open(sys.argv[2]))["runId"]
# the artifacts, stored from inside the sandboxes: out.txt and stdout.log
# of the 45 passed tests at least
puts = [r for r in reqs if r["method"] == "PUT" and "/%s/" % run in r["path"]]
assert len(puts) >= 90, len(puts)
print(len(puts), "PUTs of the run")
PY
echo "aws provider through the Lambda emulator: 50 tests, results and artifacts in s3://$HT_S3_BUCKET/"
exit 0
