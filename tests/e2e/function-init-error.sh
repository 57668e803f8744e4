#!/bin/sh
# function-init-error.sh - the built hypertest-function with a deployed
# configuration whose runner plugin does not exist ("no-such-runner"): the
# function cannot run tests, and says why (HYPERTEST_CORE_FUNCTION_INIT_ERROR).
#  1. local provider: the payload on stdin is answered failed, the message
#     naming no-such-runner; the exit status is not 0.
#  2. aws provider without AWS_LAMBDA_RUNTIME_API (stdin): the same.
#  3. aws provider with AWS_LAMBDA_RUNTIME_API naming a strict fake Runtime
#     API on 127.0.0.1 (python3, started here; it records every request and
#     answers 404 to anything the Runtime API does not have): exactly one
#     POST of /2018-06-01/runtime/init/error, Lambda-Runtime-Function-Error-Type
#     Runtime.InitError, {"errorMessage": ..no-such-runner.., "errorType":
#     "Runtime.InitError"}; no invocation taken; the exit status is not 0.
# Dummy region and credentials: nothing here reaches the network.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-fn-init-XXXXXX) || exit 1
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

fnprog=$HYPERTEST_FUNCTION_PROGRAM
unset AWS_LAMBDA_RUNTIME_API AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_CONFIG_FILE \
	AWS_SHARED_CREDENTIALS_FILE HYPERTEST_LOCAL_ZYGOTE_FD
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=dummy-secret
export HOME="$tmp"
payload='{"runId": "r1", "testId": "t1", "context": {"id": "a.test"}}'

# config PROVIDER-JSON: a project whose runner plugin does not exist
config() {
	mkdir -p "$tmp/project"
	cat >"$tmp/project/hypertest.config.json" <<JSON
{"concurrency": 1, "imageName": "fn/init-error",
 "testRunner": {"plugin": "no-such-runner", "options": {}},
 "cloudProvider": $1}
JSON
}

# stdin_case NAME: the payload on stdin gets a failed response naming no-such-runner
stdin_case() {
	printf '%s' "$payload" |
		HYPERTEST_FUNCTION_CONFIG="$tmp/project/hypertest.config.json" \
			timeout 60 "$fnprog" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/err"; fail "$1: exit status $rc"; }
	python3 - "$tmp/out" <<'PY' || { cat "$tmp/err"; fail "$1: response $(cat "$tmp/out")"; }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["success"] is False, d
assert d["message"].startswith("the function cannot run tests: "), d
assert "no-such-runner" in d["message"], d
PY
	grep -q "no-such-runner" "$tmp/err" || { cat "$tmp/err"; fail "$1: stderr does not say why"; }
	grep -q "Sanitizer" "$tmp/err" && { cat "$tmp/err"; fail "$1: a sanitizer report"; }
	echo "$1: answered failed, exit status $rc"
}

# ---- 1. local provider -----------------------------------------------------------------------
config '{"plugin": "local", "options": {}}'
stdin_case local

# ---- 2. aws provider, stdin ------------------------------------------------------------------
config '{"plugin": "aws", "options": {"region": "us-east-1", "functionName": "fn-init-error",
   "bucketName": "fn-init-error-bucket"}}'
stdin_case "aws (stdin)"

# ---- 3. aws provider, the Runtime API --------------------------------------------------------
python3 - "$tmp/port" "$tmp/requests" <<'PY' >"$tmp/server.log" 2>&1 &
import http.server, json, sys
port_file, log_file = sys.argv[1:3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def record(self, ok):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with open(log_file, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "ok": ok,
                                "type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                "ctype": self.headers.get("Content-Type"), "body": body}) + "\n")
    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/2018-06-01/runtime/invocation/next":
            self.record(True)
            # one invocation, then 404 (ends the loop of a runtime that asks)
            if not getattr(H, "given", False):
                H.given = True
                self.answer(200, b'{"runId": "r1", "testId": "t1", "context": {}}',
                            [("Lambda-Runtime-Aws-Request-Id", "req-1"),
                             ("Lambda-Runtime-Deadline-Ms", "99999999999999"),
                             ("Content-Type", "application/json")])
                return
        else:
            self.record(False)
        self.answer(404)
    def do_POST(self):
        p = self.path
        ok = p == "/2018-06-01/runtime/init/error" or (
            p.startswith("/2018-06-01/runtime/invocation/req-1/") and
            p.rsplit("/", 1)[1] in ("response", "error"))
        self.record(ok)
        self.answer(202 if ok else 404, b'{"status":"OK"}' if ok else b"")
    do_PUT = do_DELETE = do_HEAD = do_PATCH = lambda self: (self.record(False), self.answer(404))
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
PY
server=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$tmp/port" ] || { cat "$tmp/server.log"; fail "the fake Runtime API did not start"; }
: >"$tmp/requests"
AWS_LAMBDA_RUNTIME_API="127.0.0.1:$(cat "$tmp/port")" \
	HYPERTEST_FUNCTION_CONFIG="$tmp/project/hypertest.config.json" \
	timeout 60 "$fnprog" </dev/null >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/err"; fail "aws (Runtime API): exit status $rc"; }
[ -s "$tmp/out" ] && fail "aws (Runtime API): wrote to stdout: $(cat "$tmp/out")"
grep -q "no-such-runner" "$tmp/err" || { cat "$tmp/err"; fail "aws (Runtime API): stderr does not say why"; }
grep -q "Sanitizer" "$tmp/err" && { cat "$tmp/err"; fail "aws (Runtime API): a sanitizer report"; }
python3 - "$tmp/requests" <<'PY' || { cat "$tmp/err"; fail "aws (Runtime API): requests"; }
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(reqs) == 1, reqs  # no GET of /next, nothing else
r = reqs[0]
assert r["method"] == "POST" and r["path"] == "/2018-06-01/runtime/init/error", r
assert r["type"] == "Runtime.InitError", r
assert r["ctype"] == "application/json", r
body = json.loads(r["body"])
assert set(body) == {"errorMessage", "errorType"}, body
assert body["errorType"] == "Runtime.InitError", body
assert "no-such-runner" in body["errorMessage"], body
PY
echo "aws (Runtime API): one init/error POST, exit status $rc"
exit 0
