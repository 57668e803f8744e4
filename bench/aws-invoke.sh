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
# Three runs:
#   N=2000 at concurrency  500, delayMs 1000   ideal 4 s (4 waves of 1 s)
#   N=2000 at concurrency 2000, delayMs 1000   ideal 1 s (one wave)
#   N=5000 at concurrency 1000, delayMs    0   ideal ~0 (all overhead)
# For each: wall time of the run against the ideal, orchestrator CPU time
# and peak RSS (from the "N tests in X ms, at most M in flight; this
# process: ..." line of hypertest --verbose), the most invocations in
# flight at the endpoint, the endpoint's own CPU time (C endpoint only) and
# the load average; PASS/MISS against the targets: within 5 % of the ideal
# wall time (no wall target when the ideal is ~0), under 0.2 ms orchestrator
# CPU per invocation, under 64 MB peak RSS.  After a run of one wave
# (N = concurrency) comes the floor of the machine for it, from
# bench/invoke-floor.c: the same N requests at once to the same endpoint
# over raw sockets, then with bare libcurl (no hypertest; C endpoint only).
#
#   bench/aws-invoke.sh [BUILD_DIR]       (default: _build or .)
#   env: BENCH_ENDPOINT=c|python (default c), CC (default cc),
#        HT_BENCH_WRAP (a command put before hypertest, e.g. "perf record -g -o F"),
#        BENCH_CASES (default "1 2 3": which of the three runs, in that order;
#        N:C:DELAY_MS:IDEAL_S is a run of one's own),
#        BENCH_NO_FLOOR=1 leaves out the floor (below),
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
started=""
ep_pid=""
cleanup() {
	[ -n "$ep_pid" ] && kill "$ep_pid" 2>/dev/null && wait "$ep_pid" 2>/dev/null
	[ -n "$started" ] && "$here/tests/services/aws/services.sh" stop "$tmp/svc" >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
if [ -z "${HT_AWS_ENDPOINT:-}" ]; then
	"$here/tests/services/aws/services.sh" start "$tmp/svc" >"$tmp/services.log" 2>&1 ||
		{ cat "$tmp/services.log"; echo "the services did not start"; exit 1; }
	started=1
	. "$tmp/svc/env"
fi
py=${HT_AWS_PYTHON:-python3}
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
fn="bench-$$"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

http() { # METHOD URL [BODY]
	"$py" - "$2" "$1" "${3:-}" <<'PY'
import sys, urllib.request
url, method, body = sys.argv[1:4]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=30).read().decode())
PY
}
control() { http "$1" "$HT_AWS_CONTROL$2" "${3:-}"; } # endpoint.py's /_control API

# The C endpoint: compiled here, started once, told the delay by /_reset.
invoke_ep=$HT_AWS_ENDPOINT
if [ "$mode" = c ]; then
	pkg=$(pkg-config --cflags --libs jansson) || { echo "pkg-config finds no jansson"; exit 1; }
	# shellcheck disable=SC2086 # pkg-config's flags are words
	${CC:-cc} -std=gnu11 -O2 -o "$tmp/lambda-endpoint" "$here/bench/lambda-endpoint.c" $pkg ||
		{ echo "cannot compile bench/lambda-endpoint.c"; exit 1; }
	# shellcheck disable=SC2046 # pkg-config's flags are words
	${CC:-cc} -std=gnu11 -O2 -o "$tmp/invoke-floor" "$here/bench/invoke-floor.c" \
		$(pkg-config --cflags --libs libcurl) || { echo "cannot compile bench/invoke-floor.c"; exit 1; }
	"$tmp/lambda-endpoint" --watch-pid $$ >"$tmp/ep.out" 2>"$tmp/ep.log" &
	ep_pid=$!
	for _ in $(seq 1 100); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/ep.out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "${port:-}" ] || { cat "$tmp/ep.log"; echo "lambda-endpoint did not start"; exit 1; }
	invoke_ep=http://127.0.0.1:$port
fi
ep_cpu_ticks() { # the C endpoint's user+system CPU in clock ticks
	[ -n "$ep_pid" ] && awk '{ print $14 + $15 }' "/proc/$ep_pid/stat" || echo 0
}

# project N C LAMBDA_ENDPOINT: a config with N no-op tests at concurrency C
project() {
	mkdir -p "$tmp/p/tests"
	echo "no-op" >"$tmp/p/tests/noop.txt"
	"$py" - "$tmp/p" "$1" "$2" "$fn" "$3" <<'PY'
import json, os, sys
d, n, c, fn, lam = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ep = os.environ["HT_AWS_ENDPOINT"]
cfg = {"concurrency": c, "driftDetectionPolicy": "silence", "imageName": "bench/aws",
       "testRunner": {"plugin": "command", "options": {"testDir": "tests",
           "tests": ["t%05d" % i for i in range(n)], "run": ["true"]}},
       "cloudProvider": {"plugin": "aws", "options": {
           "region": "us-east-1", "functionName": fn, "bucketName": os.environ["HT_S3_BUCKET"],
           "ecrRegistry": os.environ["HT_ECR_REGISTRY"],
           "endpoints": {"lambda": lam, "ecr": ep, "servicequotas": ep,
                         "s3": os.environ["HT_S3_CHECKED_ENDPOINT"]}}}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

control POST /quota '{"value": 5000}' >/dev/null
deployed=""
echo "endpoint: $([ "$mode" = c ] && echo "bench/lambda-endpoint.c (SigV4 shape checked, not the signature)" ||
	echo "tests/services/aws/endpoint.py (every SigV4 verified)"); $(nproc) cores"

run() { # N C DELAY_MS IDEAL_S
	local n=$1 c=$2 delay=$3 ideal=$4 cpu0 cpu1
	if [ "$deployed" != "$n" ]; then # the manifest lists the tests; deploy talks to endpoint.py
		project "$n" "$c" "$HT_AWS_ENDPOINT"
		control POST "/function/$fn" '{"mode": "success", "updateDelayMs": 100}' >/dev/null
		"$hypertest" -C "$tmp/p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; exit 1; }
		deployed=$n
	fi
	project "$n" "$c" "$invoke_ep"
	control POST "/function/$fn" "{\"mode\": \"success\", \"delayMs\": $delay}" >/dev/null
	control POST /reset '{}' >/dev/null
	[ "$mode" = c ] && http POST "$invoke_ep/_reset" "{\"delayMs\": $delay}" >/dev/null
	load=$(sed 's/^\([^ ]* [^ ]* [^ ]*\).*/\1/' /proc/loadavg)
	cpu0=$(ep_cpu_ticks)
	${HT_BENCH_WRAP:-} "$hypertest" -C "$tmp/p" --verbose invoke >"$tmp/out" 2>&1 || true
	cpu1=$(ep_cpu_ticks)
	if [ "$mode" = c ]; then
		http GET "$invoke_ep/_stats" >"$tmp/stats.json"
	else
		control GET "/function/$fn" | "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["stats"]))' >"$tmp/stats.json"
	fi
	mkdir -p "$tmp/run-$n-$c" && cp "$tmp/out" "$tmp/p/hypertest.results.json" "$tmp/stats.json" "$tmp/run-$n-$c/"
	line=$(grep -o '[0-9]* tests in [0-9]* ms.*max RSS' "$tmp/out" | tail -1) ||
		{ tail -20 "$tmp/out"; echo "hypertest printed no summary line"; exit 1; }
	"$py" - "$n" "$c" "$delay" "$ideal" "$line" "$tmp/p/hypertest.results.json" "$tmp/stats.json" \
		"$load" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" "$mode" <<'PY'
import json, re, sys
n, c, delay, ideal = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
line, res, st = sys.argv[5], json.load(open(sys.argv[6])), json.load(open(sys.argv[7]))
load, ep_ticks, hz, mode = sys.argv[8], int(sys.argv[9]), int(sys.argv[10]), sys.argv[11]
m = re.search(r"(\d+) tests in (\d+) ms, at most (\d+) in flight; this process: (\d+) ms user CPU, "
              r"(\d+) ms system CPU, (\d+) KB max RSS", line)
wall = int(m.group(2)) / 1000
cpu = (int(m.group(4)) + int(m.group(5))) / 1000
rss = int(m.group(6)) / 1024
verdict = lambda ok: "PASS" if ok else "MISS"
print("N=%d at concurrency %d, delayMs %d (load average %s): %s"
      % (n, c, delay, load, res["tests"]))
if ideal > 0:
    over = (wall - ideal) * 100 / ideal
    print("  wall %.2f s against the ideal %.0f s: %+.1f %%   %s (target within 5 %%)"
          % (wall, ideal, over, verdict(over <= 5)))
else:
    print("  wall %.2f s (ideal ~0: %.3f ms per invocation, %.0f invocations/s; no target)"
          % (wall, wall * 1000 / n, n / wall if wall else 0))
print("  orchestrator CPU %.2f s (user %s ms, system %s ms) = %.3f ms per invocation   %s (target < 0.2)"
      % (cpu, m.group(4), m.group(5), cpu * 1000 / n, verdict(cpu * 1000 / n < 0.2)))
print("  peak RSS %.1f MB   %s (target < 64)" % (rss, verdict(rss < 64)))
print("  in flight at most: %s (hypertest), %s (endpoint); endpoint: %s invocations%s"
      % (m.group(3), st["maxInFlight"], st["invocations"],
         ", %.2f s CPU" % (ep_ticks / hz) if mode == "c" else ", statuses %s" % st.get("statuses")))
if mode == "c":
    # when the invocations reached the endpoint, and when hypertest saw them end
    import datetime
    t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
    t0 = t(res["startDate"])
    ends = sorted(t(x["endDate"]) - t0 for x in res["testResults"])
    first = st["firstArrival"] - t0
    print("  timeline (ms after the run started): invocations reached the endpoint from %.0f to %.0f;"
          " hypertest saw them end from %.0f to %.0f (median %.0f)"
          % (first, first + st["arrivalSpanMs"], ends[0], ends[-1], ends[len(ends) // 2]))
PY
	# one wave (N = C, a delay): what the machine itself needs for it
	if [ "$mode" = c ] && [ "$n" = "$c" ] && [ "$delay" -gt 0 ] && [ -z "${BENCH_NO_FLOOR:-}" ]; then
		echo "  the floor on this machine (bench/invoke-floor.c: the same $n requests at once, same endpoint, no hypertest):"
		for how in raw curl; do
			http POST "$invoke_ep/_reset" "{\"delayMs\": $delay}" >/dev/null
			echo "    $("$tmp/invoke-floor" "$how" "$invoke_ep/2015-03-31/functions/$fn/invocations" "$n")"
		done
	fi
}

for case in ${BENCH_CASES:-1 2 3}; do
	case "$case" in
	1) run 2000 500 1000 4 ;;
	2) run 2000 2000 1000 1 ;;
	3) run 5000 1000 0 0 ;;
	*:*:*:*) IFS=: read -r n c d i <<<"$case"; run "$n" "$c" "$d" "$i" ;;
	*) echo "BENCH_CASES: no case '$case' (1, 2, 3 or N:C:DELAY_MS:IDEAL_S)"; exit 2 ;;
	esac
done
control POST /quota '{"value": 1000}' >/dev/null
