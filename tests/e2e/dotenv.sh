#!/bin/sh
# The project's .env, read by the hypertest program before the
# configuration: KEY=VALUE, quotes (escapes in double quotes), comments,
# "export ", no override of variables already set, ${VAR} references in
# the configuration; a syntax error names the file and line and never a
# value.  The command runner's list command (printenv) shows what the
# program's environment holds: each value becomes a test id.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-dotenv-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

p=$tmp/project
mkdir -p "$p/tests"
echo "exit 0" >"$p/tests/t.sh"
cat >"$p/hypertest.config.json" <<'JSON'
{"imageName": "e2e/dotenv",
 "testRunner": {"plugin": "command",
                "options": {"list": ["printenv", "${KEYNAME}", "B", "C", "ALREADY", "D", "E"],
                            "run": ["true"]}},
 "cloudProvider": {"plugin": "local", "options": {}}}
JSON
cat >"$p/.env" <<'ENV'
# a comment line

export A=plain value # a comment after the value
B = 'single $HOME # no comment \n no escape'
  C="line1\nq\"x\" \\ end" # comment
ALREADY=from-dotenv
KEYNAME=A
D=x#y
E="two
lines"
ENV
ALREADY=from-environment "$hypertest" -C "$p" deploy >"$tmp/deploy" 2>&1 ||
	{ cat "$tmp/deploy"; fail "deploy with a .env"; }
python3 - "$p/.hypertest/bucket/hypertest.manifest.json" <<'PY' || fail "the values of .env"
import json, sys
ids = [c["id"] for c in json.load(open(sys.argv[1]))["invokePayloadContexts"]]
want = ["plain value", "single $HOME # no comment \\n no escape", "line1", 'q"x" \\ end',
        "from-environment", "x#y", "two", "lines"]
assert ids == want, ids
PY
grep -q "plain value\|from-dotenv" "$tmp/deploy" && { cat "$tmp/deploy"; fail "a value of .env was printed"; }

# syntax errors: file and line, no value, nothing run
check_error() { # TEXT EXPECTED
	printf '%s' "$1" >"$p/.env"
	"$hypertest" -C "$p" deploy >"$tmp/bad" 2>&1 && { cat "$tmp/bad"; fail "deploy accepted: $1"; }
	grep -qF "$p/.env:$2" "$tmp/bad" || { cat "$tmp/bad"; fail "expected '.env:$2' for: $1"; }
	grep -q "secret-value" "$tmp/bad" && { cat "$tmp/bad"; fail "a value was printed"; }
	return 0
}
check_error 'A=1
B="secret-value
' '2: unterminated double quote (variable B)'
check_error "# x
S='secret-value' trailing
" "2: text after the closing quote (variable S)"
check_error 'A=1
no equals sign secret-value
' '2: expected KEY=VALUE (variable no)'
check_error '=secret-value
' '1: expected a variable name'
echo "dotenv ok"
