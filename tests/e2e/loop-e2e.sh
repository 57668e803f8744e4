#!/bin/sh
# The test engineer's loop through the CLI, with the `local` provider and
# the `command` runner: retries and flaky tests (with each attempt's
# artifacts), --last-failed and --rerun, --grep/--grep-invert/--only, and
# --max-failures.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-loop-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

# project DIR CONCURRENCY TESTS_JSON ENV_JSON: a project whose tests are
# the ids of TESTS_JSON, each run as "sh tests/t.sh ID".
project() {
	mkdir -p "$1/tests"
	cat >"$1/hypertest.config.json" <<JSON
{"concurrency": $2, "imageName": "e2e/loop",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests", "tests": $3,
   "run": ["sh", "tests/t.sh", "{id}"], "env": $4}},
 "cloudProvider": {"plugin": "local", "options": {"timeout": 20}}}
JSON
}
# report_html PROJECT: the run's HTML report (its DOM with chromium when there is one)
report_html() {
	run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$1/hypertest.results.json")
	[ -f "$1/.hypertest/reports/$run/index.html" ] || fail "no report for $1"
	if [ -n "$chromium" ]; then
		HOME=$tmp timeout 120 "$chromium" --headless --disable-gpu --no-sandbox \
			--no-first-run --disable-extensions --user-data-dir="$tmp/chrome" \
			--proxy-server=127.0.0.1:9 --proxy-bypass-list='<-loopback>' \
			--virtual-time-budget=5000 --dump-dom "file://$1/.hypertest/reports/$run/index.html" \
			>"$tmp/dom.html" 2>"$tmp/chrome.err" || { cat "$tmp/chrome.err"; fail "chromium --dump-dom"; }
	else
		cp "$1/.hypertest/reports/$run/index.html" "$tmp/dom.html"
	fi
}
chromium=$(command -v chromium || command -v chromium-browser || true)
deploy() { "$hypertest" -C "$1" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy $1"; }; }

# ---- retries: a flaky test passes on its second attempt ------------------------------
f=$tmp/flaky
project "$f" 10 '["flaky", "pass", "broken"]' "{\"STATE\": \"$tmp/state\"}"
mkdir -p "$tmp/state"
cat >"$f/tests/t.sh" <<'SH'
# attempt counter outside the sandbox, in $STATE
n=$(cat "$STATE/$1" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >"$STATE/$1"
echo "attempt $n of $1"
case $1 in
flaky) [ $n -ge 2 ] || { echo "first attempt fails" >&2; exit 1; } ;;
broken) echo "always broken" >&2; exit 1 ;;
esac
exit 0
SH
deploy "$f"
"$hypertest" -C "$f" invoke >"$tmp/f0.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/f0.out"; fail "without retries the flaky test must fail the run"; }
python3 - "$f/hypertest.results.json" <<'PY' || fail "no retries"
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["context"]["id"]: t for t in d["testResults"]}
assert by["flaky"]["status"] == "failed", by["flaky"]
assert len(by["flaky"]["attempts"]) == 1 and "flaky" not in by["flaky"], by["flaky"]
PY
rm -f "$tmp/state"/*
"$hypertest" -C "$f" invoke --retries 2 >"$tmp/f1.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/f1.out"; fail "a broken test must still fail the run"; }
grep -q "1 flaky" "$tmp/f1.out" || { cat "$tmp/f1.out"; fail "the summary does not count the flaky test"; }
python3 - "$f" <<'PY' || fail "retries"
import json, sys, os
f = sys.argv[1]
d = json.load(open(f + "/hypertest.results.json"))
by = {t["context"]["id"]: t for t in d["testResults"]}
fl = by["flaky"]
assert fl["status"] == "success" and fl["flaky"] is True, fl
assert [a["status"] for a in fl["attempts"]] == ["failed", "success"], fl["attempts"]
assert "first attempt fails" in fl["attempts"][0]["error"]["message"], fl["attempts"][0]
for a in fl["attempts"]:
    assert a["startDate"] <= a["endDate"] and a["duration"] >= 0, a
assert [a["status"] for a in by["broken"]["attempts"]] == ["failed"] * 3, by["broken"]
assert by["broken"]["status"] == "failed" and "flaky" not in by["broken"]
assert len(by["pass"]["attempts"]) == 1 and "flaky" not in by["pass"]
assert d["tests"]["flaky"] == 1 and d["tests"]["success"] == 2 and d["tests"]["failed"] == 1, d["tests"]
# both attempts' artifacts: {runId}/{testId}/ and {runId}/{testId}/attempt-2/
base = "%s/.hypertest/bucket/%s/%s" % (f, d["runId"], fl["testId"])
first = open(base + "/stdout.log").read()
second = open(base + "/attempt-2/stdout.log").read()
assert "attempt 1 of flaky" in first and "attempt 2 of flaky" in second, (first, second)
assert os.path.exists("%s/.hypertest/bucket/%s/%s/attempt-3" % (f, d["runId"], by["broken"]["testId"]))
print("retries ok")
PY
# the report: the flaky mark, the count and both attempts; JUnit valid with <flakyFailure>
report_html "$f"
python3 - "$tmp/dom.html" <<'PY' || fail "the report of the flaky run"
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.marks = 0; self.attempts = []; self.flaky = None; self.msg = ""
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = (a.get("class") or "").split()
        self.stack.append((tag, cls, a.get("id")))
        if "flaky-mark" in cls: self.marks += 1
        if tag == "li" and "attempt" in cls: self.attempts.append(cls)
    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag: pass
    def handle_data(self, d):
        if any(i == "count-flaky" for _, _, i in self.stack): self.flaky = d
        if any("attempt-message" in c for _, c, _ in self.stack): self.msg += d
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read())
assert p.marks == 1, p.marks
assert p.flaky == "1", p.flaky
# the flaky test's two attempts, the broken test's three
assert sorted(map(tuple, p.attempts)) == sorted([("attempt", "failed"), ("attempt", "passed")] + [("attempt", "failed")] * 3), p.attempts
assert "first attempt fails" in p.msg and "always broken" in p.msg, p.msg
print("flaky report ok")
PY
if command -v xmllint >/dev/null 2>&1; then
	"$hypertest" -C "$f" --quiet report --junit j.xml >"$tmp/fj.out" 2>&1 || { cat "$tmp/fj.out"; fail "report --junit"; }
	xmllint --noout --schema "$tests_src/e2e/junit/junit-10.xsd" "$f/j.xml" 2>"$tmp/xmllint.err" ||
		{ cat "$tmp/xmllint.err"; fail "the JUnit of the flaky run does not validate"; }
	python3 - "$f/j.xml" <<'PY' || fail "JUnit of the flaky run"
import sys, xml.etree.ElementTree as ET
cases = {c.get("name"): c for c in ET.parse(sys.argv[1]).iter("testcase")}
fl = [c for n, c in cases.items() if "flaky" in n]
assert len(fl) == 1, list(cases)
ff = fl[0].findall("flakyFailure")
assert len(ff) == 1 and "first attempt fails" in ff[0].text and fl[0].find("failure") is None, ET.tostring(fl[0])
br = [c for n, c in cases.items() if "broken" in n][0]
assert len(br.findall("rerunFailure")) == 2 and br.find("failure") is not None, ET.tostring(br)
print("flaky junit ok")
PY
fi
# flaky alone: exit 0, or 1 with --fail-on-flaky; the config key does the same as --retries
rm -f "$tmp/state"/*
"$hypertest" -C "$f" --set retries=1 invoke --only flaky --only pass >"$tmp/f2.out" 2>&1 ||
	{ cat "$tmp/f2.out"; fail "a flaky test that passed must not fail the run"; }
rm -f "$tmp/state"/*
"$hypertest" -C "$f" invoke --retries 1 --fail-on-flaky --only flaky >"$tmp/f3.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/f3.out"; fail "--fail-on-flaky"; }
"$hypertest" -C "$f" --set retries=-1 invoke >"$tmp/f4.out" 2>&1
[ $? -ne 0 ] && grep -q "retries" "$tmp/f4.out" || { cat "$tmp/f4.out"; fail "retries -1 accepted"; }

# ---- --last-failed and --rerun: 200 tests, 7 failures --------------------------------
l=$tmp/last
ids=$(python3 -c 'import json; print(json.dumps(["t%03d" % i for i in range(200)]))')
project "$l" 50 "$ids" "{\"STATE\": \"$tmp/lstate\"}"
mkdir -p "$tmp/lstate"
printf '[ -e "$STATE/fail-$1" ] && { echo "$1 fails" >&2; exit 1; }\necho "$1" >>"$STATE/ran"\nexit 0\n' >"$l/tests/t.sh"
failing="t003 t017 t042 t099 t100 t150 t199"
for t in $failing; do : >"$tmp/lstate/fail-$t"; done
deploy "$l"
cp -r "$l" "$tmp/other" && rm -rf "$tmp/other/.hypertest" "$tmp/other/hypertest.results.json"
"$hypertest" -C "$l" --quiet invoke >"$tmp/l1.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/l1.out"; fail "200 tests with 7 failures"; }
cp "$l/hypertest.results.json" "$tmp/ci-results.json"
cp "$l/.hypertest/bucket/hypertest.manifest.json" "$tmp/manifest.before"
selected() { # RESULTS: the ids run, sorted, space separated
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(sorted(t["context"]["id"] for t in d["testResults"])))' "$1"
}
"$hypertest" -C "$l" invoke --last-failed >"$tmp/l2.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/l2.out"; fail "--last-failed with failures still there"; }
[ "$(selected "$l/hypertest.results.json")" = "$failing" ] ||
	fail "--last-failed ran $(selected "$l/hypertest.results.json")"
grep -q "selected 7 of 200 tests" "$tmp/l2.out" || { cat "$tmp/l2.out"; fail "the selection is not shown"; }
cmp -s "$tmp/manifest.before" "$l/.hypertest/bucket/hypertest.manifest.json" || fail "the manifest changed"
rm -f "$tmp/lstate"/fail-*
: >"$tmp/lstate/ran"
"$hypertest" -C "$l" --quiet invoke --last-failed >"$tmp/l3.out" 2>&1 || { cat "$tmp/l3.out"; fail "--last-failed after the fix"; }
[ "$(sort "$tmp/lstate/ran" | tr '\n' ' ')" = "$failing " ] || fail "ran $(cat "$tmp/lstate/ran")"
"$hypertest" -C "$l" invoke --last-failed >"$tmp/l4.out" 2>&1 || { cat "$tmp/l4.out"; fail "nothing to rerun must exit 0"; }
grep -q "Nothing to rerun" "$tmp/l4.out" || { cat "$tmp/l4.out"; fail "no 'nothing to rerun' message"; }
# another checkout, a results file from elsewhere (CI)
deploy "$tmp/other"
for t in $failing; do : >"$tmp/lstate/fail-$t"; done
: >"$tmp/lstate/ran"
"$hypertest" -C "$tmp/other" --quiet invoke --rerun "$tmp/ci-results.json" >"$tmp/l5.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/l5.out"; fail "--rerun"; }
[ "$(selected "$tmp/other/hypertest.results.json")" = "$failing" ] || fail "--rerun ran $(selected "$tmp/other/hypertest.results.json")"
"$hypertest" -C "$tmp/other" --quiet invoke --rerun "$tmp/nonexistent.json" >"$tmp/l6.out" 2>&1
[ $? -eq 1 ] && grep -q "nonexistent.json" "$tmp/l6.out" || { cat "$tmp/l6.out"; fail "--rerun of a missing file"; }

# ---- --grep, --grep-invert, --only: metacharacters, UTF-8, spaces --------------------
g=$tmp/grep
project "$g" 10 '["a.b (c) [x]+", "ünïcødé ✓ 测试", "plain test", "star*test", "a b"]' '{}'
printf 'exit 0\n' >"$g/tests/t.sh"
deploy "$g"
grep_run() { # EXPECTED ARGS...: the ids run, sorted, joined by |
	want=$1; shift
	"$hypertest" -C "$g" --quiet invoke "$@" >"$tmp/g.out" 2>&1 || { cat "$tmp/g.out"; fail "invoke $*"; }
	got=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("|".join(sorted(t["context"]["id"] for t in d["testResults"])))' "$g/hypertest.results.json")
	[ "$got" = "$want" ] || fail "invoke $*: ran '$got', expected '$want'"
}
grep_run 'a.b (c) [x]+' --grep '^a\.b \(c\) \[x\]\+$'
grep_run 'ünïcødé ✓ 测试' --grep 'cødé ✓ 测'
grep_run 'a b|plain test' --grep ' ' --grep-invert '[(✓]'
grep_run 'star*test' --grep 'r\*t'
grep_run 'a b|plain test' --only 'plain test' --only 'a b'
"$hypertest" -C "$g" --quiet invoke --grep 'no such (test)' >"$tmp/g1.out" 2>&1
[ $? -eq 1 ] && grep -qF "no such (test)" "$tmp/g1.out" || { cat "$tmp/g1.out"; fail "a grep matching nothing"; }
"$hypertest" -C "$g" --quiet invoke --grep 'a(b' >"$tmp/g2.out" 2>&1
[ $? -eq 1 ] && grep -qF "'a(b'" "$tmp/g2.out" && grep -q "regular expression" "$tmp/g2.out" || { cat "$tmp/g2.out"; fail "an invalid regex"; }
"$hypertest" -C "$g" --quiet invoke --only 'nobody' >"$tmp/g3.out" 2>&1
[ $? -eq 1 ] && grep -qF "'nobody'" "$tmp/g3.out" || { cat "$tmp/g3.out"; fail "--only naming no test"; }

# ---- --max-failures 3: 500 tests at concurrency 10, all failing ----------------------
m=$tmp/maxf
ids=$(python3 -c 'import json; print(json.dumps(["m%03d" % i for i in range(500)]))')
project "$m" 10 "$ids" '{}'
printf 'echo "$1 fails" >&2\nexit 1\n' >"$m/tests/t.sh"
deploy "$m"
"$hypertest" -C "$m" --quiet invoke --max-failures 3 >"$tmp/m1.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/m1.out"; fail "--max-failures must exit 1"; }
grep -q "stopped after 3 failures" "$tmp/m1.out" || { cat "$tmp/m1.out"; fail "the stop is not reported"; }
python3 - "$m/hypertest.results.json" <<'PY' || fail "max-failures"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["testResults"]
failed = [t for t in r if t["status"] == "failed"]
skipped = [t for t in r if t["status"] == "skipped"]
assert len(r) == 500 and 3 <= len(failed) <= 13, (len(failed), len(skipped))
assert len(failed) + len(skipped) == 500
assert all(t["message"] == "not run: stopped after 3 failures" and t["attempts"] == [] for t in skipped)
assert d["stopped"]["maxFailures"] == 3, d.get("stopped")
assert d["tests"]["skipped"] == len(skipped)
print("max-failures ok: %d started" % len(failed))
PY
report_html "$m"
python3 - "$tmp/dom.html" <<'PY' || fail "the report of a stopped run"
import sys, re
d = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'<p class="?stopped"? id="?stopped"?>(.*?)</p>', d, re.S)
assert m and "stopped after 3 failures" in m.group(1), m
print("stopped report ok")
PY
"$hypertest" -C "$m" --quiet invoke --fail-fast --grep 'm0[0-4][0-9]' >"$tmp/m2.out" 2>&1
[ $? -eq 1 ] || fail "--fail-fast"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["stopped"]["maxFailures"] == 1 and d["tests"]["total"] == 50 and d["tests"]["skipped"] >= 40' "$m/hypertest.results.json" || fail "--fail-fast"
# the skipped (not run) tests count for --last-failed
"$hypertest" -C "$m" --quiet invoke --last-failed --grep 'm00[0-4]' >"$tmp/m3.out" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tests"]["total"] == 5, d["tests"]' "$m/hypertest.results.json" || fail "--last-failed after a stop"
# ---- cost: the local provider reports CPU time and peak memory per test ----------------
c=$tmp/cost
project "$c" 4 '["spin1", "spin2", "spin3"]' '{}'
printf 'i=0; while [ $i -lt 20000 ]; do i=$((i + 1)); done\n' >"$c/tests/t.sh"
deploy "$c"
"$hypertest" -C "$c" invoke >"$tmp/c1.out" 2>&1 || { cat "$tmp/c1.out"; fail "cost run"; }
grep -q "CPU-seconds" "$tmp/c1.out" || { cat "$tmp/c1.out"; fail "the cost is not printed"; }
python3 - "$c/hypertest.results.json" <<'PY' || fail "local cost"
import json, sys
d = json.load(open(sys.argv[1]))
tests = d["testResults"]
for t in tests:
    assert t["cost"]["cpuMs"] > 0 and t["cost"]["maxRssKB"] > 0, t.get("cost")
assert d["cost"]["invocations"] == 3, d["cost"]
assert abs(d["cost"]["cpuMs"] - sum(t["cost"]["cpuMs"] for t in tests)) < 1e-6, d["cost"]
assert d["cost"]["maxRssKB"] == max(t["cost"]["maxRssKB"] for t in tests), d["cost"]
print("local cost ok: %.0f CPU ms" % d["cost"]["cpuMs"])
PY
report_html "$c"
python3 - "$tmp/dom.html" <<'PY' || fail "the cost in the report"
import sys, re
d = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r'<p class="?meta"? id="?run-cost"?>(.*?)</p>', d, re.S)
assert m and "3 invocations" in m.group(1) and "CPU-seconds" in m.group(1) and "peak memory" in m.group(1), m
per = re.findall(r'<small class="?test-cost"?>(.*?)</small>', d, re.S)
assert len(per) == 3 and all("CPU-seconds" in x and "MB" in x for x in per), per
print("cost report ok")
PY
# the configuration's prices: 3 invocations at $0.001 each
"$hypertest" -C "$c" --quiet --set 'cost={"pricePerRequest": 0.001}' invoke >"$tmp/c2.out" 2>&1 || { cat "$tmp/c2.out"; fail "cost with a price"; }
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["cost"]; assert abs(c["dollars"] - 0.003) < 1e-12 and c["pricePerRequest"] == 0.001, c' "$c/hypertest.results.json" || fail "the configured price"
"$hypertest" -C "$c" --quiet --set 'cost={"pricePerGBSecond": -1}' invoke >"$tmp/c3.out" 2>&1
[ $? -ne 0 ] && grep -q "cost.pricePerGBSecond" "$tmp/c3.out" || { cat "$tmp/c3.out"; fail "a negative price accepted"; }
echo "loop ok"
exit 0
