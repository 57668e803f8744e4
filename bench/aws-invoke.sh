#!/usr/bin/env bash
# Benchmark: `hypertest invoke` through the aws provider.  Lambda Invoke goes
# to bench/lambda-endpoint.c (a small epoll endpoint in C that checks the
# shape of each SigV4 Authorization header, not the signature, and answers
# each invocation after delayMs without blocking the others); it is compiled
# into the temp dir with cc.  S3 (manifest, results), ECR and the deploy's
# Lambda calls still go to the services of tests/services/aws/services.sh (s3rver
# behind endpoint.py's signature-checking front).  BENCH_ENDPOINT=python
# sends Invoke to tests/services/aws/endpoint.py instead, as before (every SigV4
# verified by botocore, but Python shares the machine's cores with hypertest
# and is the bottleneck at these rates).
# Three runs over HTTP:
#   1: N=2000 at concurrency  500, delayMs 1000   ideal 4 s (4 waves of 1 s)
#   2: N=2000 at concurrency 2000, delayMs 1000   ideal 1 s (one wave)
#   3: N=5000 at concurrency 1000, delayMs    0   ideal ~0 (all overhead)
# and three over HTTPS, as against real AWS: a second lambda-endpoint
# serves TLS (RSA-2048 certificate from a test CA made here with the
# openssl command; BENCH_TLS_KEY=ec for P-256), and hypertest trusts the
# system bundle plus that CA (one file, the system's
# /etc/ssl/certs/ca-certificates.crt and the test CA, given as
# AWS_CA_BUNDLE):
#   4: N=2000 at concurrency  500, delayMs 1000   ideal 4 s
#      targets: CPU per invocation at most 1.5 x the TLS floor's, peak RSS
#      under 64 MB, wall within 10 % of 4 s
#   5: N=2000 at concurrency 2000, delayMs 1000   ideal 1 s
#      targets: peak RSS under 128 MB, wall within 25 % of the TLS floor's
#   6: N=4000 at concurrency 2000, delayMs 5000   ideal 10 s: the second
#      wave must open no connection and make no handshake: the endpoint's
#      counts must be 2000 connections, one handshake each (a delay long
#      enough for the 2000 handshakes of the first wave to be done before
#      its first answer, so that the waves do not overlap)
#   7: N=20000 at concurrency 10000, delayMs 1000   ideal 2 s (scale: not in
#      the default set; every result present, peak RSS under 150 MB, no
#      descriptor exhaustion)
#   8: the same over HTTPS (scale, not in the default set either: the same
#      targets, beside the TLS floor's peak RSS for 10,000 connections open
#      at once)
# and two over HTTP/2 on TLS, against bench/lambda-endpoint-h2.mjs (node's
# http2 server, 128 streams per connection), with the targets of plain HTTP
# against the h2 floor:
#   9: N=2000 at concurrency 2000, delayMs 1000   ideal 1 s: wall within
#      10 % of the h2 floor's, CPU per invocation under 0.2 ms, peak RSS
#      under 64 MB
#  10: N=20000 at concurrency 10000, delayMs 1000   ideal 2 s: wall within
#      20 % of the h2 floor's (one wave, then one more at the delay), peak
#      RSS under 150 MB
# bench/run-all.sh runs 1 to 10.
# For each HTTPS run the endpoint's counts: connections, full handshakes,
# resumed ones.  Where libnghttp2 (Debian: libnghttp2-dev) and node are
# there, also the h2 floor: the same C requests as HTTP/2 streams, 100 on
# each TLS connection, to bench/lambda-endpoint-h2.mjs (node's http2
# server): what hypertest reaches over HTTP/2 (runs 9 and 10).  Every run
# uses the default httpVersion ("auto"): over https the endpoint's ALPN
# decides, HTTP/1.1 with lambda-endpoint.c, HTTP/2 with
# lambda-endpoint-h2.mjs (BENCH_AWS_OPTIONS '{"httpVersion": "1.1"}' offers
# no HTTP/2).  The TLS floor (bench/invoke-floor.c tls): the same C
# requests at once, each on a connection of its own, non-blocking OpenSSL
# on epoll with one SSL_CTX and the same bundle.
# For each: wall time of the run against the ideal, orchestrator CPU time
# and peak RSS (from the "N tests in X ms, at most M in flight; this
# process: ..." line of hypertest --verbose), the most invocations in
# flight at the endpoint, the endpoint's own CPU time (C endpoint only) and
# the load average; PASS/MISS against the targets: within 5 % of the ideal
# wall time (no wall target when the ideal is ~0), under 0.2 ms orchestrator
# CPU per invocation, under 64 MB peak RSS; over HTTP, after a run of one
# wave, within 10 % of the raw floor's wall time.  After a run of one wave
# (N = concurrency) comes the floor of the machine for it, from
# bench/invoke-floor.c: the same N requests at once to the same endpoint
# over raw sockets, then with bare libcurl (no hypertest; C endpoint only).
#
#   bench/aws-invoke.sh [BUILD_DIR]       (default: _build or .)
#   env: BENCH_ENDPOINT=c|python (default c), CC (default cc),
#        HT_BENCH_WRAP (a command put before hypertest, e.g. "perf record -g -o F"),
#        BENCH_CASES (default "1 2 3 4 5 6 9": which runs, in that order;
#        N:C:DELAY_MS:IDEAL_S[:https|h2[:WAVE]] is a run of one's own),
#        BENCH_NO_FLOOR=1 leaves out the floor (below),
#        BENCH_AWS_OPTIONS (a JSON object added to the aws provider's options,
#        e.g. '{"httpClient": "curl"}' for the invocations over libcurl),
#        BENCH_KEEP=1 keeps the temp dir (each run's output and results in run-N/)
# Uses the services of the environment (HT_AWS_ENDPOINT & co.) or starts
# tests/services/aws/services.sh for the duration.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$here/_build/cli/hypertest" ] && build=$here/_build || build=$here; }
hypertest=$build/cli/hypertest
[ -x "$hypertest" ] || { echo "no $hypertest: build first"; exit 1; }
[ -e "$build/plugins/.libs/provider-aws.so" ] || { echo "no provider-aws.so in $build/plugins/.libs"; exit 1; }
export HYPERTEST_PLUGIN_PATH=$build/plugins/.libs
# deploy puts the function runtime of this build into the runtime layer
export HYPERTEST_FUNCTION_PROGRAM=$build/cli/hypertest-function
# cli/hypertest of an uninstalled build is libtool's wrapper script: bash's
# CPU time before its exec would count as the orchestrator's, so run the
# real binary
if [ -x "$build/cli/.libs/hypertest" ] && head -c 200 "$hypertest" | grep -q 'wrapper script'; then
	hypertest=$build/cli/.libs/hypertest
	export LD_LIBRARY_PATH=$build/libhypertest/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
mode=${BENCH_ENDPOINT:-c}
case "$mode" in c | python) ;; *) echo "BENCH_ENDPOINT must be c or python, not '$mode'"; exit 2 ;; esac
tmp=$(mktemp -d /tmp/ht-bench-aws-XXXXXX)
. "$here/bench/lib-endpoint.sh"
trap bench_cleanup EXIT
bench_services_start
fn="bench-$$"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

http() { # METHOD URL [BODY]  (https: the test CA of $tmp/tls)
	"$py" - "$2" "$1" "${3:-}" "$tmp/tls/ca.pem" <<'PY'
import ssl, sys, urllib.request
url, method, body, ca = sys.argv[1:5]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
ctx = ssl.create_default_context(cafile=ca) if url.startswith("https:") else None
print(urllib.request.urlopen(req, timeout=30, context=ctx).read().decode())
PY
}
control() { http "$1" "$HT_AWS_CONTROL$2" "${3:-}"; } # endpoint.py's /_control API

# The C endpoints: compiled here, started once (one for HTTP, one for
# HTTPS), told the delay by /_reset.
invoke_ep=$HT_AWS_ENDPOINT
invoke_eps=""
ep_pid=""
tls_ep_pid=""
if [ "$mode" = c ]; then
	bench_endpoint_build
	# shellcheck disable=SC2046 # pkg-config's flags are words
	# with libnghttp2 (Debian: libnghttp2-dev) and node: the h2 floor too
	floor_pkgs="libcurl libssl libcrypto" floor_def=""
	if pkg-config --exists libnghttp2 && command -v node >/dev/null; then
		floor_pkgs="$floor_pkgs libnghttp2" floor_def=-DHAVE_NGHTTP2
	fi
	# shellcheck disable=SC2086 # pkg-config's flags are words, $floor_def one or none
	${CC:-cc} -std=gnu11 -O2 $floor_def -o "$tmp/invoke-floor" "$here/bench/invoke-floor.c" \
		$(pkg-config --cflags --libs $floor_pkgs) ||
		{ echo "cannot compile bench/invoke-floor.c"; exit 1; }
	bench_endpoint_start ep
	ep_pid=$last_pid
	invoke_ep=http://127.0.0.1:$port
	# HTTPS: a test CA and a certificate for 127.0.0.1 it signed
	mkdir -p "$tmp/tls"
	(
		cd "$tmp/tls"
		if [ "${BENCH_TLS_KEY:-rsa}" = ec ]; then
			keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
		else
			keyopt=(-newkey rsa:2048)
		fi
		openssl req -x509 "${keyopt[@]}" -nodes -keyout ca.key -out ca.pem -days 2 \
			-subj "/CN=hypertest bench CA" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req "${keyopt[@]}" -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
			-out server.pem -extfile ext
	) >"$tmp/tls/openssl.log" 2>&1 || { cat "$tmp/tls/openssl.log"; echo "openssl could not make the test CA"; exit 1; }
	# what a client trusts against real AWS, plus the test CA
	system_bundle=/etc/ssl/certs/ca-certificates.crt
	[ -r "$system_bundle" ] || { echo "no $system_bundle (Debian: ca-certificates)"; exit 1; }
	cat "$system_bundle" "$tmp/tls/ca.pem" >"$tmp/tls/bundle.pem"
	bench_endpoint_start tls-ep --tls-cert "$tmp/tls/server.pem" --tls-key "$tmp/tls/server.key"
	tls_ep_pid=$last_pid
	invoke_eps=https://127.0.0.1:$port
	h2_ep="" h2_ep_pid=""
	if [ -n "$floor_def" ]; then
		: >"$tmp/h2-ep.out"
		node "$here/bench/lambda-endpoint-h2.mjs" "$tmp/tls/server.pem" "$tmp/tls/server.key" 128 $$ \
			>"$tmp/h2-ep.out" 2>"$tmp/h2-ep.log" &
		h2_ep_pid=$!
		bench_endpoint_pids="$bench_endpoint_pids $!"
		bench_wait_port h2-ep && h2_ep=https://127.0.0.1:$port ||
			{ cat "$tmp/h2-ep.log"; echo "lambda-endpoint-h2.mjs did not start: no h2 floor"; }
	fi
fi
ep_cpu_ticks() { # PID: the C endpoint's user+system CPU in clock ticks
	[ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" || echo 0
}

# project N C LAMBDA_ENDPOINT [PROTO]: a config with N no-op tests at
# concurrency C (PROTO h2: the invocations over HTTP/2)
project() {
	mkdir -p "$tmp/p/tests"
	echo "no-op" >"$tmp/p/tests/noop.txt"
	"$py" - "$tmp/p" "$1" "$2" "$fn" "$3" "${4:-http}" <<'PY'
import json, os, sys
d, n, c, fn, lam = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
proto = sys.argv[6]
ep = os.environ["HT_AWS_ENDPOINT"]
cfg = {"concurrency": c, "driftDetectionPolicy": "silence", "imageName": "bench/aws",
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": {
           "region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
           "ecrRegistry": os.environ["HT_ECR_REGISTRY"],
           "endpoints": {"lambda": lam, "ecr": ep, "servicequotas": ep,
                         "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}}}
cfg["cloudProvider"]["options"].update(json.loads(os.environ.get("BENCH_AWS_OPTIONS") or "{}"))
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

control POST /quota '{"value": 5000}' >/dev/null
deployed=""
echo "endpoint: $([ "$mode" = c ] && echo "bench/lambda-endpoint.c (SigV4 shape checked, not the signature)" ||
	echo "tests/services/aws/endpoint.py (every SigV4 verified)"); $(nproc) cores"
[ "$mode" = c ] && echo "HTTPS: $(openssl x509 -in "$tmp/tls/server.pem" -noout -text | sed -n 's/^ *Public Key Algorithm: //p') certificate; the client trusts $(grep -c 'BEGIN CERTIFICATE' "$tmp/tls/bundle.pem") certificates ($system_bundle and the test CA, as AWS_CA_BUNDLE)"

run() { # N C DELAY_MS IDEAL_S [http|https|h2 [WAVE]]
	local n=$1 c=$2 delay=$3 ideal=$4 proto=${5:-http} wave=${6:-0} cpu0 cpu1 ep url pid
	if [ "$proto" != http ] && [ "$mode" != c ]; then
		echo "N=$n at concurrency $c over ${proto^^}: needs BENCH_ENDPOINT=c"
		return
	fi
	if [ "$proto" = h2 ] && [ -z "$h2_ep" ]; then
		echo "N=$n at concurrency $c over HTTP/2: needs libnghttp2 (Debian: libnghttp2-dev) and node"
		return
	fi
	case "$proto" in
	https) ep=$invoke_eps pid=$tls_ep_pid ;;
	h2) ep=$h2_ep pid=$h2_ep_pid ;;
	*) ep=$invoke_ep pid=$ep_pid ;;
	esac
	if [ "$deployed" != "$n" ]; then # the manifest lists the tests; deploy talks to endpoint.py
		project "$n" "$c" "$HT_AWS_ENDPOINT"
		control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 100}' >/dev/null
		"$hypertest" -C "$tmp/p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; exit 1; }
		deployed=$n
	fi
	project "$n" "$c" "$ep" "$proto"
	control POST "/function/$fn" "{\"mode\": \"success\", \"delayMs\": $delay}" >/dev/null
	control POST /reset '{}' >/dev/null
	[ "$mode" = c ] && http POST "$ep/_reset" "{\"delayMs\": $delay, \"wave\": $wave}" >/dev/null
	load=$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)
	cpu0=$(ep_cpu_ticks "$pid")
	if [ "$proto" != http ]; then
		AWS_CA_BUNDLE=$tmp/tls/bundle.pem ${HT_BENCH_WRAP:-} "$hypertest" -C "$tmp/p" --verbose invoke >"$tmp/out" 2>&1 || true
	else
		${HT_BENCH_WRAP:-} "$hypertest" -C "$tmp/p" --verbose invoke >"$tmp/out" 2>&1 || true
	fi
	cpu1=$(ep_cpu_ticks "$pid")
	if [ "$mode" = c ]; then
		http GET "$ep/_stats" >"$tmp/stats.json"
	else
		control GET "/function/$fn" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["stats"]))' >"$tmp/stats.json"
	fi
	mkdir -p "$tmp/run-$n-$c-$proto" && cp "$tmp/out" "$tmp/p/hypertest.results.json" "$tmp/stats.json" "$tmp/run-$n-$c-$proto/"
	line=$(grep -o '[0-9]* tests in [0-9]* ms.*max RSS' "$tmp/out" | tail -1) ||
		{ tail -20 "$tmp/out"; echo "hypertest printed no summary line"; exit 1; }
	# the floor of the machine for one wave of C requests at once (C endpoint only)
	: >"$tmp/floor"
	if [ "$mode" = c ] && [ "$delay" -gt 0 ] && [ -z "${BENCH_NO_FLOOR:-}" ] &&
		{ [ "$n" = "$c" ] || [ "$proto" != http ] || [ "$c" -ge 10000 ]; }; then
		case "$proto" in
		https) hows="tls curl${h2_ep:+ h2}" ;;
		h2) hows="h2" ;;
		*) hows="raw curl" ;;
		esac
		for how in $hows; do
			fep=$ep
			[ "$how" = h2 ] && fep=$h2_ep
			http POST "$fep/_reset" "{\"delayMs\": $delay}" >/dev/null
			url="$fep/2015-03-31/functions/$fn/invocations"
			if [ "$proto" != http ]; then
				"$tmp/invoke-floor" "$how" "$url" "$c" "$tmp/tls/bundle.pem" >>"$tmp/floor" || echo "floor $how failed" >>"$tmp/floor"
			else
				"$tmp/invoke-floor" "$how" "$url" "$c" >>"$tmp/floor" || echo "floor $how failed" >>"$tmp/floor"
			fi
		done
	fi
	"$py" - "$n" "$c" "$delay" "$ideal" "$line" "$tmp/p/hypertest.results.json" "$tmp/stats.json" \
		"$load" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" "$mode" "$proto" "$wave" "$tmp/floor" <<'PY'
import json, re, sys
n, c, delay, ideal = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
line, res, st = sys.argv[5], json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
load, ep_ticks, hz, mode = sys.argv[8], int(sys.argv[9]), int(sys.argv[10]), sys.argv[11]
proto, wave, floor_lines = sys.argv[12], int(sys.argv[13]), open(sys.argv[14]).read().splitlines()
m = re.search(r"(\d+) tests in (\d+) ms, at most (\d+) in flight; this process: (\d+) ms user CPU, "
              r"(\d+) ms system CPU, (\d+) KB max RSS", line)
wall = int(m.group(2)) / 1000
cpu = (int(m.group(4)) + int(m.group(5))) / 1000
rss = int(m.group(6)) / 1024
floors = {}
for fl in floor_lines:
    f = re.search(r"floor (\w+) (\d+): .*all answered after (\d+) ms; CPU (\d+) ms user, (\d+) ms system "
                  r"= ([0-9.]+) ms per invocation", fl)
    if f:
        floors[f.group(1)] = {"wall": int(f.group(3)) / 1000, "per": float(f.group(6))}
        r = re.search(r"peak RSS (\d+) KB", fl)
        floors[f.group(1)]["rss"] = int(r.group(1)) / 1024 if r else None
        k = re.search(r"; (\d+) connections", fl)
        floors[f.group(1)]["conns"] = int(k.group(1)) if k else None
verdict = lambda ok: "PASS" if ok else "MISS"
# over HTTP/2 the floor is the h2 one (in place of the TLS floor)
if proto == "h2":
    floors["tls"] = floors.pop("h2", None)
    st.setdefault("maxInFlight", st.get("mostInFlight"))
print("N=%d at concurrency %d, delayMs %d, %s (load average %s): %s"
      % (n, c, delay, "HTTP/2 over TLS" if proto == "h2" else proto.upper(), load, res["tests"]))
per = cpu * 1000 / n
scale = c >= 10000 and n > c
sfl = floors.get("raw" if proto == "http" else "tls") if scale else None
if sfl:
    # the floor of the whole run: one wave of c on new connections (the
    # floor program's), then each further wave on them, at the delay
    waves = (n + c - 1) // c
    ft = sfl["wall"] + (waves - 1) * delay / 1000
    fo = (wall - ft) * 100 / ft
    print("  wall %.2f s against the floor's %.2f s (one wave of %d in %.2f s, then %d more of %d ms): "
          "%+.1f %%   %s (target within 20 %%)"
          % (wall, ft, c, sfl["wall"], waves - 1, delay, fo, verdict(fo <= 20)))
if proto == "http" and sfl:
    print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s (target < 0.2)"
          % (cpu, m.group(4), m.group(5), per, verdict(per < 0.2)))
    print("  peak RSS %.1f MB   %s (target < 150); the raw floor's for its %d connections: %.1f MB"
          % (rss, verdict(rss < 150), c, sfl["rss"] or 0))
elif proto == "http":
    if ideal > 0:
        over = (wall - ideal) * 100 / ideal
        print("  wall %.2f s against the ideal %.0f s: %+.1f %%   %s (target within 5 %%)"
              % (wall, ideal, over, verdict(over <= 5)))
    else:
        print("  wall %.2f s (ideal ~0: %.3f ms per invocation, %.0f invocations/s; no target)"
              % (wall, wall * 1000 / n, n / wall if wall else 0))
    raw = floors.get("raw")
    if raw and ideal > 0:
        fo = (wall - raw["wall"]) * 100 / raw["wall"]
        print("  wall %.2f s against the raw floor's %.2f s: %+.1f %%   %s (target within 10 %%)"
              % (wall, raw["wall"], fo, verdict(fo <= 10)))
    print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s (target < 0.2)"
          % (cpu, m.group(4), m.group(5), per, verdict(per < 0.2)))
    limit = 150 if c >= 10000 else 64
    print("  peak RSS %.1f MB   %s (target < %d)" % (rss, verdict(rss < limit), limit))
elif proto == "h2":
    # the targets of plain HTTP, against the h2 floor (the same requests as
    # streams of a few connections, no hypertest)
    fl = floors.get("tls")
    if sfl:
        pass  # the scale target, above
    elif fl and n == c:
        fo = (wall - fl["wall"]) * 100 / fl["wall"]
        print("  wall %.2f s against the h2 floor's %.2f s: %+.1f %%   %s (target within 10 %%)"
              % (wall, fl["wall"], fo, verdict(fo <= 10)))
    elif ideal > 0:
        over = (wall - ideal) * 100 / ideal
        print("  wall %.2f s against the ideal %.0f s: %+.1f %%   %s (target within 5 %%)"
              % (wall, ideal, over, verdict(over <= 5)))
    print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s "
          "(target < 0.2)%s" % (cpu, m.group(4), m.group(5), per, verdict(per < 0.2),
                                "; the h2 floor's %.3f" % fl["per"] if fl else ""))
    limit = 150 if c >= 10000 else 64
    print("  peak RSS %.1f MB   %s (target < %d)%s" % (rss, verdict(rss < limit), limit,
          "; the h2 floor's on its %d connections: %.1f MB" % (fl["conns"] or 0, fl["rss"] or 0)
          if fl else ""))
    if "connections" in st:
        print("  endpoint: %d TLS connections (the bench's own requests included)" % st["connections"])
else:
    tls = floors.get("tls")
    over = (wall - ideal) * 100 / ideal
    if sfl:
        pass  # the scale target, above
    elif c < n and wave == 0:
        print("  wall %.2f s against the ideal %.0f s: %+.1f %%   %s (target within 10 %%)"
              % (wall, ideal, over, verdict(over <= 10)))
    elif tls:
        fo = (wall - tls["wall"]) * 100 / tls["wall"] if wave == 0 else None
        if wave == 0:
            print("  wall %.2f s against the TLS floor's %.2f s: %+.1f %%   %s (target within 25 %%; ideal %.0f s)"
                  % (wall, tls["wall"], fo, verdict(fo <= 25), ideal))
        else:
            print("  wall %.2f s against the ideal %.0f s: %+.1f %% (one wave's floor %.2f s; no target)"
                  % (wall, ideal, over, tls["wall"]))
    else:
        print("  wall %.2f s against the ideal %.0f s: %+.1f %% (no floor measured)" % (wall, ideal, over))
    if sfl:
        print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s "
              "(target < 0.2; TLS floor %.3f)"
              % (cpu, m.group(4), m.group(5), per, verdict(per < 0.2), tls["per"]))
    elif c < n and wave == 0 and tls:
        print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s "
              "(target <= 1.5 x the TLS floor's %.3f = %.3f)"
              % (cpu, m.group(4), m.group(5), per, verdict(per <= 1.5 * tls["per"]), tls["per"],
                 1.5 * tls["per"]))
    else:
        print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation%s"
              % (cpu, m.group(4), m.group(5), per,
                 " (TLS floor %.3f; no target)" % tls["per"] if tls else ""))
    limit = 150 if c >= 10000 else 64 if c < n and wave == 0 else 128
    fr = tls.get("rss") if tls else None
    print("  peak RSS %.1f MB   %s (target < %d)%s" % (rss, verdict(rss < limit), limit,
          "; the TLS floor's for its %d connections: %.1f MB" % (c, fr) if fr else ""))
    h2 = floors.get("h2")
    if h2:
        print("  over HTTP/2 (runs 9 and 10): the h2 floor's %d invocations as streams on %d "
              "connections took %.2f s, %.3f ms of CPU per invocation, peak RSS %.1f MB"
              % (c, h2["conns"] or 0, h2["wall"], h2["per"], h2["rss"] or 0))
    if "connections" in st:
        print("  endpoint: %d connections, %d full TLS handshakes, %d resumed"
              % (st["connections"], st["fullHandshakes"], st["resumedHandshakes"]))
    if wave and "connections" in st:
        # the first wave needs `wave` connections (all in flight at once); every one
        # more, and every handshake more than one per connection, is the second's.
        # The endpoint also counts the connection of the request for its figures.
        conns, hs = st["connections"] - 1, st["fullHandshakes"] + st["resumedHandshakes"] - 1
        full_wave = int(m.group(3)) == wave
        print("  second wave: hypertest opened %d connections and made %d handshakes for %d "
              "invocations, %d at most in flight   %s (target: %d connections, one handshake "
              "each%s)"
              % (conns, hs, n, int(m.group(3)), verdict(full_wave and conns <= wave and hs == conns),
                 wave, "" if full_wave else "; the first wave never had all in flight"))
t = res["tests"]
print("  results: %d of %d present, %d passed   %s (target: every one)"
      % (t["total"], n, t["success"], verdict(t["total"] == n and t["success"] == n)))
print("  in flight at most: %s (hypertest), %s (endpoint); endpoint: %s invocations%s"
      % (m.group(3), st["maxInFlight"], st["invocations"],
         ", %.2f s CPU" % (ep_ticks / hz) if mode == "c" else ", statuses %s" % st.get("statuses")))
if mode == "c" and st.get("firstArrival"):
    # when the invocations reached the endpoint, and when hypertest saw them end
    import datetime
    t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
    t0 = t(res["startDate"])
    ends = sorted(t(x["endDate"]) - t0 for x in res["testResults"])
    first = st["firstArrival"] - t0
    print("  timeline (ms after the run started): invocations reached the endpoint from %.0f to %.0f;"
          " hypertest saw them end from %.0f to %.0f (median %.0f)"
          % (first, first + st["arrivalSpanMs"], ends[0], ends[-1], ends[len(ends) // 2]))
if floor_lines:
    print("  the floor on this machine (bench/invoke-floor.c: %d requests at once, each on a new "
          "connection, same endpoint, no hypertest):" % c)
    for fl in floor_lines:
        print("    " + fl)
PY
}

for case in ${BENCH_CASES:-1 2 3 4 5 6 9}; do
	case "$case" in
	1) run 2000 500 1000 4 ;;
	2) run 2000 2000 1000 1 ;;
	3) run 5000 1000 0 0 ;;
	4) run 2000 500 1000 4 https ;;
	5) run 2000 2000 1000 1 https ;;
	6) run 4000 2000 5000 10 https 2000 ;;
	7) run 20000 10000 1000 2 ;;
	8) run 20000 10000 1000 2 https ;;
	9) run 2000 2000 1000 1 h2 ;;
	10) run 20000 10000 1000 2 h2 ;;
	*:*:*:*) IFS=: read -r n c d i p w <<<"$case"; run "$n" "$c" "$d" "$i" "${p:-http}" "${w:-0}" ;;
	*) echo "BENCH_CASES: no case '$case' (1 to 10, or N:C:DELAY_MS:IDEAL_S[:https|h2[:WAVE]])"; exit 2 ;;
	esac
done
control POST /quota '{"value": 1000}' >/dev/null
