#!/bin/sh
# End to end through the CLI with the `local` provider and the `pytest` and
# `ctest` runners: a copy of runners/pytest-project and of
# runners/ctest-project (configured and built with CMake) are deployed and
# invoked as a user would; the script checks every test's result, the
# counts, the manifest against what pytest / ctest list themselves, and the
# artifacts in the bucket.
#
# Each part needs its tool: the pytest part `PYTHON -m pytest` (PYTHON is
# $HT_PYTHON, python3 or /usr/bin/python3, the first that has pytest), the
# ctest part cmake and ctest.  A part whose tool is missing is skipped, the
# other still runs; the script then exits 77 unless a part failed (1).
#
# The ctest part writes the configuration a user writes: a build folder
# inside the project, named relative to it.  The runner puts the build tree
# into the image at its absolute path (CTest build trees are not
# relocatable); the part invokes twice after one deploy, with
# driftDetectionPolicy "error", so a test run that writes into the deployed
# test directory (the build tree is inside it) fails the second invoke.
# The second invoke runs under isolation "bubblewrap" when bwrap can make a
# sandbox here: the build tree is then read-only, as in a Lambda image.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-runners-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

# config DIR RUNNER RUNNER_OPTIONS_JSON [ISOLATION]: hypertest.config.json of DIR
config() {
	python3 - "$1/hypertest.config.json" "$2" "$3" "${4:-none}" <<'PY'
import json, sys
json.dump({"concurrency": 4, "imageName": "e2e/" + sys.argv[2], "driftDetectionPolicy": "error",
           "testRunner": {"plugin": sys.argv[2], "options": json.loads(sys.argv[3])},
           "cloudProvider": {"plugin": "local", "options": {"timeout": 120, "isolation": sys.argv[4],
                                                         "functionDir": ".hypertest/function"}}},
          open(sys.argv[1], "w"), indent=1)
PY
}

# ---- pytest ---------------------------------------------------------------------------
pytest_part() (
	fail() { echo "FAIL: pytest: $*"; exit 1; }
	python=
	for cand in ${HT_PYTHON:-} python3 /usr/bin/python3; do
		if "$cand" -m pytest --version >/dev/null 2>&1; then python=$cand; break; fi
	done
	[ -n "$python" ] || { echo "pytest: no python3 with pytest (python3 -m pytest): skipped"; exit 77; }
	p=$tmp/pytest
	mkdir -p "$p"
	(cd "$tests_src/projects/pytest-project" &&
		tar --exclude=__pycache__ --exclude=.pytest_cache -cf - .) | (cd "$p" && tar -xf -) ||
		fail "cannot copy the pytest project"
	# the option only where the default interpreter has no pytest
	opts='{}'
	[ "$python" = python3 ] || opts=$(python3 -c 'import json,sys; print(json.dumps({"python": sys.argv[1]}))' "$python")
	config "$p" pytest "$opts"

	"$hypertest" -C "$p" --quiet deploy >"$tmp/pytest.deploy" 2>&1 || { cat "$tmp/pytest.deploy"; fail "deploy"; }
	"$hypertest" -C "$p" --json invoke >"$tmp/pytest.results" 2>"$tmp/pytest.events"
	rc=$?
	[ $rc -eq 1 ] || { tail -20 "$tmp/pytest.events"; fail "invoke with failing tests must exit 1 (got $rc)"; }
	# what pytest itself collects, after the run (nothing written into the project)
	(cd "$p" && PYTHONDONTWRITEBYTECODE=1 "$python" -m pytest -p no:cacheprovider --collect-only -q tests) \
		>"$tmp/pytest.collected" 2>&1 || { cat "$tmp/pytest.collected"; fail "pytest --collect-only"; }

	python3 - "$p" "$tmp/pytest.results" "$tmp/pytest.events" "$tmp/pytest.collected" <<'PY' ||
import json, os, sys
p, results, events, collected = sys.argv[1:5]
d = json.load(open(p + "/hypertest.results.json"))
assert json.load(open(results)) == d, "invoke --json printed other results than the file"
bucket = p + "/.hypertest/bucket"
assert json.load(open("%s/%s/hypertest.results.json" % (bucket, d["runId"]))) == d, "bucket results"

# the manifest lists exactly the node ids pytest lists, in its order
listed = []
for line in open(collected, encoding="utf-8").read().split("\n"):
    if not line.strip():
        break
    listed.append(line)
m = json.load(open(bucket + "/hypertest.manifest.json"))
ids = [c["nodeid"] for c in m["invokePayloadContexts"]]
assert ids == listed, (ids, listed)
assert m["imageDigest"].startswith("sha256:") and len(m["testDirHash"]) == 64, m
# every listed test ran once, under its own context
ran = sorted(t["context"]["nodeid"] for t in d["testResults"])
assert ran == sorted(listed), (ran, listed)

by = {t["name"]: t for t in d["testResults"]}
want = {
    "test_passes": "success",
    "test_fails": "failed",
    "test_skipped": "skipped",
    "test_xfail": "skipped",
    "test_xpass": "success",
    "test_xpass_strict": "failed",
    "test_artifacts_path": "success",
    "test_ids[a b]": "success",
    "test_ids[x[1]]": "success",
    "test_ids[k::v]": "success",
    "TestGroup > test_in_class": "success",
    "TestGroup > test_param_in_class[one <&> two]": "success",
    "TestGroup > test_param_in_class[two]": "failed",
    "TestGroup > test_fixture_error": "failed",
}
got = {n: t["status"] for n, t in by.items()}
assert got == want, {n: (got.get(n), s) for n, s in want.items() if got.get(n) != s} or got
assert d["tests"] == {"total": 14, "success": 8, "skipped": 2, "failed": 4}, d["tests"]
for t in d["testResults"]:
    assert t["filePath"] == t["context"]["nodeid"].split("::")[0], t

bad = by["test_fails"]["error"]
assert bad["message"] == "AssertionError: the answer is off by one\nassert 41 == 42", bad
assert "assert value == 42" in bad["stackTrace"] and "tests/test_basic.py:11: AssertionError" in bad["stackTrace"], bad
fx = by["TestGroup > test_fixture_error"]["error"]
assert "fixture exploded" in fx["message"], fx
assert "RuntimeError" in fx["stackTrace"], fx
assert "XPASS(strict)" in by["test_xpass_strict"]["error"]["message"], by["test_xpass_strict"]
assert by["TestGroup > test_param_in_class[two]"]["error"]["message"] == "assert 2 < 2", by["TestGroup > test_param_in_class[two]"]
for n, t in by.items():
    assert ("error" in t) == (t["status"] == "failed"), t

# the reasons of skips reach the user: the test_end events of invoke --json
ends = {}
for line in open(events):
    e = json.loads(line)
    if e.get("event") == "test_end":
        ends[e["testId"]] = e
assert sorted(ends) == sorted(t["testId"] for t in d["testResults"]), "one test_end per test"
assert ends[by["test_skipped"]["testId"]].get("message") == "not on this machine", ends[by["test_skipped"]["testId"]]
assert ends[by["test_xfail"]["testId"]].get("message") == "known bug 12", ends[by["test_xfail"]["testId"]]

# artifacts: pytest's JUnit report and its output, per test
for t in d["testResults"]:
    art = "%s/%s/%s" % (bucket, d["runId"], t["testId"])
    for f in ("junit.xml", "stdout.log", "stderr.log"):
        assert os.path.isfile(art + "/" + f), (t["name"], f, os.listdir(art) if os.path.isdir(art) else art)
junit = open("%s/%s/%s/junit.xml" % (bucket, d["runId"], by["test_fails"]["testId"]), encoding="utf-8").read()
assert 'name="test_fails"' in junit and "the answer is off by one" in junit, junit[:500]
print("pytest: %d results as expected" % len(by))
PY
		fail "results"
	echo "pytest: ok"
)

# ---- ctest ----------------------------------------------------------------------------
ctest_part() (
	fail() { echo "FAIL: ctest: $*"; exit 1; }
	for tool in cmake ctest; do
		command -v "$tool" >/dev/null 2>&1 || { echo "ctest: $tool not found: skipped"; exit 77; }
	done
	p=$tmp/ctest
	mkdir -p "$p/src"
	(cd "$tests_src/projects/ctest-project" && tar --exclude=build -cf - .) | (cd "$p/src" && tar -xf -) ||
		fail "cannot copy the CTest project"
	build=$p/src/build
	{ cmake -S "$p/src" -B "$build" && cmake --build "$build"; } >"$tmp/cmake.log" 2>&1 ||
		{ tail -20 "$tmp/cmake.log"; fail "cmake could not configure and build the project"; }
	# as a user writes it: relative to the project; testDir defaults to sourceDir
	config "$p" ctest '{"buildDir": "src/build", "sourceDir": "src"}'
	(cd "$build" && ctest --show-only=json-v1) >"$tmp/ctest.listed" 2>&1 ||
		{ cat "$tmp/ctest.listed"; fail "ctest --show-only=json-v1"; }
	rm -rf "$build/Testing" # what that ctest wrote; the runner must write nothing there

	"$hypertest" -C "$p" --quiet deploy >"$tmp/ctest.deploy" 2>&1 || { cat "$tmp/ctest.deploy"; fail "deploy"; }
	python3 - "$p" "$tmp/ctest.listed" "$build" <<'PY' || fail "manifest"
import json, os, sys
p, listed, build = sys.argv[1:4]
names = [t["name"] for t in json.load(open(listed))["tests"]]
m = json.load(open(p + "/.hypertest/bucket/hypertest.manifest.json"))
ctx = m["invokePayloadContexts"]
assert [c["name"] for c in ctx] == names, ([c["name"] for c in ctx], names)
assert [c["index"] for c in ctx] == list(range(1, len(names) + 1)), ctx
assert all(c["buildDir"] == build for c in ctx), ctx
# the deployed image holds the build tree and the sources at their absolute paths
root = json.load(open(p + "/.hypertest/function/current"))["root"]
for f in ("CTestTestfile.cmake", "check_add", "../CMakeLists.txt", "../add.c"):
    assert os.path.isfile(root + os.path.normpath(build + "/" + f)), (root, f)
PY

	for round in 1 2; do
		if [ $round -eq 2 ] && bwrap --ro-bind / / --dev /dev -- true >/dev/null 2>&1; then
			config "$p" ctest '{"buildDir": "src/build", "sourceDir": "src"}' bubblewrap
			echo "ctest: invoke 2 under isolation bubblewrap"
		fi
		"$hypertest" -C "$p" --json invoke >"$tmp/ctest.results" 2>"$tmp/ctest.events"
		rc=$?
		[ $rc -eq 1 ] || { tail -20 "$tmp/ctest.events"; fail "invoke $round with failing tests must exit 1 (got $rc)"; }
		python3 - "$p" "$tmp/ctest.results" "$tmp/ctest.events" <<'PY' ||
import json, os, sys
p, results, events = sys.argv[1:4]
out = open(results).read()
assert out.strip(), "invoke printed no results: " + open(events).read()[-2000:]
d = json.load(open(p + "/hypertest.results.json"))
assert json.loads(out) == d, "invoke --json printed other results than the file"
by = {t["context"]["name"]: t for t in d["testResults"]}
want = {
    "passes": "success",
    "fails": "failed",
    "math.add(1+1)": "success",
    "mathXadd11": "failed",
    "chars [a-z]*?|^$\\{}": "success",
    "skipped_by_code": "skipped",
    "skipped_by_regex": "skipped",
    "disabled": "skipped",
    "times_out": "failed",
}
got = {n: t["status"] for n, t in by.items()}
if got != want:
    msgs = {n: t.get("error", {}).get("message") for n, t in by.items()}
    raise AssertionError("\n".join("%s: %s, not %s: %s" % (n, got.get(n), s, msgs.get(n))
                                   for n, s in want.items() if got.get(n) != s) or got)
assert all(t["name"] == n for n, t in by.items()), d["testResults"]
assert d["tests"] == {"total": 9, "success": 3, "skipped": 3, "failed": 3}, d["tests"]
assert by["fails"]["error"]["message"] == "checking 2 + 2 == 5\nFAILED: 2 + 2 is 4, not 5", by["fails"]
assert by["mathXadd11"]["error"]["message"].endswith("FAILED: 1 + 1 is 2, not 3"), by["mathXadd11"]
assert by["times_out"]["error"]["message"] == "timed out", by["times_out"]
assert all(t["filePath"] == "src" for t in d["testResults"]), d["testResults"]
ends = {}
for line in open(events):
    e = json.loads(line)
    if e.get("event") == "test_end":
        ends[e["testId"]] = e
assert ends[by["skipped_by_code"]["testId"]].get("message") == "SKIP_RETURN_CODE=77", ends[by["skipped_by_code"]["testId"]]
bucket = p + "/.hypertest/bucket"
for t in d["testResults"]:
    art = "%s/%s/%s" % (bucket, d["runId"], t["testId"])
    # ctest ran in ART/ctest, its Testing/ there, not in the build tree
    for f in ("junit.xml", "stdout.log", "stderr.log", "ctest/Testing/Temporary/LastTest.log"):
        assert os.path.isfile(art + "/" + f), (t["name"], f, os.listdir(art) if os.path.isdir(art) else art)
assert not os.path.exists(p + "/src/build/Testing/Temporary/LastTest.log"), "ctest wrote into the build tree"
junit = open("%s/%s/%s/junit.xml" % (bucket, d["runId"], by["fails"]["testId"]), encoding="utf-8").read()
assert 'name="fails"' in junit and "2 + 2 is 4" in junit, junit[:500]
print("ctest: %d results as expected" % len(by))
PY
			fail "results of invoke $round"
	done
	echo "ctest: ok"
)

pytest_part
prc=$?
ctest_part
crc=$?
[ $prc -ne 1 ] && [ $crc -ne 1 ] || exit 1
[ $prc -eq 0 ] && [ $crc -eq 0 ] || exit 77
echo "ok"
exit 0
