#!/bin/sh
# The live display of invoke in a pseudo-terminal (script(1)) of 30 rows
# and 100 columns, at 6 and at 2,000 tests with the local provider: the
# header with the run id and the concurrency, rows of finished tests
# (collapsed to the failures and the last few when they do not fit), the
# tests running and queued, done/total; never more lines than the screen
# has; then the failures block with each whole message and the first lines
# of its stack, and where the results, the report and the artifacts are.
# Then deploy's last line.
. "$(dirname "$0")/preamble.sh"
command -v script >/dev/null 2>&1 || { echo "script (util-linux) not found"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
tmp=$(mktemp -d /tmp/ht-report-tty-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# project DIR N: N tests; every 10th fails with a three-line message
project() {
	mkdir -p "$1"
	python3 - "$1" "$2" <<'PY'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
ids = ["t%04d" % i for i in range(n)]
cfg = {"concurrency": 50 if n > 100 else 4, "imageName": "e2e/tty",
       "testRunner": {"plugin": "command", "options": {"testDir": ".", "tests": ids,
           "run": ["sh", "-c", 'case "$1" in *0) printf "boom in %s\\nExpected: 1\\nReceived: 2\\n" "$1" >&2; exit 1;; *5) exit 77;; esac', "sh", "{id}"]}},
       "cloudProvider": {"plugin": "local", "options": {"timeout": 60}}}
json.dump(cfg, open(d + "/hypertest.config.json", "w"))
PY
}

# tty DIR OUT ARGS...: hypertest ARGS in a pseudo-terminal of 30x100
tty_run() {
	d=$1 out=$2
	shift 2
	TERM=xterm script -qfec "stty rows 30 cols 100; exec '$hypertest' -C '$d' $*" "$out" \
		>/dev/null 2>&1 </dev/null
}

check() { # TYPESCRIPT N
	python3 - "$1" "$2" <<'PY'
import re, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
n = int(sys.argv[2])
raw = raw.split("\n", 1)[1]  # script's own first line
ups = [int(m) for m in re.findall(r"\x1b\[(\d+)A", raw)]
assert ups, "never redrawn in place"
assert max(ups) <= 29, ("the display is taller than the screen", max(ups))
plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", raw).replace("\r", "")
m = re.search(r"Run ([0-9a-f-]{36})  %d tests, concurrency (\d+)" % n, plain)
assert m, "no header"
run = m.group(1)
assert re.search(r"running \d+(: t\d{4})?.*queued \d+", plain), "no running/queued line"
assert re.search(r"\d+ running  \d+/%d  \d+\.\d+s" % n, plain), "no done/total"
nf = len([i for i in range(n) if i % 10 == 0])
if n > 25:
    assert re.search(r"\.\.\. \d+ more finished \(\d+ failed in all\)", plain), "not collapsed"
# the end: the failures block, whole messages
tail = plain[plain.rindex("Run " + run + "\n"):]
assert "Failures (%d):" % nf in tail, tail[:500]
for i in range(0, n, 10):
    t = "t%04d" % i
    assert "boom in %s\n    Expected: 1\n    Received: 2\n" % t in tail, t
assert re.search(r"%d tests, \d+ passed, %d failed, \d+ skipped in" % (n, nf), tail)
assert "Results: " in tail and "report: " in tail and "artifacts: " in tail, tail[-600:]
draws = raw.count("\x1b[J")
print("%d tests: %d redraws, at most %d lines" % (n, draws, max(ups) + 1))
PY
}

project "$tmp/p6" 6
"$hypertest" -C "$tmp/p6" --quiet deploy >"$tmp/d6" 2>&1 || { cat "$tmp/d6"; fail "deploy 6"; }
tty_run "$tmp/p6" "$tmp/ts6" invoke
check "$tmp/ts6" 6 || { cat -v "$tmp/ts6" | tail -40; fail "live display at 6 tests"; }

project "$tmp/p2000" 2000
tty_run "$tmp/p2000" "$tmp/tsd" deploy
python3 - "$tmp/tsd" <<'PY' || { cat -v "$tmp/tsd"; fail "deploy's last line"; }
import re, sys
plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", open(sys.argv[1], errors="replace").read()).replace("\r", "")
assert re.search(r"deploy done in \d+\.\d+s\n", plain), plain[-300:]
PY
tty_run "$tmp/p2000" "$tmp/ts2000" invoke
check "$tmp/ts2000" 2000 || { cat -v "$tmp/ts2000" | tail -60; fail "live display at 2000 tests"; }
echo ok
