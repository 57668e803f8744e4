#!/usr/bin/env bash
# Every benchmark of bench/, one after the other, on one build: each
# script's own output (every figure beside its floor or target, with the
# ratio), then a summary of the figures (the lines with a floor, target,
# ratio, PASS or MISS) and each script's status and duration.
#
#   bench/run-all.sh [BUILD_DIR]      (default: _build, then .)
#   make benchmarks                   (from the build tree)
#   env: BENCH_ONLY="local deploy-registry" runs those alone (names
#        without .sh); BENCH_LOG_DIR keeps each script's output there
#        (default: a temporary directory, removed); BENCH_CASES is passed
#        to aws-invoke.sh (default here: all its runs, 1 to 10)
#
# Benchmarks need an optimized build without sanitizers (configure without
# --enable-sanitizers) and a quiet machine: the load average is printed
# beside the figures.  A script that fails does not stop the others; the
# exit status is 1 when one did.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$top/_build/cli/hypertest" ] && build=$top/_build || build=$top; }
build=$(cd "$build" && pwd)
[ -x "$build/cli/hypertest" ] || { echo "no $build/cli/hypertest: build first"; exit 1; }
if [ -n "${BENCH_LOG_DIR:-}" ]; then
	logs=$BENCH_LOG_DIR
	mkdir -p "$logs"
else
	logs=$(mktemp -d /tmp/ht-bench-all-XXXXXX)
	trap 'rm -rf "$logs"' EXIT
fi
# the order: invocation first (the longest), then local, deploy, report,
# reliability; any other script of bench/ after them (lib-*.sh are sourced
# by the others, not run)
scripts=()
for name in aws-invoke local deploy deploy-registry report reliability; do
	[ -f "$here/$name.sh" ] && scripts+=("$name")
done
for f in "$here"/*.sh; do
	name=$(basename "$f" .sh)
	case "$name" in lib-*) continue ;; esac
	case " run-all ${scripts[*]} " in *" $name "*) continue ;; esac
	scripts+=("$name")
done
if [ -n "${BENCH_ONLY:-}" ]; then
	scripts=($BENCH_ONLY)
fi

if sed -n '1,10p' "$build/config.log" 2>/dev/null | grep -q -- '--enable-sanitizers'; then
	echo "warning: $build was configured with --enable-sanitizers: the figures are not representative"
fi
echo "benchmarks of $build: ${scripts[*]}"
echo "machine: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# aws-invoke.sh: the scale runs (7, 8: 10,000 in flight) and HTTP/2 (9, 10) too
export BENCH_CASES=${BENCH_CASES:-1 2 3 4 5 6 7 8 9 10}
failed=0
declare -A status took
for name in "${scripts[@]}"; do
	echo
	echo "==== bench/$name.sh ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"
	start=$(date +%s)
	bash "$here/$name.sh" "$build" 2>&1 | tee "$logs/$name.log"
	rc=${PIPESTATUS[0]}
	took[$name]=$(( $(date +%s) - start ))
	status[$name]=$rc
	[ "$rc" -eq 0 ] || failed=1
done

echo
echo "==== summary (floors, targets, ratios)"
for name in "${scripts[@]}"; do
	echo "-- $name.sh: exit ${status[$name]}, ${took[$name]} s"
	grep -E -i 'floor|target|ratio|PASS|MISS|load average' "$logs/$name.log" | sed 's/^/   /'
done
exit $failed
