#!/usr/bin/env bash
# services.sh - starts and stops the local services the aws provider's tests
# talk to, each on a free 127.0.0.1 port:
#   s3rver (real S3 server, npm)                      bucket hypertest-test
#   docker-registry (Debian's, basic auth AWS:<token>) the ECR registry API
#   endpoint.py (our strict Lambda/ECR/Service Quotas stand-in, which also
#                checks S3 signatures and forwards S3 requests to s3rver)
#
#   services.sh start DIR   start them; write DIR/env (export lines) and pid files
#   services.sh stop DIR    stop them
#
# Everything dies with the caller: each server watches the caller's pid
# (HT_SERVICES_OWNER, default: the process that ran "start"), and a watchdog
# ends them when it is gone.  node_modules is installed with npm ci when it
# is missing (into DIR/node when tests/services/aws is read-only, as in distcheck);
# without npm, s3rver and @vercel/fun are skipped and DIR/env says so.
# HT_AWS_ENDPOINT_CONFIG names another config for endpoint.py;
# HT_AWS_ENDPOINT_REGION another region than us-east-1 (IAM stays us-east-1).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
key_id=AKIDEXAMPLE
secret='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'
token=hypertest-test-token
bucket=hypertest-test

say() { printf 'services.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

pick_python() {
	local py
	for py in python3 /usr/bin/python3; do
		# the interpreter itself, not a wrapper such as a pyenv shim
		command -v "$py" >/dev/null && "$py" -c 'import botocore, sys; print(sys.executable)' 2>/dev/null &&
			return 0
	done
	return 1
}

# answers URL: true once something answers HTTP there (any status).
answers() {
	"$python" - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass
except OSError:
    sys.exit(1)
EOF
}

# wait_for FILE PATTERN: the port that a sed pattern finds in FILE, within 60 s.
wait_for() {
	local file=$1 pattern=$2 pid=$3 i port
	for i in $(seq 1 600); do
		port=$(sed -n "$pattern" "$file" 2>/dev/null | head -1)
		if [ -n "$port" ]; then
			echo "$port"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

wait_answer() {
	local i
	for i in $(seq 1 100); do
		answers "$1" && return 0
		sleep 0.2
	done
	return 1
}

# node_modules: tests/services/aws/node_modules, or installed by npm ci.
node_modules() {
	local dir=$1 target
	if [ -d "$here/node_modules/s3rver" ] && [ -d "$here/node_modules/@vercel/fun" ]; then
		echo "$here/node_modules"
		return 0
	fi
	if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
		say "npm or node is missing: s3rver and @vercel/fun are skipped"
		return 1
	fi
	if [ -w "$here" ]; then
		target=$here
	else
		target=$dir/node
		mkdir -p "$target" && cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$target/" || return 1
	fi
	say "installing s3rver and @vercel/fun with npm ci in $target"
	if ! (cd "$target" && npm ci --no-audit --no-fund --loglevel=error) >"$dir/npm.log" 2>&1; then
		say "npm ci failed (see $dir/npm.log): s3rver and @vercel/fun are skipped"
		return 1
	fi
	echo "$target/node_modules"
}

# bcrypt line for an htpasswd file (the registry accepts only bcrypt).
htpasswd_line() {
	"$python" -W ignore - "$1" "$2" <<'EOF'
import sys
try:
    import crypt
    h = crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH))
except (ImportError, AttributeError):
    h = None
if not h or not h.startswith("$2"):
    sys.exit(1)
print("%s:%s" % (sys.argv[1], h))
EOF
}

start() {
	local dir=$1 owner=${HT_SERVICES_OWNER:-$PPID} mods="" s3port="" regport="" epport="" cfg region
	mkdir -p "$dir" || die "cannot create $dir"
	dir=$(cd "$dir" && pwd)
	[ -e "$dir/endpoint.pid" ] && die "$dir already has running services (services.sh stop $dir)"
	python=$(pick_python) || die "no python3 with botocore (Debian package python3-botocore)"
	: >"$dir/env.tmp"

	# Watchdog: when the owner is gone, end whatever is still listed.
	setsid bash -c '
		while kill -0 "$1" 2>/dev/null && [ -e "$2/watchdog.pid" ]; do sleep 1; done
		for f in "$2"/s3rver.pid "$2"/registry.pid "$2"/endpoint.pid; do
			[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
		done' services-watchdog "$owner" "$dir" </dev/null >/dev/null 2>&1 &
	echo $! >"$dir/watchdog.pid"

	if mods=$(node_modules "$dir"); then
		mkdir -p "$dir/s3"
		AWS_ACCESS_KEY_ID=$key_id NODE_PATH=$mods setsid node "$here/s3rver.js" --watch-pid "$owner" \
			"$dir/s3" "$bucket" </dev/null >"$dir/s3rver.out" 2>"$dir/s3rver.log" &
		echo $! >"$dir/s3rver.pid"
		s3port=$(wait_for "$dir/s3rver.out" 's/^PORT \([0-9]*\)$/\1/p' "$(cat "$dir/s3rver.pid")") ||
			{ cat "$dir/s3rver.log" >&2; stop "$dir"; die "s3rver did not start"; }
		wait_answer "http://127.0.0.1:$s3port/" || { stop "$dir"; die "s3rver does not answer"; }
		{
			echo "export HT_S3_ENDPOINT=http://127.0.0.1:$s3port"
			echo "export HT_S3_BUCKET=$bucket"
			echo "export HT_FUN_DIR=$mods"
			echo "export HT_FUN_SMOKE=$here/fun-smoke.js"
		} >>"$dir/env.tmp"
	else
		echo "# s3rver and @vercel/fun skipped: no npm/node or npm ci failed" >>"$dir/env.tmp"
	fi

	if command -v docker-registry >/dev/null; then
		mkdir -p "$dir/registry/data"
		if htpasswd_line AWS "$token" >"$dir/registry/htpasswd"; then
			auth="auth:
  htpasswd:
    realm: hypertest-test
    path: $dir/registry/htpasswd"
		else
			say "no bcrypt in python: the registry runs without basic auth"
			auth=""
		fi
		cat >"$dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: hypertest-test-secret
$auth
EOF
		setsid docker-registry serve "$dir/registry/config.yml" \
			</dev/null >"$dir/registry.log" 2>&1 &
		echo $! >"$dir/registry.pid"
		regport=$(wait_for "$dir/registry.log" 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
			"$(cat "$dir/registry.pid")") || { cat "$dir/registry.log" >&2; stop "$dir"; die "docker-registry did not start"; }
		wait_answer "http://127.0.0.1:$regport/v2/" || { stop "$dir"; die "docker-registry does not answer"; }
		{
			echo "export HT_ECR_REGISTRY=http://127.0.0.1:$regport"
			echo "export HT_ECR_USER=AWS"
			echo "export HT_ECR_PASSWORD=$token"
		} >>"$dir/env.tmp"
	else
		echo "# docker-registry skipped: not installed (Debian package docker-registry)" >>"$dir/env.tmp"
	fi

	cfg=${HT_AWS_ENDPOINT_CONFIG:-$dir/endpoint-config.json}
	if [ -z "${HT_AWS_ENDPOINT_CONFIG:-}" ]; then
		printf '{"ecr": {"token": "%s"}, "functions": {"hypertest-test": {"mode": "success"}}}\n' \
			"$token" >"$cfg"
	fi
	region=${HT_AWS_ENDPOINT_REGION:-us-east-1}
	set -- --port 0 --config "$cfg" --watch-pid "$owner" --region "$region" \
		--request-log "$dir/requests.jsonl"
	[ -n "$regport" ] && set -- "$@" --registry "http://127.0.0.1:$regport"
	[ -n "$s3port" ] && set -- "$@" --s3-upstream "http://127.0.0.1:$s3port"
	[ -n "${HT_AWS_ENDPOINT_VERBOSE:-}" ] && set -- "$@" --verbose
	setsid "$python" -B "$here/endpoint.py" "$@" </dev/null >"$dir/endpoint.out" 2>"$dir/endpoint.log" &
	echo $! >"$dir/endpoint.pid"
	epport=$(wait_for "$dir/endpoint.out" 's/^PORT \([0-9]*\)$/\1/p' "$(cat "$dir/endpoint.pid")") ||
		{ cat "$dir/endpoint.log" >&2; stop "$dir"; die "endpoint.py did not start"; }
	wait_answer "http://127.0.0.1:$epport/_control/stats" || { stop "$dir"; die "endpoint.py does not answer"; }
	{
		echo "export HT_AWS_ENDPOINT=http://127.0.0.1:$epport"
		echo "export HT_AWS_CONTROL=http://127.0.0.1:$epport/_control"
		[ -n "$s3port" ] && echo "export HT_S3_CHECKED_ENDPOINT=http://127.0.0.1:$epport"
		echo "export AWS_ACCESS_KEY_ID=$key_id"
		echo "export AWS_SECRET_ACCESS_KEY='$secret'"
		echo "export HT_IAM_ENDPOINT=http://127.0.0.1:$epport"
		echo "export HT_ECR_ENDPOINT=http://127.0.0.1:$epport"
		echo "export HT_LAMBDA_ENDPOINT=http://127.0.0.1:$epport"
		echo "export HT_AWS_REQUEST_LOG=$dir/requests.jsonl"
		echo "export AWS_REGION=$region"
		echo "export AWS_DEFAULT_REGION=$region"
		echo "export HT_AWS_PYTHON=$python"
	} >>"$dir/env.tmp"
	mv "$dir/env.tmp" "$dir/env"
}

# stop_pid FILE NAME: end the process in FILE if it is still the one we started.
stop_pid() {
	local file=$1 name=$2 pid i
	[ -f "$file" ] || return 0
	pid=$(cat "$file")
	rm -f "$file"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
}

stop() {
	local dir=$1
	[ -d "$dir" ] || die "no directory $dir"
	stop_pid "$dir/endpoint.pid" endpoint.py
	stop_pid "$dir/s3rver.pid" s3rver.js
	stop_pid "$dir/registry.pid" docker-registry
	stop_pid "$dir/watchdog.pid" services-watchdog
	rm -f "$dir/env"
}

case "${1:-} ${2:+x}" in
"start x") start "$2" ;;
"stop x") stop "$2" ;;
*)
	echo "usage: services.sh start DIR | services.sh stop DIR" >&2
	exit 2
	;;
esac
