#!/bin/sh
# The speed of the `local` provider through the CLI: 200 tests that sleep
# 0.2 s, at concurrency 50, take about 0.8 s plus start-up; the bound
# asserted is 3 s, with all 200 passed.
#
# The time is the machine's as much as hypertest's: each test is two
# processes (the function, forked from the zygote, and the test), and on a
# shared VM of two vCPUs the cost of creating a process changes by half
# from one minute to the next.  So each attempt first measures the floor,
# the same 200 `sleep 0.2` at 50 started by `xargs -P 50`, nothing of
# hypertest, then runs hypertest, and prints both.
#   - An attempt under 3 s passes the test.
#   - Up to 5 attempts; after one whose floor was slow, 10 s of rest.
#   - Fails: no attempt under 3 s, though in at least one the machine ran at
#     its usual speed (a floor under NORMAL_FLOOR, below).
#   - Skipped (77): no attempt under 3 s and the floor slow in every one; the
#     machine could not show the bound, which says nothing of hypertest.
# With sanitizers every function process is instrumented (and forking one
# copies the page tables of its shadow memory): skipped, the time printed.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-local-speed-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
for tool in python3 xargs seq; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found"; exit 77; }
done

BOUND=3.0
# On the 2-vCPU VM this was measured on, the floor was 1.3 s to 1.9 s within
# the same hour, and hypertest's run 1.5 to 1.9 times the floor (each test
# is two processes there, one in the floor): 2.0-2.2 s at a floor of
# 1.3-1.4 s, 2.3-2.9 s at 1.5-1.7 s, 3.1-3.3 s at 1.7-1.9 s.  The bound is
# judged on attempts with a floor under 1.6 s.
NORMAL_FLOOR=1.6
ATTEMPTS=5

now() { date +%s.%N; }
# lt A B: A < B, as numbers
lt() { python3 -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }

p=$tmp/project
mkdir -p "$p/tests"
echo "sleeps" >"$p/tests/README"
ids=$(python3 -c 'import json; print(json.dumps(["t%03d" % i for i in range(200)]))')
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 50, "imageName": "e2e/speed",
 "testRunner": {"plugin": "command", "options": {"tests": $ids, "run": ["sleep", "0.2"]}},
 "cloudProvider": {"plugin": "local", "options": {}}}
JSON
"$hypertest" -C "$p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

normal_seen=""
summary=""
attempt=1
while [ $attempt -le $ATTEMPTS ]; do
	t0=$(now)
	seq 200 | xargs -P 50 -I{} sleep 0.2 || fail "xargs"
	t1=$(now)
	"$hypertest" -C "$p" --quiet invoke >"$tmp/invoke.out" 2>&1 ||
		{ tail "$tmp/invoke.out"; fail "invoke of 200 sleeps"; }
	t2=$(now)
	floor=$(secs "$t0" "$t1")
	took=$(secs "$t1" "$t2")
	passed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tests"]["success"])' \
		"$p/hypertest.results.json")
	[ "$passed" = 200 ] || fail "$passed of 200 passed"
	line="attempt $attempt: 200 tests of 0.2 s at concurrency 50: ${took} s (the machine's floor: ${floor} s)"
	echo "$line"
	# a copy for whoever runs the suite (make distcheck removes its logs)
	[ -n "${HT_SPEED_REPORT:-}" ] && echo "local-speed.sh $line" >>"$HT_SPEED_REPORT"
	summary="$summary
  $line"
	if [ -n "${HT_SANITIZERS:-}" ]; then
		echo "built with sanitizers ($HT_SANITIZERS): the 3 s bound is asserted in a build without them: skipped"
		exit 77
	fi
	lt "$took" $BOUND && { echo "under ${BOUND} s: passed"; exit 0; }
	if lt "$floor" $NORMAL_FLOOR; then
		normal_seen=yes
	elif [ $attempt -lt $ATTEMPTS ]; then
		sleep 10
	fi
	attempt=$((attempt + 1))
done
[ -n "$normal_seen" ] && fail "not under ${BOUND} s in $ATTEMPTS attempts, the machine at its usual speed (floor under ${NORMAL_FLOOR} s) in at least one:$summary"
echo "not under ${BOUND} s in $ATTEMPTS attempts, but the machine was slow in every one (floor not under ${NORMAL_FLOOR} s):$summary"
echo "skipped: the bound was not judged"
exit 77
