#!/bin/sh
# cli-usage.sh - the command line of hypertest and hypertest-function:
# usage errors and their exit status, help texts, version, init, plugins
# without a configuration, and no escape sequences when colors are off.
# Exit 0 pass, 1 fail, 77 skip.
# shellcheck disable=SC2015 # "A && B || fail" fails when A or B does

top=${HT_TOP_BUILDDIR:-..}
ht=$top/cli/hypertest
htf=$top/cli/hypertest-function
if [ ! -x "$ht" ] || [ ! -x "$htf" ]; then
	echo "cli-usage: $ht or $htf not built" >&2
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli-usage.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# plugins are looked up in the build tree only
HYPERTEST_PLUGIN_PATH=$top/plugins/.libs
export HYPERTEST_PLUGIN_PATH
unset NO_COLOR HYPERTEST_FUNCTION_CONFIG
esc=$(printf '\033')

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs hypertest with stdin from /dev/null,
# stdout in $tmp/out, stderr in $tmp/err
run() {
	want=$1
	shift
	"$ht" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" != "$want" ]; then
		fail "hypertest $*: exit status $got, expected $want"
		sed 's/^/  stderr: /' "$tmp/err" >&2
		return 1
	fi
	return 0
}

# has FILE TEXT: FILE contains the fixed string TEXT
has() {
	grep -F -q -e "$2" "$1"
}

# usage_error MESSAGE ARGS...: exit status 2, the message and the hint on
# stderr, nothing on stdout
usage_error() {
	msg=$1
	shift
	run 2 "$@" || return
	has "$tmp/err" "hypertest: $msg" || fail "hypertest $*: no 'hypertest: $msg' in: $(cat "$tmp/err")"
	has "$tmp/err" "Try 'hypertest --help'." || fail "hypertest $*: no hint on stderr"
	[ ! -s "$tmp/out" ] || fail "hypertest $*: wrote to stdout on a usage error"
}

# ---- usage errors --------------------------------------------------------
usage_error "missing command"
usage_error "unknown command 'frobnicate'" frobnicate
usage_error "unknown command 'frobnicate'" --quiet frobnicate
usage_error "unknown option '--bogus'" --bogus version
usage_error "unknown option '--bogus'" deploy --bogus
usage_error "unknown option '-Z'" invoke -Z
usage_error "option '--config' requires an argument" deploy --config
usage_error "option '--config' requires an argument" --config
usage_error "option '-C' requires an argument" invoke -C
usage_error "option '--quiet' takes no argument" invoke --quiet=yes
usage_error "--set 'region': expected KEY=VALUE" invoke --set region
usage_error "--concurrency 'ten'" invoke --concurrency ten
usage_error "--concurrency '0'" --concurrency 0 invoke
usage_error "option '--force' applies only to 'init'" deploy --force
usage_error "option '--json' does not apply to 'init'" init --json
usage_error "unexpected argument 'extra' after 'deploy'" deploy extra
usage_error "unknown command 'nothing'" help nothing
usage_error "options '--quiet' and '--verbose' exclude each other" --quiet invoke --verbose

# ---- help ------------------------------------------------------------------
run 0 --help && {
	has "$tmp/out" "Usage: hypertest [OPTIONS] COMMAND" || fail "--help: no usage line"
	for c in init deploy invoke doctor plugins version help; do
		has "$tmp/out" "  $c " || fail "--help does not list '$c'"
	done
}
for c in init deploy invoke doctor plugins version help; do
	for form in "$c --help" "$c -h" "--help $c" "help $c"; do
		# shellcheck disable=SC2086 # the words are meant to be split
		run 0 $form || continue
		has "$tmp/out" "Usage: hypertest [OPTIONS] $c" || fail "hypertest $form: not the help of $c"
		[ ! -s "$tmp/err" ] || fail "hypertest $form: wrote to stderr"
	done
done
run 0 init --help && { has "$tmp/out" "--force" || fail "init --help does not show --force"; }

# ---- version ------------------------------------------------------------------
for form in version --version; do
	run 0 $form || continue
	grep -E -q '^hypertest [0-9]+\.[0-9]+\.[0-9]+ \(plugin ABI [0-9]+\.[0-9]+\)$' "$tmp/out" &&
		[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "hypertest $form printed: $(cat "$tmp/out")"
done
run 0 version --json &&
	{ grep -E -q '^\{"version": "[0-9]+\.[0-9]+\.[0-9]+", "pluginAbi": "[0-9]+\.[0-9]+"\}$' "$tmp/out" ||
		fail "version --json printed: $(cat "$tmp/out")"; }

# ---- init ---------------------------------------------------------------------
proj=$tmp/Demo_Project
mkdir -p "$proj"
cfg=$proj/hypertest.config.json
run 0 -C "$proj" init && {
	[ -f "$cfg" ] || fail "init wrote no $cfg"
	has "$tmp/out" "$cfg" || fail "init does not say what it wrote"
	for want in '"concurrency": 30,' '"imageName": "demo_project/hypertest",' \
		'"driftDetectionPolicy": "warning",' '"plugin": "command",' '"plugin": "local",' \
		'"testDir": "tests",' '"list": ["find", "tests", "-type", "f", "-name", "*.sh"],' \
		'"run": ["sh", "{id}"]'; do
		has "$cfg" "$want" || fail "init without a terminal: no $want in $(cat "$cfg")"
	done
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$cfg" ||
			fail "init wrote invalid JSON"
	fi
	# the library reads what init wrote
	run 0 -C "$proj" --config hypertest.config.json plugins ||
		fail "the library refuses the configuration init wrote"
}
echo '{"concurrency": 7}' >"$cfg"
run 1 -C "$proj" init && {
	has "$tmp/err" "already exists" || fail "init over a file: $(cat "$tmp/err")"
	has "$tmp/err" "--force" || fail "init over a file does not mention --force"
	[ "$(cat "$cfg")" = '{"concurrency": 7}' ] || fail "init without --force changed the file"
}
run 0 -C "$proj" init --force && { has "$cfg" '"imageName"' || fail "init --force did not overwrite"; }
# options after the command, --config naming another file
run 0 init --yes -C "$proj" --config other.json &&
	{ [ -f "$proj/other.json" ] || fail "init --config other.json wrote no other.json"; }
run 1 -C "$tmp/does-not-exist" init &&
	{ has "$tmp/err" "hypertest: " || fail "init in a missing directory: no error message"; }

# ---- plugins without a configuration --------------------------------------------
empty=$tmp/empty
mkdir -p "$empty"
run 0 -C "$empty" plugins && {
	has "$tmp/out" "Searched: " || fail "plugins: no 'Searched:' line"
	has "$tmp/out" "$HYPERTEST_PLUGIN_PATH" || fail "plugins: HYPERTEST_PLUGIN_PATH not searched"
}
run 0 -C "$empty" plugins --json && {
	[ "$(head -c 1 "$tmp/out")" = "[" ] || fail "plugins --json: not an array: $(cat "$tmp/out")"
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import json,sys; assert isinstance(json.load(open(sys.argv[1])), list)' \
			"$tmp/out" || fail "plugins --json: invalid JSON"
	fi
}
run 1 -C "$empty" --config missing.json plugins &&
	{ has "$tmp/err" "missing.json" || fail "plugins --config missing.json: $(cat "$tmp/err")"; }
run 1 -C "$empty" deploy &&
	{ has "$tmp/err" "hypertest.config.json" || fail "deploy without a configuration: $(cat "$tmp/err")"; }

# ---- no escape sequences when colors are off ------------------------------------------
for args in "--help" "version" "-C $empty plugins" "-C $proj init --force" "bogus" "-C $empty deploy"; do
	# shellcheck disable=SC2086
	NO_COLOR=1 "$ht" $args </dev/null >"$tmp/out" 2>"$tmp/err"
	if has "$tmp/out" "$esc" || has "$tmp/err" "$esc"; then
		fail "hypertest $args: escape sequence with NO_COLOR"
	fi
done
# on a terminal: colors unless NO_COLOR or --no-color (needs util-linux script)
if script -qec true /dev/null >/dev/null 2>&1 </dev/null; then
	if ls "$HYPERTEST_PLUGIN_PATH"/*.so >/dev/null 2>&1; then
		TERM=xterm script -qec "'$ht' -C '$empty' plugins" /dev/null </dev/null >"$tmp/tty" 2>&1
		has "$tmp/tty" "${esc}[" || fail "plugins on a terminal: no colors"
	fi
	for how in "NO_COLOR=1 TERM=xterm" "TERM=xterm NO_COLOR= HT_ARG=--no-color" "TERM=dumb"; do
		# shellcheck disable=SC2086
		env $how script -qec "'$ht' -C '$empty' plugins \${HT_ARG:-}; '$ht' -C '$empty' deploy \${HT_ARG:-}" \
			/dev/null </dev/null >"$tmp/tty" 2>&1
		grep -q "$esc\[[0-9;]*m" "$tmp/tty" && fail "colors on a terminal with $how"
		has "$tmp/tty" "hypertest.config.json" || fail "terminal run with $how: $(cat "$tmp/tty")"
	done
fi

# ---- hypertest-function ---------------------------------------------------------------------
"$htf" --help >"$tmp/out" 2>"$tmp/err" && has "$tmp/out" "Usage: hypertest-function" ||
	fail "hypertest-function --help"
"$htf" --version >"$tmp/out" 2>&1 &&
	grep -E -q '^hypertest-function [0-9]+\.[0-9]+\.[0-9]+ \(plugin ABI [0-9]+\.[0-9]+\)$' "$tmp/out" ||
	fail "hypertest-function --version: $(cat "$tmp/out")"
"$htf" --bogus >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && has "$tmp/err" "unknown option '--bogus'" && [ ! -s "$tmp/out" ] ||
	fail "hypertest-function --bogus: $(cat "$tmp/err")"
(cd "$empty" && "$htf" >"$tmp/out" 2>"$tmp/err")
[ $? -eq 1 ] && has "$tmp/err" "hypertest-function: " && [ ! -s "$tmp/out" ] ||
	fail "hypertest-function without a configuration: $(cat "$tmp/err")"
HYPERTEST_FUNCTION_CONFIG=$empty/nothing.json "$htf" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && has "$tmp/err" "nothing.json" && [ ! -s "$tmp/out" ] ||
	fail "hypertest-function with HYPERTEST_FUNCTION_CONFIG: $(cat "$tmp/err")"

if [ "$failures" -ne 0 ]; then
	echo "cli-usage: $failures failure(s)" >&2
	exit 1
fi
echo "cli-usage: all passed"
exit 0
