#!/bin/sh
# The local provider's isolation "lambda" end to end through the CLI: a
# base image of nothing but a static busybox, deployed with the runtime
# layer; each sandbox runs the image's own entry point, which takes its
# invocations from the Runtime API the provider serves on loopback.
#  - the tests run through the Runtime API (AWS_LAMBDA_RUNTIME_API set);
#  - one sandbox serves invocation after invocation (concurrency 1): a
#    counter in /tmp goes up from test to test (warm starts);
#  - the root is read-only (/var/task included), /tmp writable;
#  - /tmp over ephemeralStorageMB fails that test, not the run;
#  - a test past the timeout fails "timed out" and its sandbox is replaced
#    (a second cold start: the counter starts again);
#  - the uid is not 0, Lambda's environment variables are set;
#  - an image whose function cannot start (its runner does not exist)
#    fails each test with its init error (POST .../init/error);
#  - through the Invoke API (lambdaApi): a timeout is Sandbox.Timedout, a
#    runtime that dies Runtime.ExitError in Lambda's words, and the error
#    document a runtime of the image's own posts is the answer as it is.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-lambda-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lambda-base.sh"

p=$tmp/project
mkdir -p "$p/tests"
# each counter test: the value of /tmp/counter it left, as an artifact
for n in 1 2 3; do
	cat >"$p/tests/counter$n.sh" <<'SH'
c=$(busybox cat /tmp/counter 2>/dev/null || echo 0)
c=$((c + 1))
echo "$c" >/tmp/counter || exit 1
echo "$c" >"$1/counter.txt"
echo "counter $c"
SH
done
cat >"$p/tests/sandbox.sh" <<'SH'
fails=""
[ "$(busybox id -u)" != 0 ] || fails="$fails uid-0"
[ "$(busybox id -g)" != 0 ] || fails="$fails gid-0"
[ -n "${AWS_LAMBDA_RUNTIME_API:-}" ] || fails="$fails no-runtime-api"
[ "${AWS_LAMBDA_FUNCTION_NAME:-}" = e2e-fn ] || fails="$fails function-name"
[ "${AWS_LAMBDA_FUNCTION_MEMORY_SIZE:-}" = 10240 ] || fails="$fails memory-size"
[ "${AWS_LAMBDA_FUNCTION_VERSION:-}" = '$LATEST' ] || fails="$fails version"
[ -n "${AWS_REGION:-}" ] || fails="$fails region"
[ "${LAMBDA_TASK_ROOT:-}" = /var/task ] || fails="$fails task-root"
[ "${LAMBDA_RUNTIME_DIR:-}" = /var/runtime ] || fails="$fails runtime-dir"
[ "${TZ:-}" = :UTC ] || fails="$fails tz"
[ "${LANG:-}" = en_US.UTF-8 ] || fails="$fails lang"
[ -n "${LD_LIBRARY_PATH:-}" ] || fails="$fails ld-library-path"
[ "${PATH:-}" = /bin ] || fails="$fails image-path"
echo x >/var/task/written 2>/dev/null && fails="$fails task-root-writable"
echo x >/written 2>/dev/null && fails="$fails root-writable"
echo x >/tmp/written || fails="$fails tmp-not-writable"
echo x >/dev/shm/written 2>/dev/null && fails="$fails dev-shm-writable"
echo x >/dev/null || fails="$fails dev-null"
[ "$(ulimit -n)" = 1024 ] || fails="$fails nofile-$(ulimit -n)"
[ -z "$fails" ] || { echo "not Lambda's sandbox:$fails" >&2; exit 1; }
echo "uid $(busybox id -u), Lambda's sandbox"
SH
cat >"$p/tests/fill.sh" <<'SH'
busybox dd if=/dev/zero of=/tmp/fill bs=1048576 count=16
rc=$?
busybox rm -f /tmp/fill
exit $rc
SH
printf 'busybox sleep 60\n' >"$p/tests/sleep.sh"
# not listed (not *.sh): invoked through the Invoke API alone, it kills the
# runtime that runs it
printf 'busybox kill -9 $PPID\nbusybox sleep 5\n' >"$p/tests/exit.run"
# the Runtime API's answers, asked from inside the sandbox while the
# function waits for this test: the status line of each
cat >"$p/tests/api.sh" <<'SH'
api=$AWS_LAMBDA_RUNTIME_API
req() {
	printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s' "$1" "$2" "$api" "${#3}" "$3" |
		busybox nc "${api%:*}" "${api##*:}" | busybox head -1 | busybox tr -d '\r'
}
rt=/2018-06-01/runtime
bad=""
s=$(req POST $rt/invocation/no-such-id/response '{}'); echo "unknown id: $s"
case $s in *" 400 "*) ;; *) bad="$bad unknown-id" ;; esac
s=$(req POST $rt/invocation/no-such-id/error '{}'); echo "error of an unknown id: $s"
case $s in *" 400 "*) ;; *) bad="$bad unknown-id-error" ;; esac
s=$(req POST $rt/init/error '{"errorMessage":"late","errorType":"X"}'); echo "late init error: $s"
case $s in *" 403 "*) ;; *) bad="$bad late-init-error" ;; esac
s=$(req GET $rt/no-such-thing ''); echo "unknown path: $s"
case $s in *" 404 "*) ;; *) bad="$bad unknown-path" ;; esac
[ -z "$bad" ] || { echo "wrong answers:$bad" >&2; exit 1; }
SH
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 1, "imageName": "e2e/lambda",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}", "{artifactsDir}"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "lambda", "timeout": 8, "ephemeralStorageMB": 8, "functionName": "e2e-fn",
   "functionDir": ".hypertest/function"}}}
JSON

"$hypertest" -C "$p" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
"$hypertest" -C "$p" --verbose invoke >"$tmp/invoke.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/invoke.out"; fail "invoke with failing tests must exit 1"; }
python3 - "$p/hypertest.results.json" "$p/.hypertest/bucket" "$tmp/invoke.out" <<'PY' ||
import json, os, re, sys
d = json.load(open(sys.argv[1]))
bucket, out = sys.argv[2], open(sys.argv[3]).read()
by = {t["context"]["id"]: t for t in d["testResults"]}
def msg(t):
    return (t.get("error") or {}).get("message", "")
assert by["tests/sandbox.sh"]["status"] == "success", by["tests/sandbox.sh"]
fill = by["tests/fill.sh"]
assert fill["status"] == "failed" and "No space left" in msg(fill), fill
slp = by["tests/sleep.sh"]
assert slp["status"] == "failed" and "timed out after 8 s" in msg(slp), slp
counters = []
for n in (1, 2, 3):
    t = by["tests/counter%d.sh" % n]
    assert t["status"] == "success", t
    counters.append(int(open(os.path.join(bucket, d["runId"], t["testId"], "counter.txt")).read()))
# one sandbox at a time: the counter goes up, except right after the
# sandbox the timeout ended
cold = len(re.findall(r"cold start: sandbox", out))
assert cold == 2, (cold, out)
assert "ended: invocation" in out and "timed out" in out, out
assert max(counters) >= 2 and sorted(counters) != [1, 1, 1], counters
assert "2 cold starts" in out, out
assert by["tests/api.sh"]["status"] == "success", by["tests/api.sh"]
assert d["tests"]["failed"] == 2 and d["tests"]["success"] == 5, d["tests"]
print("counters", counters, "cold starts", cold)
PY
	{ cat "$tmp/invoke.out"; fail "results"; }
echo "isolation lambda: warm sandboxes, read-only root, /tmp capped, timeout replaces the sandbox"

# ---- Lambda's Invoke API, served by hypertest-function with option lambdaApi ---------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/emu"
python3 - "$p/hypertest.config.json" "$tmp/emu/hypertest.config.json" "$p" "$port" <<'PY' || fail "emulator config"
import json, sys
c = json.load(open(sys.argv[1]))
o = c["cloudProvider"]["options"]
for k, d in (("bucketDir", "bucket"), ("functionDir", "function"), ("imageDir", "image")):
    o[k] = sys.argv[3] + "/.hypertest/" + d
o["lambdaApi"] = "127.0.0.1:" + sys.argv[4]
o["timeout"] = 4
json.dump(c, open(sys.argv[2], "w"))
PY
"$HYPERTEST_FUNCTION_PROGRAM" --config "$tmp/emu/hypertest.config.json" --verbose >"$tmp/emu.log" 2>&1 &
emu=$!
python3 - "$port" "$p/.hypertest/function/current" <<'PY' || { kill $emu; cat "$tmp/emu.log"; fail "Invoke API"; }
import json, sys, time, urllib.request, urllib.error
port, current = sys.argv[1], sys.argv[2]
base = "http://127.0.0.1:%s/2015-03-31/functions/" % port
for _ in range(200):
    try:
        urllib.request.urlopen(base + "e2e-fn", timeout=5).read()
        break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.05)
def call(name, payload=None):
    req = urllib.request.Request(base + name + ("/invocations" if payload is not None else ""),
                                 data=None if payload is None else json.dumps(payload).encode(),
                                 method="GET" if payload is None else "POST")
    try:
        r = urllib.request.urlopen(req, timeout=60)
        return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
st, h, body = call("e2e-fn")
digest = json.load(open(current))["digest"]
assert st == 200 and json.loads(body)["Code"]["ResolvedImageUri"].endswith("@" + digest), body
st, h, body = call("no-such-fn", {})
assert st == 404 and h.get("X-Amzn-ErrorType") == "ResourceNotFoundException", (st, h, body)
def payload(i, test):
    return {"runId": "api-run", "testId": "api-%d" % i, "context": {"id": test}}
seen = []
for i in range(3):
    st, h, body = call("e2e-fn", payload(i, "tests/counter1.sh"))
    assert st == 200 and "X-Amz-Function-Error" not in h, (st, h, body)
    assert json.loads(body)["success"] is True, body
st, h, body = call("arn:aws:lambda:us-east-1:000000000000:function:e2e-fn", payload(9, "tests/sleep.sh"))
assert st == 200 and h.get("X-Amz-Function-Error") == "Unhandled", (st, h, body)
err = json.loads(body)
assert err["errorType"] == "Sandbox.Timedout" and "timed out after 4 s" in err["errorMessage"], err
# a runtime that exits: Lambda's Runtime.ExitError and its words
st, h, body = call("e2e-fn", payload(10, "tests/exit.run"))
assert st == 200 and h.get("X-Amz-Function-Error") == "Unhandled", (st, h, body)
err = json.loads(body)
assert err["errorType"] == "Runtime.ExitError", err
assert err["errorMessage"].startswith("RequestId: ") and \
    "Error: Runtime exited with error: signal: killed" in err["errorMessage"], err
print("Invoke API: 3 invocations; a timeout and a runtime's exit as function errors")
PY
kill $emu 2>/dev/null; wait $emu 2>/dev/null
counts=$(for i in 0 1 2; do cat "$p/.hypertest/bucket/api-run/api-$i/counter.txt" 2>/dev/null; done | tr '\n' ' ')
[ "$counts" = "1 2 3 " ] || { cat "$tmp/emu.log"; fail "the Invoke API's invocations did not share a warm sandbox: $counts"; }
echo "Lambda's Invoke API: invocations through one warm sandbox, errors as function errors"

# ---- a runtime of the image's own (functionImage): the error it posts is the Invoke API's answer --
# busybox as a custom runtime: each invocation it takes from the Runtime API
# it fails with an error document of its own, as a runtime whose handler
# threw posts one
mkdir -p "$tmp/custom-root/bin"
cp "$tmp/root/bin/busybox" "$tmp/root/bin/sh" "$tmp/custom-root/bin/" || fail "copy busybox"
cat >"$tmp/custom-root/bootstrap" <<'SH'
api=$AWS_LAMBDA_RUNTIME_API
rt=/2018-06-01/runtime
doc='{"errorMessage":"the handler threw","errorType":"Custom.Thrown","stackTrace":["at handler (index.js:1:1)"]}'
while :; do
	id=$(printf 'GET %s/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n' "$rt" "$api" |
		busybox nc "${api%:*}" "${api##*:}" | busybox tr -d '\r' |
		busybox sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')
	[ -n "$id" ] || exit 1
	printf 'POST %s/invocation/%s/error HTTP/1.1\r\nHost: %s\r\nLambda-Runtime-Function-Error-Type: Custom.Thrown\r\nContent-Length: %d\r\n\r\n%s' \
		"$rt" "$id" "$api" "${#doc}" "$doc" | busybox nc "${api%:*}" "${api##*:}" >/dev/null
done
SH
python3 "$tests_src/projects/runtime/make-layout.py" "$tmp/custom-root" "$tmp/custom" "$arch" /bin \
	'["/bin/sh", "/bootstrap"]' || fail "custom runtime layout"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$p/hypertest.config.json" "$tmp/emu/custom.json" "$tmp/cp" "$port" "$tmp/custom" <<'PY' || fail "custom config"
import json, os, sys
c = json.load(open(sys.argv[1]))
o = c["cloudProvider"]["options"]
o["functionImage"] = "oci:" + sys.argv[5]
o["functionName"] = "custom-fn"
o.pop("maxResponseBytes", None)
for k, d in (("bucketDir", "bucket"), ("functionDir", "function"), ("imageDir", "image")):
    o[k] = sys.argv[3] + "/.hypertest/" + d
os.makedirs(sys.argv[3], exist_ok=True)
json.dump(c, open(sys.argv[3] + "/hypertest.config.json", "w"))
o["lambdaApi"] = "127.0.0.1:" + sys.argv[4]
json.dump(c, open(sys.argv[2], "w"))
PY
cp -R "$p/tests" "$tmp/cp/tests" || fail "custom project"
"$hypertest" -C "$tmp/cp" deploy >"$tmp/custom-deploy.out" 2>&1 || { cat "$tmp/custom-deploy.out"; fail "deploy with functionImage"; }
"$HYPERTEST_FUNCTION_PROGRAM" --config "$tmp/emu/custom.json" --verbose >"$tmp/emu2.log" 2>&1 &
emu=$!
python3 - "$port" <<'PY' || { kill $emu; cat "$tmp/emu2.log"; fail "an error the runtime posted"; }
import json, sys, time, urllib.request, urllib.error
base = "http://127.0.0.1:%s/2015-03-31/functions/custom-fn" % sys.argv[1]
for _ in range(200):
    try:
        urllib.request.urlopen(base, timeout=5).read()
        break
    except (urllib.error.URLError, ConnectionError):
        time.sleep(0.05)
req = urllib.request.Request(base + "/invocations", data=b'{"runId": "r", "testId": "t"}', method="POST")
r = urllib.request.urlopen(req, timeout=60)
body, h = r.read(), dict(r.headers)
assert r.status == 200 and h.get("X-Amz-Function-Error") == "Unhandled", (r.status, h, body)
assert json.loads(body) == {"errorMessage": "the handler threw", "errorType": "Custom.Thrown",
                            "stackTrace": ["at handler (index.js:1:1)"]}, body
print("Invoke API: the error document the runtime posted, as it posted it")
PY
kill $emu 2>/dev/null; wait $emu 2>/dev/null
echo "a runtime's own error document is the Invoke API's answer"

# ---- a response past maxResponseBytes: 413, and the test fails -----------------------------------
sed 's/"functionName": "e2e-fn"/"functionName": "e2e-fn", "maxResponseBytes": 64/' \
	"$p/hypertest.config.json" >"$tmp/c.json" && cp "$tmp/c.json" "$p/hypertest.config.json"
"$hypertest" -C "$p" --verbose invoke >"$tmp/invoke3.out" 2>&1
python3 - "$p/hypertest.results.json" <<'PY' || { cat "$tmp/invoke3.out"; fail "413"; }
import json, sys
d = json.load(open(sys.argv[1]))
t = [t for t in d["testResults"] if t["context"]["id"] == "tests/counter1.sh"][0]
m = (t.get("error") or {}).get("message", "")
assert t["status"] == "failed" and "response larger than 64 bytes" in m, t
PY
grep -q "answered 413" "$tmp/invoke3.out" || { cat "$tmp/invoke3.out"; fail "the function did not see 413"; }
echo "a response past maxResponseBytes is answered 413 and fails its test"

# ---- an init error is the function's ------------------------------------------------------------
cfg=$(ls -d "$p"/.hypertest/function/images/*/root/var/task/hypertest.config.json "$p"/.hypertest/function/images/*/var/task/hypertest.config.json 2>/dev/null | head -1)
[ -f "$cfg" ] || fail "no unpacked configuration"
chmod u+w "$cfg" 2>/dev/null
sed 's/"plugin": "command"/"plugin": "no-such-runner"/' "$cfg" >"$tmp/c.json" && cat "$tmp/c.json" >"$cfg" ||
	fail "break the function's configuration"
"$hypertest" -C "$p" invoke >"$tmp/invoke2.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/invoke2.out"; fail "invoke with an init error must exit 1"; }
python3 - "$p/hypertest.results.json" <<'PY' || { cat "$tmp/invoke2.out"; fail "init error"; }
import json, sys
d = json.load(open(sys.argv[1]))
for t in d["testResults"]:
    m = (t.get("error") or {}).get("message", "")
    assert t["status"] == "failed" and "init failed: Runtime.InitError" in m and \
        "no-such-runner" in m, t
PY
echo "an init error fails each test with the function's message"
