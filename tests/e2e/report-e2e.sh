#!/bin/sh
# The summary report through the CLI with the `local` provider and the
# `command` runner: the plain lines of invoke checked line by line, JUnit
# XML validated against the Jenkins JUnit schema (output holding control
# characters, "]]>", quotes and invalid UTF-8), the HTML report opened in
# headless Chromium with the network off (rows, failure blocks with their
# whole messages, the filter, one timeline bar per test; a screenshot is
# left in the build tree), `hypertest report` rebuilding the report of an
# earlier run from the bucket alone, and the switches that turn it off.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-report-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
command -v xmllint >/dev/null 2>&1 || { echo "xmllint not found (libxml2-utils)"; exit 77; }


p=$tmp/project
mkdir -p "$p/tests"
printf 'echo all good\n' >"$p/tests/pass.sh"
printf 'echo "line one of stdout"\necho "expected 4, got 5" >&2\necho "Expected: 4" >&2\necho "Received: 5" >&2\nexit 1\n' >"$p/tests/fail.sh"
printf 'echo "not on this machine" >&2\nexit 77\n' >"$p/tests/skip.sh"
# control characters, "]]>", quotes, invalid UTF-8 and an encoded surrogate
printf 'printf "bell\\007 esc\\033[31m ]]> \\"q\\" '"'"'s'"'"' <tag> & bad:\\377\\376 sur:\\355\\240\\200 end\\n"\nprintf "nasty\\001 ]]> \\377 \\"quoted\\"\\n" >&2\nexit 1\n' >"$p/tests/nasty.sh"
printf 'echo "<script>alert(1)</script>" >&2\nexit 1\n' >"$p/tests/html-<b>&\"q\".sh"
cat >"$p/hypertest.config.json" <<'JSON'
{"concurrency": 3, "imageName": "e2e/report",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"timeout": 20, "bucketDir": "bucket"}}}
JSON
ntests=5
"$hypertest" -C "$p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
"$hypertest" -C "$p" invoke --junit out/junit.xml >"$tmp/invoke.out" 2>"$tmp/invoke.err"
[ $? -eq 1 ] || { cat "$tmp/invoke.out" "$tmp/invoke.err"; fail "invoke with failures must exit 1"; }
run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$p/hypertest.results.json")

# ---- plain lines, on stdout, line by line -------------------------------------
python3 - "$tmp/invoke.out" "$run" "$p/hypertest.results.json" "$ntests" <<'PY' || { cat "$tmp/invoke.out"; fail "plain lines"; }
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().split("\n")
run, n = sys.argv[2], int(sys.argv[4])
res = {t["testId"]: t for t in json.load(open(sys.argv[3]))["testResults"]}
assert lines[0] == f"run {run} started: {n} tests, 3 at a time", lines[0]
started, ended = set(), {}
i = 1
while i < len(lines) and lines[i]:
    l = lines[i]
    m = re.fullmatch(r"test started #(\d+) (.*) \[([0-9a-f-]{36})\]", l)
    if m:
        started.add(m.group(3)); i += 1; continue
    m = re.fullmatch(r"test (passed|failed|skipped) (.*) \[([0-9a-f-]{36})\] (\d+)ms(: .*)?", l)
    if m:
        tid = m.group(3)
        t = res[tid]
        assert m.group(2) == t["name"], (l, t["name"])
        ended[tid] = m.group(1)
        i += 1
        if m.group(1) == "failed":
            msg = t["error"]["message"].split("\n")
            for k, want in enumerate(msg):
                assert lines[i + k].startswith("    "), (lines[i + k], want)
            i += len(msg)
        continue
    if l.startswith("run done: "):
        assert f"{n} tests, 1 passed, 3 failed, 1 skipped" in l, l
        assert "results: " in l
        i += 1; continue
    if l.startswith("junit: ") or l.startswith("report: ") or l.startswith("artifacts: "):
        i += 1; continue
    raise AssertionError("unexpected line: %r" % l)
assert started == set(res) == set(ended), (started, ended)
tail = [l for l in lines if l]
assert tail[-3].startswith("junit: ") and tail[-3].endswith("/out/junit.xml"), tail[-3]
assert tail[-2].startswith("report: ") and f"/.hypertest/reports/{run}/index.html" in tail[-2], tail[-2]
assert f"/bucket/{run}/report/index.html)" in tail[-2], tail[-2]
assert tail[-1].startswith("artifacts: ") and tail[-1].endswith(f"/bucket/{run}"), tail[-1]
PY

# ---- results: the extra fields -----------------------------------------------------
python3 - "$p/hypertest.results.json" <<'PY' || fail "extra fields of the results"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["concurrency"] == 3
for t in d["testResults"]:
    a = t["artifacts"]
    assert a["prefix"] == f'{d["runId"]}/{t["testId"]}/', a
    assert a["stdout"] == a["prefix"] + "stdout.log" and a["stderr"] == a["prefix"] + "stderr.log"
    assert t["endTime"] >= t["startTime"] > 0
    assert "expectedDuration" not in t  # first run: no history yet
PY

# ---- JUnit XML ---------------------------------------------------------------------
xsd="$tests_src/e2e/junit/junit-10.xsd"
xmllint --noout --schema "$xsd" "$p/out/junit.xml" 2>"$tmp/xmllint.err" ||
	{ cat "$tmp/xmllint.err"; fail "JUnit XML does not validate"; }
python3 - "$p/out/junit.xml" "$p/hypertest.results.json" <<'PY' || fail "JUnit content"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
res = json.load(open(sys.argv[2]))
suites = root.findall("testsuite")
assert len(suites) == 1
s = suites[0]
assert (s.get("tests"), s.get("failures"), s.get("skipped")) == ("5", "3", "1"), s.attrib
cases = {c.get("name"): c for c in s.findall("testcase")}
assert len(cases) == 5
f = cases["tests/fail.sh"]
assert f.get("classname") == "tests/fail.sh"
assert f.find("failure").get("message") == "expected 4, got 5"
assert "Received: 5" in f.find("failure").text
assert f.find("system-out").text == "line one of stdout\n"
assert cases["tests/skip.sh"].find("skipped") is not None
n = cases["tests/nasty.sh"]
out = n.find("system-out").text
assert "]]>" in out and '"q"' in out and "'s'" in out and "<tag> &" in out, out
assert "\ufffd" in out and "\x07" not in out and "\x1b" not in out, repr(out)
assert "\ufffd" in n.find("failure").text
t = float(cases["tests/pass.sh"].get("time"))
assert 0 <= t < 20
PY

# ---- the HTML report in Chromium ------------------------------------------------------
html="$p/.hypertest/reports/$run/index.html"
[ -f "$html" ] || fail "no local report"
[ -f "$p/bucket/$run/report/index.html" ] || fail "no report in the bucket"
grep -q '<script>alert(1)</script>' "$html" && fail "unescaped test output in the HTML"
grep -q 'src="http\|href="http\|@import\|url(' "$html" && fail "the report refers to the network"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chromium" ]; then
	dump() { # URL OUT
		HOME=$tmp timeout 120 "$chromium" --headless --disable-gpu --no-sandbox \
			--no-first-run --disable-extensions --user-data-dir="$tmp/chrome" \
			--proxy-server=127.0.0.1:9 --proxy-bypass-list='<-loopback>' \
			--virtual-time-budget=5000 --dump-dom "$1" >"$2" 2>"$tmp/chrome.err" ||
			{ cat "$tmp/chrome.err"; fail "chromium --dump-dom $1"; }
	}
	dump "file://$p/bucket/$run/report/index.html" "$tmp/dom.html"
	dump "file://$p/bucket/$run/report/index.html#q=nasty&status=failed" "$tmp/dom-filtered.html"
	python3 - "$tmp/dom.html" "$tmp/dom-filtered.html" "$p/hypertest.results.json" <<'PY' || fail "report DOM"
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.rows = []; s.bars = 0; s.failures = 0; s.stack = []; s.text = {}
        s.cur = None
    def handle_starttag(s, tag, a):
        a = dict(a)
        if tag == "tr" and "data-status" in a:
            s.rows.append(a)
        if tag == "rect" and "bar" in (a.get("class") or "").split():
            s.bars += 1
        if tag == "article" and a.get("class") == "failure":
            s.failures += 1; s.cur = ""
        if tag == "pre" and a.get("class") == "message":
            s.cur_msg = True
    def handle_data(s, d):
        if s.cur is not None:
            s.cur += d
    def handle_endtag(s, tag):
        if tag == "article" and s.cur is not None:
            s.text[s.failures] = s.cur; s.cur = None
res = json.load(open(sys.argv[3]))
n = len(res["testResults"])
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read())
assert len(p.rows) == n, len(p.rows)
assert p.bars == n, ("timeline bars", p.bars)
assert p.failures == 3, p.failures
alltext = "\n".join(p.text.values())
for t in res["testResults"]:
    if t["status"] == "failed":
        for line in t["error"]["message"].split("\n"):
            clean = line.encode("utf-8", "replace").decode()
            if line.isprintable():
                assert line in alltext, line
assert "Expected: 4" in alltext and "Received: 5" in alltext
assert "line one of stdout" in alltext  # the stdout tail
assert [r["data-status"] for r in p.rows][:3] == ["failed"] * 3  # failures first
assert not any("hidden" in r for r in p.rows)
q = P(); q.feed(open(sys.argv[2], encoding="utf-8").read())
visible = [r for r in q.rows if "hidden" not in r]
assert len(visible) == 1 and "nasty" in visible[0]["data-text"], visible
PY
	HOME=$tmp timeout 120 "$chromium" --headless --disable-gpu --no-sandbox --no-first-run \
		--user-data-dir="$tmp/chrome" --proxy-server=127.0.0.1:9 --hide-scrollbars \
		--window-size=1280,1600 --virtual-time-budget=5000 \
		--screenshot="$tests_build/report-screenshot.png" \
		"file://$p/bucket/$run/report/index.html" >/dev/null 2>&1 ||
		fail "chromium --screenshot"
	[ -s "$tests_build/report-screenshot.png" ] || fail "no screenshot"
else
	echo "chromium not found: the DOM checks are skipped"
fi

# ---- hypertest report: an earlier run, from the bucket alone ------------------------
# a second run, so that the first is no longer the last
"$hypertest" -C "$p" --quiet invoke --no-report >/dev/null 2>&1
run2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$p/hypertest.results.json")
[ "$run2" != "$run" ] || fail "second run"
[ -e "$p/.hypertest/reports/$run2" ] && fail "--no-report still built a report"
[ -e "$p/bucket/$run2/report" ] && fail "--no-report still stored a report"
python3 - "$p/hypertest.results.json" <<'PY' || fail "expectedDuration from the history"
import json, sys
d = json.load(open(sys.argv[1]))
assert all(t["expectedDuration"] >= 0 for t in d["testResults"]), d
PY
# invoke --dry-run lists the tests in start order with their expected durations
"$hypertest" -C "$p" invoke --dry-run >"$tmp/dry.out" 2>&1 || { cat "$tmp/dry.out"; fail "dry run"; }
python3 - "$tmp/dry.out" "$p/hypertest.results.json" <<'PY' || { cat "$tmp/dry.out"; fail "dry run: the list"; }
import json, re, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("would start ")]
res = json.load(open(sys.argv[2]))["testResults"]
assert len(lines) == len(res), lines
got = []
for k, l in enumerate(lines):
    m = re.fullmatch(r"would start (\d+)/(\d+): (.*) \(expected (\d+)\.(\d{3}) s\)\n", l)
    assert m and int(m.group(1)) == k + 1 and int(m.group(2)) == len(res), l
    got.append((m.group(3), int(m.group(4)) * 1000 + int(m.group(5))))
assert {g[0] for g in got} == {t["context"]["id"] for t in res}
assert [g[1] for g in got] == sorted((g[1] for g in got), reverse=True), got  # longest first
PY
# another machine: a project holding nothing but the configuration and the bucket
o=$tmp/other
mkdir -p "$o"
cp "$p/hypertest.config.json" "$o/"
cp -r "$p/bucket" "$o/bucket"
rm -rf "$o/bucket/$run/report"
"$hypertest" -C "$o" report "$run" --junit j.xml >"$tmp/report.out" 2>&1 ||
	{ cat "$tmp/report.out"; fail "hypertest report RUN_ID"; }
[ -f "$o/bucket/$run/report/index.html" ] || fail "report RUN_ID: nothing in the bucket"
[ -f "$o/.hypertest/reports/$run/index.html" ] || fail "report RUN_ID: no local copy"
xmllint --noout --schema "$xsd" "$o/j.xml" 2>/dev/null || fail "report --junit: invalid XML"
grep -q "^report: $o/.hypertest/reports/$run/index.html" "$tmp/report.out" ||
	{ cat "$tmp/report.out"; fail "report: where it is"; }
grep -q 'Received: 5' "$o/.hypertest/reports/$run/index.html" || fail "report RUN_ID: failure text"
# the default: the run of the local results file
"$hypertest" -C "$p" report >"$tmp/report2.out" 2>&1 || { cat "$tmp/report2.out"; fail "report"; }
[ -f "$p/bucket/$run2/report/index.html" ] || fail "report: not the last run"
# errors: a run that does not exist, a run id that is not one, no local results
"$hypertest" -C "$o" report 00000000-0000-4000-8000-000000000000 >"$tmp/e1" 2>&1 && fail "missing run"
grep -q "no run '00000000-0000-4000-8000-000000000000' in the bucket of provider 'local'" "$tmp/e1" ||
	{ cat "$tmp/e1"; fail "missing run: message"; }
"$hypertest" -C "$o" report ../x >"$tmp/e2" 2>&1 && fail "bad run id"
grep -q "run id '../x'" "$tmp/e2" || { cat "$tmp/e2"; fail "bad run id: message"; }
rm -f "$o/hypertest.results.json"
"$hypertest" -C "$o" report >"$tmp/e3" 2>&1 && fail "no local results"
grep -q "name a RUN_ID" "$tmp/e3" || { cat "$tmp/e3"; fail "no local results: message"; }

# ---- "report": false ------------------------------------------------------------------
"$hypertest" -C "$p" --quiet --set report=false invoke >/dev/null 2>&1
run3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$p/hypertest.results.json")
[ -e "$p/bucket/$run3/report" ] && fail '"report": false still built a report'
"$hypertest" -C "$p" --set report=1 invoke >"$tmp/e4" 2>&1 && fail '"report": 1 accepted'
grep -q "report.*expected true or false" "$tmp/e4" || { cat "$tmp/e4"; fail '"report": message'; }
echo "ok"
