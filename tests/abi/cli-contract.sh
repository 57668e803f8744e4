#!/bin/sh
# cli-contract.sh - what scripts and CI jobs rely on in the hypertest
# command: its exit statuses (0, 1, 2: hypertest(1), EXIT STATUS) and the
# --json events, validated against the JSON Schema the package installs
# (cli/hypertest-events.schema.json), on the real output of deploy, invoke
# and doctor with the local provider and the command runner.
# Exit 0 pass, 1 fail, 77 skip (no python3-jsonschema).
set -u
top_build=${HT_TOP_BUILDDIR:?}
top_src=${HT_TOP_SRCDIR:?}
hypertest=$top_build/cli/hypertest
schema=$top_src/cli/hypertest-events.schema.json
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 not found"; exit 77; }
python3 -c 'import jsonschema' 2>/dev/null ||
	{ echo "SKIP: python3-jsonschema not installed (Debian package python3-jsonschema)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ht-cli-contract-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
. "${HT_TESTS_SRCDIR:?}/e2e/preamble.sh"
unset NO_COLOR

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
# status EXPECTED WHAT COMMAND...: run it, its output in $tmp/out and $tmp/err
status() {
	want=$1 what=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$what: exit status $got, expected $want"
		sed 's/^/    stderr: /' "$tmp/err" | head -20
		return 1
	fi
	return 0
}
# validate FILE WHAT [EVENT-TYPE...]: every line of FILE is an event valid
# under the schema, and each named type occurs
validate() {
	python3 - "$schema" "$@" <<'PY' || fail "$2: events do not follow the schema"
import json, sys
import jsonschema
schema_path, path, what, wanted = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
schema = json.load(open(schema_path))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
seen, bad = set(), 0
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    try:
        ev = json.loads(line)
    except ValueError as e:
        print("%s:%d: not JSON (%s): %r" % (what, n, e, line[:200]))
        bad += 1
        continue
    for err in validator.iter_errors(ev):
        print("%s:%d: %s: %s" % (what, n, "/".join(map(str, err.absolute_path)) or "(event)", err.message))
        bad += 1
    seen.add(ev.get("event"))
for w in wanted:
    if w not in seen:
        print("%s: no '%s' event among %s" % (what, w, sorted(map(str, seen))))
        bad += 1
sys.exit(1 if bad else 0)
PY
}

# ---- the schema rejects what breaks the contract -----------------------------
cat >"$tmp/bad.jsonl" <<'EOF2'
{"event": "test_end", "runId": "x", "testId": "y", "index": 0, "status": "passed", "name": "a", "filePath": "a", "duration": 1, "done": 1, "total": 1}
{"event": "run_end", "runId": "0b4f36b4-5f0e-4c4c-9d6e-1f0a3e5a7c21", "total": 1}
{"event": "step_error", "step": "push", "duration": 3, "message": "", "code": 0}
{"runId": "0b4f36b4-5f0e-4c4c-9d6e-1f0a3e5a7c21"}
EOF2
python3 - "$schema" "$tmp/bad.jsonl" <<'PY' || fail "the schema accepts events that break the contract"
import json, sys
import jsonschema
v = jsonschema.Draft7Validator(json.load(open(sys.argv[1])))
lines = open(sys.argv[2]).read().splitlines()
accepted = [l for l in lines if v.is_valid(json.loads(l))]
for l in accepted:
    print("accepted: " + l)
# an event of a later version is accepted (readers ignore it)
assert v.is_valid({"event": "from_the_future", "whatever": [1]}), "unknown event refused"
sys.exit(1 if accepted else 0)
PY

# ---- a small project: two tests pass, one fails, one is skipped ----------------
p=$tmp/project
mkdir -p "$p/tests"
printf 'echo ok\n' >"$p/tests/pass1.sh"
printf 'echo ok\n' >"$p/tests/pass2.sh"
printf 'echo "expected 4, got 5" >&2\nexit 1\n' >"$p/tests/fail.sh"
printf 'exit 77\n' >"$p/tests/skip.sh"
cat >"$p/hypertest.config.json" <<'JSON'
{"concurrency": 4, "imageName": "contract/local", "driftDetectionPolicy": "warning",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"timeout": 30}}}
JSON

# deploy: events on stdout, exit 0
if status 0 "deploy --json" "$hypertest" -C "$p" deploy --json; then
	cp "$tmp/out" "$tmp/deploy.jsonl"
	validate "$tmp/deploy.jsonl" "deploy --json" step_start step_end
	[ -s "$tmp/err" ] && fail "deploy --json wrote to stderr: $(head -3 "$tmp/err")"
fi

# invoke with a failing test: results on stdout, events on stderr, exit 1
if status 1 "invoke --json with a failed test" "$hypertest" -C "$p" invoke --json; then
	cp "$tmp/err" "$tmp/invoke.jsonl"
	validate "$tmp/invoke.jsonl" "invoke --json" run_start test_start test_end run_end report
	python3 - "$tmp/out" "$tmp/invoke.jsonl" <<'PY' || fail "invoke --json: results and events disagree"
import json, sys
results = json.load(open(sys.argv[1]))
events = [json.loads(l) for l in open(sys.argv[2])]
assert results["tests"] == {"total": 4, "success": 2, "skipped": 1, "failed": 1}, results["tests"]
end = [e for e in events if e["event"] == "run_end"][-1]
assert (end["runId"], end["passed"], end["failed"], end["skipped"]) == \
    (results["runId"], 2, 1, 1), end
ends = [e for e in events if e["event"] == "test_end"]
assert sorted(e["status"] for e in ends) == [0, 0, 1, 2], ends
assert all("message" in e for e in ends if e["status"] == 1), ends
# names on the test_start events too (the command runner's contexts have an id)
starts = [e for e in events if e["event"] == "test_start"]
assert len(starts) == 4 and all(e.get("name", "").startswith("tests/") for e in starts), starts
rep = [e for e in events if e["event"] == "report"]
assert [e["step"] for e in rep] == ["html"] and rep[0]["runId"] == results["runId"], rep
PY
	# report --json of that run: the html and junit events on stdout
	run_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$tmp/out")
	if status 0 "report --json" "$hypertest" -C "$p" report "$run_id" --junit "$tmp/j.xml" --json; then
		cp "$tmp/out" "$tmp/report.jsonl" && validate "$tmp/report.jsonl" "report --json" report
		grep -q '"step":"junit"' "$tmp/report.jsonl" || fail "report --json: no junit event"
	fi
fi

# drift (a test changed since deploy, policy "warning"): a log event
printf 'echo changed\n' >"$p/tests/pass2.sh"
if status 1 "invoke --json after drift" "$hypertest" -C "$p" invoke --json; then
	cp "$tmp/err" "$tmp/drift.jsonl"
	validate "$tmp/drift.jsonl" "invoke --json after drift" log run_end
fi

# every test passes: exit 0
rm "$p/tests/fail.sh"
status 0 "deploy of passing tests" "$hypertest" -C "$p" deploy --quiet
status 0 "invoke --json, every test passed" "$hypertest" -C "$p" invoke --json &&
	validate "$tmp/err" "invoke --json, every test passed" run_end

# doctor: events on stdout
status 0 "doctor --json" "$hypertest" -C "$p" doctor --json &&
	cp "$tmp/out" "$tmp/doctor.jsonl" && validate "$tmp/doctor.jsonl" "doctor --json" doctor_check

# a deploy step that fails: step_error, exit 1
b=$tmp/broken
mkdir -p "$b/tests"
printf 'echo ok\n' >"$b/tests/a.sh"
cat >"$b/hypertest.config.json" <<'JSON'
{"imageName": "contract/broken",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["sh", "-c", "echo cannot list >&2; exit 3"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {}}}
JSON
if status 1 "deploy --json whose step fails" "$hypertest" -C "$b" deploy --json; then
	cp "$tmp/out" "$tmp/broken.jsonl"
	validate "$tmp/broken.jsonl" "deploy --json whose step fails" step_error
	grep -q '^hypertest: ' "$tmp/err" || fail "a failed deploy names the reason on stderr"
fi

# a configuration that does not parse: exit 1
printf '{"imageName": \n' >"$b/hypertest.config.json"
status 1 "invoke with a broken configuration" "$hypertest" -C "$b" invoke --json

# usage errors: exit 2
status 2 "an unknown command" "$hypertest" frobnicate
status 2 "an unknown option" "$hypertest" invoke --no-such-option
status 2 "--json with init" "$hypertest" -C "$tmp" init --json
status 2 "--quiet with --verbose" "$hypertest" -C "$p" invoke --quiet --verbose

[ $failures -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "cli contract: ok"
exit 0
