#!/bin/sh
# The aws provider's invocations over HTTP/2 ("httpVersion": "2"), through
# the CLI against the strict endpoint (tests/services/aws/endpoint.py),
# with tests/services/aws/h2-front.mjs in front of it as the Lambda
# endpoint: an HTTP/2 server that forwards every request to endpoint.py
# over HTTP/1.1 (Host = :authority: the signatures still verify) and
# counts connections and streams.  One deploy over the endpoint itself,
# then invokes of the no-op `true`:
#  a. h2c (prior knowledge), 200 tests at concurrency 50: all pass, over
#     one connection, every signature accepted
#  b. the front announces MAX_CONCURRENT_STREAMS 4, concurrency 20: never
#     more than 4 streams on a connection, 5 connections (or 6)
#  c. a GOAWAY after every connection's 30th stream, maxRetries 0 (one
#     attempt): the streams opened past it, not processed, are sent again
#     without counting an attempt, every test passes
#  d. every 7th stream refused (REFUSED_STREAM), maxRetries 0: the same;
#     the front refuses a request once at most, the client is asked for
#     one uncounted resend at least (it allows a few)
#  e. TLS with ALPN h2 only (a throwaway CA and a certificate for
#     127.0.0.1, "caBundle"), 100 tests: with httpVersion "1.1" invoke
#     fails, every test in the results, failed; with the default ("auto")
#     all pass over h2 on one connection, and with "2" too; then a TLS
#     front of HTTP/1.1 alone: with the default the first connection
#     offers h2 and http/1.1 by ALPN, the others http/1.1 alone, every one
#     goes on HTTP/1.1, and all pass
#  f. endpoint.py's faults behind the h2c front (as in aws-faults.sh: 20 %,
#     then 80 % of retryable ones): every test accounted for exactly once
#     (services/aws/reliability.py).  The front turns a reset or
#     cut-short answer of the endpoint into RST_STREAM INTERNAL_ERROR,
#     which the client retries as a counted attempt, as it does a reset
#     connection over HTTP/1.1: reliability.py's checks stay as they are.
#
# HT_H2_CASES (default "a b c d e f") runs only some of them.  The
# services: those of the environment (HT_AWS_ENDPOINT & co.), else started
# here; exit 77 when they cannot start, without node or openssl, or when
# hypertest was built without HTTP/2 (no libnghttp2).
. "$(dirname "$0")/preamble.sh"
command -v node >/dev/null 2>&1 || { echo "no node: skipped"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "no openssl: skipped"; exit 77; }
cases=${HT_H2_CASES:-a b c d e f}
tmp=$(mktemp -d /tmp/ht-aws-h2-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
front_pid=""
cleanup() {
	front_stop
	aws_cleanup
}
trap cleanup EXIT
trap 'exit 1' INT TERM
aws_services_start

# front_start NAME ARG...: h2-front.mjs ARG... in front of the endpoint,
# its URL in $front (http://, or https:// with --tls)
front_start() {
	fname=$1
	shift
	: >"$tmp/$fname.front"
	node "$tests_src/services/aws/h2-front.mjs" --upstream "$HT_AWS_ENDPOINT" --watch-pid $$ "$@" \
		>"$tmp/$fname.front" 2>"$tmp/$fname.front-err" &
	front_pid=$!
	scheme=http
	case " $* " in *" --tls "* | *" --tls-h1 "*) scheme=https ;; esac
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/$fname.front")
		if [ -n "$port" ]; then
			front="$scheme://127.0.0.1:$port"
			return 0
		fi
		kill -0 "$front_pid" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	cat "$tmp/$fname.front-err"
	fail "h2-front.mjs did not start"
}

front_stop() {
	if [ -n "$front_pid" ]; then
		kill "$front_pid" 2>/dev/null
		wait "$front_pid" 2>/dev/null
		front_pid=""
	fi
}

# front_stats NAME [CA]: the front's statistics (read over h2, from the
# front itself) into $tmp/NAME.stats, printed
cat >"$tmp/front-stats.mjs" <<'EOF'
import fs from "node:fs";
import http2 from "node:http2";
const [url, ca] = process.argv.slice(2);
const s = http2.connect(url, ca ? {ca: fs.readFileSync(ca)} : {});
s.on("error", (e) => { console.error("front statistics: " + e.message); process.exit(1); });
const r = s.request({":path": "/__front/stats"});
let body = "";
r.on("data", (d) => body += d);
r.on("end", () => { process.stdout.write(body + "\n"); s.close(); });
r.end();
EOF
front_stats() {
	node "$tmp/front-stats.mjs" "$front" ${2:+"$2"} >"$tmp/$1.stats" || fail "$1: no statistics from the front"
	echo "$1: front: $(cat "$tmp/$1.stats")"
}

# front_stat NAME KEY: one number of $tmp/NAME.stats
front_stat() { json "$tmp/$1.stats" "d['$2']"; }

# check NAME WHY EXPR: EXPR (Python, the front's statistics as s) true, else fail
check() {
	"$py" -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$tmp/$1.stats" "$3" || fail "$1: $2 ($3; statistics $(cat "$tmp/$1.stats"))"
}

id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="h2-$id"
proj="$tmp/project"
mkdir -p "$proj/tests"
echo "no-op" >"$proj/tests/noop.txt"

# configure CONCURRENCY LAMBDA_URL OPTIONS_JSON: the project's
# configuration: 300 no-op tests t00000 to t00299, the Lambda endpoint at
# LAMBDA_URL, the others endpoint.py's, OPTIONS_JSON added to the aws
# provider's options.  No drift check (driftDetectionPolicy "silence", as
# in aws-faults.sh): its GetFunction goes over the provider's other
# client, libcurl's blocking one, which httpVersion leaves at HTTP/1.1 (an
# h2-only front would refuse it, with retries).
configure() {
	"$py" - "$proj" "$fn" "$id" "$@" <<'PY'
import json, os, sys
d, fn, id_, conc, lam, extra = sys.argv[1:7]
ep = os.environ["HT_AWS_ENDPOINT"]
opts = {"region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
        "ecrRegistry": os.environ["HT_ECR_REGISTRY"], "lambdaUpdateMaxWaitTime": 30,
        "endpoints": {"lambda": lam, "ecr": ep, "servicequotas": ep,
                      "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}
opts.update(json.loads(extra))
# the bucket is shared with the other tests that run at the same time: a
# manifest name of its own
cfg = {"concurrency": int(conc), "driftDetectionPolicy": "silence", "imageName": "h2/aws-" + id_,
       "buildManifestFileName": "h2-%s.manifest" % id_,
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(300)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": opts}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

# invoke NAME N: hypertest invoke of the first N tests (a multiple of 100
# up to 300), its output in $tmp/NAME.out, its exit status in $rc; a
# results file of its own.  Exit 77 when the provider refuses httpVersion
# "2" for want of libnghttp2.
invoke() {
	rm -f "$proj/hypertest.results.json"
	"$hypertest" -C "$proj" invoke --grep "^t00[0-$(($2 / 100 - 1))][0-9][0-9]\$" >"$tmp/$1.out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && grep -q 'built without HTTP/2' "$tmp/$1.out"; then
		echo "hypertest built without HTTP/2 (configure found no libnghttp2): skipped"
		exit 77
	fi
}

# passed NAME N: invoke exited 0, the N tests each once in the results,
# every one passed
passed() {
	[ $rc -eq 0 ] || { tail -30 "$tmp/$1.out"; fail "$1: invoke exited $rc, not 0"; }
	"$py" - "$proj/hypertest.results.json" "$2" <<'PY' || { tail -30 "$tmp/$1.out"; fail "$1: not every test passed"; }
import json, sys
tests = json.load(open(sys.argv[1])).get("testResults", [])
n = int(sys.argv[2])
ids = [(t.get("context") or {}).get("id") for t in tests]
assert len(tests) == n and len(set(ids)) == n, "%d results, %d tests, for %d" % (len(tests), len(set(ids)), n)
bad = [(i, t.get("status"), (t.get("error") or {}).get("message")) for i, t in zip(ids, tests)
       if t.get("status") != "success"]
assert not bad, "%d not passed, the first: %s" % (len(bad), bad[:3])
PY
}

# function_set BEHAVIOUR_JSON: the function's behaviour (its counters zeroed)
function_set() {
	control POST "/function/$fn" "$1" >/dev/null || fail "cannot set the function's behaviour"
}

# The deploy, over the endpoint itself
configure 1 "$HT_AWS_ENDPOINT" '{}'
function_set '{"mode": "success", "updateDelayMs": 100}'
"$hypertest" -C "$proj" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

for c in $cases; do
	case "$c" in
	a)
		# h2c, prior knowledge: 200 invocations at concurrency 50.  The
		# client fills a connection up to the peer's MAX_CONCURRENT_STREAMS
		# (100 here) before it opens another, and gives a new connection
		# 100 streams before its SETTINGS come (the least RFC 9113 recommends a
		# server to allow); the warm-up opens what the concurrency needs by
		# the same rule.  So ceil(50 / 100) = 1 connection, warm-up and
		# invocations alike; the front closes none that would have to be
		# replaced.  An HTTP/1.1-like client would open 50.
		function_set '{"mode": "success"}'
		front_start a
		configure 50 "$front" '{"httpVersion": "2"}'
		seq=$(last_seq)
		invoke a 200
		passed a 200
		front_stats a
		check a "not every invocation went over h2" 's["streams"] >= 200'
		check a "not one connection for 50 streams in flight" 's["sessions"] == 1'
		check a "streams reset" 's["upstreamErrors"] == 0 and s["resetByClient"] == 0'
		authentic_since "$seq" "$tmp/a.requests" || fail "a: a request through the front was not authentic"
		front_stop
		echo "a: 200 invocations over h2c at concurrency 50 on $(front_stat a sessions) connection(s)"
		;;
	b)
		# MAX_CONCURRENT_STREAMS 4 at concurrency 20: never more than 4
		# streams open on one connection (nghttp2 would refuse a fifth), and
		# the 20 in flight spread over ceil(20 / 4) = 5 connections, 6 when
		# the warm-up's stream still holds a place as the invocations start.
		# maxRetries 0: a stream the front refused for the limit would fail
		# its test.
		function_set '{"mode": "success", "delayMs": 20}'
		front_start b --max-streams 4
		configure 20 "$front" '{"httpVersion": "2", "maxRetries": 0}'
		invoke b 200
		passed b 200
		front_stats b
		check b "more streams at once than announced" 's["mostInSession"] <= 4'
		check b "the 20 in flight not spread over 5 connections (or 6)" '5 <= s["sessions"] <= 6'
		check b "not every invocation went over h2" 's["streams"] >= 200'
		front_stop
		echo "b: MAX_CONCURRENT_STREAMS 4: $(front_stat b sessions) connections, at most $(front_stat b mostInSession) streams on one"
		;;
	c)
		# GOAWAY after each connection's 30th stream, maxRetries 0: the
		# streams the client opened after the GOAWAY's last stream id were
		# not processed (RFC 9113 6.8): retried on another connection
		# without counting an attempt, every test passes.  Each answer
		# 50 ms late: the 50 in flight are out on the first connection
		# before its 30th stream is answered.
		function_set '{"mode": "success", "delayMs": 50}'
		front_start c --goaway-after 30
		configure 50 "$front" '{"httpVersion": "2", "maxRetries": 0}'
		invoke c 200
		passed c 200
		front_stats c
		check c "no GOAWAY sent" 's["goawaySent"] >= 1'
		# no connection served more than 30: the client opened new ones
		check c "too few connections for 30 streams each" 's["sessions"] >= -(-s["streams"] // 30)'
		# the client had streams out past the 30th when the first GOAWAY
		# came (50 in flight on one connection): else nothing was retried
		check c "no stream opened after a GOAWAY" 's["unprocessedAfterGoaway"] >= 1'
		front_stop
		echo "c: $(front_stat c goawaySent) GOAWAY, $(front_stat c unprocessedAfterGoaway) streams unprocessed and retried, every test passed"
		;;
	d)
		# Every 7th stream refused (RST_STREAM REFUSED_STREAM, not
		# processed), maxRetries 0: each retried without counting.  The front
		# refuses a request (method, path, body) once at most, so the rule
		# asked of the client is one uncounted retry at least.
		function_set '{"mode": "success"}'
		front_start d --refuse-every 7
		configure 50 "$front" '{"httpVersion": "2", "maxRetries": 0}'
		invoke d 200
		passed d 200
		front_stats d
		# every 7th stream of those that came (forwarded + refused), less
		# the few whose refusal still waited for a request not refused
		# before when the run ended
		check d "not every 7th stream refused" 's["refused"] >= 1 and s["refused"] >= (s["streams"] + s["refused"]) // 7 - 3'
		front_stop
		echo "d: $(front_stat d refused) streams refused and retried, every test passed"
		;;
	e)
		# TLS: a CA of our own, a certificate for 127.0.0.1 (IP SAN) signed by it
		mkdir -p "$tmp/tls"
		printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
			>"$tmp/tls/ext.cnf"
		{
			openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hypertest h2 test CA" \
				-keyout "$tmp/tls/ca.key" -out "$tmp/tls/ca.pem" &&
				openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
					-keyout "$tmp/tls/server.key" -out "$tmp/tls/server.csr" &&
				openssl x509 -req -in "$tmp/tls/server.csr" -CA "$tmp/tls/ca.pem" \
					-CAkey "$tmp/tls/ca.key" -CAcreateserial -days 2 -extfile "$tmp/tls/ext.cnf" \
					-out "$tmp/tls/server.pem"
		} >"$tmp/tls/openssl.log" 2>&1 || { cat "$tmp/tls/openssl.log"; fail "e: openssl"; }
		function_set '{"mode": "success"}'
		front_start e --tls "$tmp/tls/server.pem" "$tmp/tls/server.key"
		ca_json=$("$py" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$tmp/tls/ca.pem")
		# HTTP/1.1 to the h2-only front: refused in the TLS handshake, each
		# test failed and in the results, the message naming the option
		# that offers HTTP/2
		configure 50 "$front" "{\"httpVersion\": \"1.1\", \"caBundle\": $ca_json, \"maxRetries\": 0}"
		invoke e1 100
		[ $rc -ne 0 ] || { tail -30 "$tmp/e1.out"; fail "e: invoke over HTTP/1.1 of an h2-only endpoint exited 0"; }
		"$py" - "$proj/hypertest.results.json" 100 <<'PY' || { tail -30 "$tmp/e1.out"; fail "e: not every test failed in the results"; }
import json, sys
tests = json.load(open(sys.argv[1])).get("testResults", [])
n = int(sys.argv[2])
ids = {(t.get("context") or {}).get("id") for t in tests}
assert len(tests) == n and len(ids) == n, "%d results, %d tests, for %d" % (len(tests), len(ids), n)
ok = [t for t in tests if t.get("status") != "failed" or
      'httpVersion "auto" or "2" offers HTTP/2' not in (t.get("error") or {}).get("message", "")]
assert not ok, "%d not failed with a message that says why, the first: %s" % (len(ok), ok[:2])
print("e: HTTP/1.1 to the h2-only front: every test failed:", tests[0]["error"]["message"][:300])
PY
		# the default ("auto"): h2 where ALPN chooses it
		configure 50 "$front" "{\"caBundle\": $ca_json}"
		seq=$(last_seq)
		invoke e 100
		passed e 100
		front_stats e "$tmp/tls/ca.pem"
		check e "not every invocation went over h2" 's["streams"] >= 100'
		# over https the client opens one connection and waits for its
		# ALPN before it puts more streams on it or opens others: one
		check e "not one connection for 50 streams in flight" 's["sessions"] == 1'
		authentic_since "$seq" "$tmp/e.requests" || fail "e: a request through the front was not authentic"
		echo "e: 100 invocations over h2 with TLS (ALPN h2, the default httpVersion) on $(front_stat e sessions) connection(s)"
		# "2": the same over TLS
		configure 50 "$front" "{\"httpVersion\": \"2\", \"caBundle\": $ca_json}"
		invoke e3 100
		passed e3 100
		front_stats e3 "$tmp/tls/ca.pem"
		check e3 "not every invocation went over h2 with \"2\"" 's["streams"] >= 200'
		front_stop
		# the default against a TLS server of HTTP/1.1 alone: the host's
		# first connection offers h2 by ALPN and gets HTTP/1.1; the others,
		# opened once that is known, offer HTTP/1.1 alone; every test passes
		front_start e4 --tls-h1 "$tmp/tls/server.pem" "$tmp/tls/server.key"
		configure 50 "$front" "{\"caBundle\": $ca_json}"
		invoke e4 100
		passed e4 100
		"$py" - "$tmp/e4.front" <<'PY' || { cat "$tmp/e4.front"; fail "e4: a connection did not offer h2 and go on HTTP/1.1"; }
import sys
conns = [l.split() for l in open(sys.argv[1]) if l.startswith("CONN ")]
assert len(conns) > 1, "%d connection(s) for 50 in flight over HTTP/1.1" % len(conns)
assert conns[0][1] == "offered=h2,http/1.1", "the first connection: %s" % conns[0]
bad = [c for c in conns[1:] if c[1] != "offered=http/1.1"] + [c for c in conns if c[2] != "chosen=http/1.1"]
assert not bad, bad[:3]
print("e4: the default over TLS to an HTTP/1.1 server: %d connections, the first offered h2,http/1.1, "
      "every one went on HTTP/1.1" % len(conns))
PY
		front_stop
		;;
	f)
		# endpoint.py's faults behind the h2c front, as in aws-faults.sh
		function_set '{"mode": "success"}'
		front_start f
		configure 30 "$front" '{"httpVersion": "2"}'
		function_set '{"mode": "success", "faults": {"rate": 0.2, "seed": 13, "slowMs": 200, "retryAfter": 0}}'
		invoke f 300
		[ $rc -eq 1 ] || { tail -30 "$tmp/f.out"; fail "f: invoke with failed tests must exit 1, not $rc"; }
		function_stats "$tmp/f.endpoint.json" || fail "f: no statistics from the endpoint"
		"$py" "$tests_src/services/aws/reliability.py" "$proj/hypertest.results.json" "$tmp/f.endpoint.json" 300 ||
			{ tail -30 "$tmp/f.out"; fail "f: not every test accounted for"; }
		every_fault_kind "$tmp/f.endpoint.json" || fail "f: a kind of fault never happened"
		front_stats f
		# each reset or cut-short answer of the endpoint, one RST_STREAM
		# INTERNAL_ERROR of the front; nothing else broke
		broken=$(json "$tmp/f.endpoint.json" 'd["faults"]["reset"] + d["faults"]["truncated"]')
		check f "not one RST_STREAM per reset or truncated fault" "s['upstreamErrors'] == $broken"
		check f "streams the client reset" 's["resetByClient"] == 0'
		# then 80 % of retryable faults: the h2 resets count as attempts,
		# tests run out of them (3 retries: at 80 % about 4 tests in 10 do,
		# within seconds rather than the minute of the default 10)
		configure 30 "$front" '{"httpVersion": "2", "maxRetries": 3}'
		function_set '{"mode": "success", "faults": {"rate": 0.8, "seed": 5, "retryAfter": 0,
			"kinds": {"throttle": 1, "server500": 1, "server503": 1, "reset": 1, "truncated": 1}}}'
		invoke f2 300
		[ $rc -eq 1 ] || { tail -30 "$tmp/f2.out"; fail "f: invoke with failed tests must exit 1, not $rc (80 %)"; }
		function_stats "$tmp/f2.endpoint.json" || fail "f: no statistics from the endpoint"
		"$py" "$tests_src/services/aws/reliability.py" "$proj/hypertest.results.json" "$tmp/f2.endpoint.json" 300 \
			"$tmp/f2.summary" || { tail -30 "$tmp/f2.out"; fail "f: not every test accounted for (80 %)"; }
		grep -q 'retries exhausted [1-9]' "$tmp/f2.summary" || fail "f: no test ran out of retries at 80 %"
		front_stop
		echo "f: 300 invocations under 20 %, then 80 % faults over h2c, every test accounted for"
		;;
	*) fail "no case $c (HT_H2_CASES: a b c d e f)" ;;
	esac
done
echo "PASS: the aws provider over HTTP/2 (cases $cases)"
