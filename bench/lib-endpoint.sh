# shellcheck shell=bash disable=SC2034,SC2154 # $here and $tmp are the caller's, $py is for it
# Sourced by the benchmarks of the aws provider (bash), once they have set
# $here (the source tree) and made $tmp (the run's temporary directory):
#   . "$here/bench/lib-endpoint.sh"
# The services of tests/services/aws/services.sh (for deploy, S3 and ECR)
# and bench/lambda-endpoint.c (for Lambda Invoke): starting and stopping
# them.

bench_started=""
bench_endpoint_pids=""

# bench_services_start: the services of the environment (HT_AWS_ENDPOINT &
# co.), else started in $tmp/svc for the run (bench_cleanup stops them);
# exit 1 when they cannot start.  Then $py is the services' python, and no
# AWS_ variable of the caller's sends a request elsewhere.
bench_services_start() {
	if [ -z "${HT_AWS_ENDPOINT:-}" ]; then
		"$here/tests/services/aws/services.sh" start "$tmp/svc" >"$tmp/services.log" 2>&1 ||
			{ cat "$tmp/services.log"; echo "the services did not start"; exit 1; }
		bench_started=1
		. "$tmp/svc/env"
	fi
	py=${HT_AWS_PYTHON:-python3}
	unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
}

# bench_endpoint_build: compiles bench/lambda-endpoint.c into
# $tmp/lambda-endpoint with ${CC:-cc}; exit 1 when it cannot.
bench_endpoint_build() {
	local pkg
	pkg=$(pkg-config --cflags --libs jansson libssl libcrypto) ||
		{ echo "pkg-config finds no jansson or openssl"; exit 1; }
	# shellcheck disable=SC2086 # pkg-config's flags are words
	${CC:-cc} -std=gnu11 -O2 -o "$tmp/lambda-endpoint" "$here/bench/lambda-endpoint.c" $pkg ||
		{ echo "cannot compile bench/lambda-endpoint.c"; exit 1; }
}

# bench_endpoint_start NAME [ARGS...]: starts $tmp/lambda-endpoint with ARGS
# (its output in $tmp/NAME.out, its log in $tmp/NAME.log), watching this
# shell, and waits up to 10 s for its port; sets $port and $last_pid; exit 1
# when it does not start.
bench_endpoint_start() {
	local name=$1
	shift
	: >"$tmp/$name.out" # the background job's redirection may come after the first read
	"$tmp/lambda-endpoint" --watch-pid $$ "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
	last_pid=$!
	bench_endpoint_pids="$bench_endpoint_pids $last_pid"
	bench_wait_port "$name" || { cat "$tmp/$name.log"; echo "lambda-endpoint did not start"; exit 1; }
}

# bench_wait_port NAME: waits up to 10 s for the "PORT N" line of an
# endpoint started with its output in $tmp/NAME.out; sets $port, 1 when
# none came.
bench_wait_port() {
	port=""
	for _ in $(seq 1 100); do
		port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$tmp/$1.out")
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	return 1
}

# bench_cleanup: for the EXIT trap: stops the endpoints and the services
# started here, removes $tmp (kept when BENCH_KEEP is set).
bench_cleanup() {
	local pid
	for pid in $bench_endpoint_pids; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -n "$bench_started" ] && "$here/tests/services/aws/services.sh" stop "$tmp/svc" >/dev/null 2>&1
	if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
