#!/bin/sh
# End to end through the CLI with the `local` provider and the `playwright`
# runner: deploy the Playwright project of runners/playwright-project (a
# copy, with `npm ci`), invoke every test of its first project, and check
# the manifest, the results and the artifacts.
#
# node_modules: the local provider unpacks the image into a task root and
# runs each test in a directory of links to its entries; Playwright (and
# npx, which looks for node_modules/.bin) must find @playwright/test there.
# A real base image provides node_modules; this test has no base image, so
# it puts them into the image with the runner's "include" option.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-playwright-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
for tool in node npm python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found"; exit 77; }
done

p=$tmp/project
mkdir -p "$p"
(cd "$tests_src/projects/playwright-project" && tar --exclude=node_modules --exclude=test-results -cf - .) |
	(cd "$p" && tar -xf -) || fail "cannot copy the Playwright project"
(cd "$p" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm.log" 2>&1 ||
	{ tail -5 "$tmp/npm.log"; echo "npm ci failed: skipped"; exit 77; }

cat >"$p/hypertest.config.json" <<'JSON'
{"concurrency": 4, "imageName": "e2e/playwright",
 "testRunner": {"plugin": "playwright", "options": {"include": ["node_modules"]}},
 "cloudProvider": {"plugin": "local", "options": {"timeout": 300}}}
JSON

"$hypertest" -C "$p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
python3 - "$p/.hypertest/bucket/hypertest.manifest.json" <<'PY' || fail "manifest"
import json, sys
m = json.load(open(sys.argv[1]))
greps = [c["grep"] for c in m["invokePayloadContexts"]]
assert len(greps) == 17, greps
# the TypeScript hypertest's format: escaped, then backslashes doubled
assert "^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts group \\\\[x\\\\] choice \\\\(a\\\\|b\\\\)$" in greps, greps
assert all(g.startswith("^alpha ") for g in greps), greps
PY

"$hypertest" -C "$p" --quiet invoke >"$tmp/invoke.out" 2>&1
rc=$?
[ $rc -eq 1 ] || { tail -30 "$tmp/invoke.out"; fail "invoke with failing tests must exit 1 (got $rc)"; }
[ -x /usr/bin/chromium ] && browser=success || browser=skipped
python3 - "$p" "$browser" <<'PY' || { tail -30 "$tmp/invoke.out"; fail "results"; }
import json, os, sys
p, browser = sys.argv[1], sys.argv[2]
d = json.load(open(p + "/hypertest.results.json"))
by = {t["name"]: t for t in d["testResults"]}
want = {
    "[alpha] basic.spec.ts > top level passes": "success",
    "[alpha] basic.spec.ts > outer > inside outer": "success",
    "[alpha] basic.spec.ts > outer > inner > deep test": "success",
    "[alpha] basic.spec.ts > loop case 1": "success",
    "[alpha] basic.spec.ts > loop case 2": "success",
    "[alpha] basic.spec.ts > loop case 3": "success",
    "[alpha] basic.spec.ts > fails on purpose": "failed",
    "[alpha] basic.spec.ts > times out on purpose": "failed",
    "[alpha] basic.spec.ts > skipped on purpose": "skipped",
    "[alpha] browser.spec.ts > chromium renders a loopback page": browser,
    "[alpha] nested/regex-titles.spec.ts > group [x] > choice (a|b)": "success",
    "[alpha] nested/regex-titles.spec.ts > group [x] > dotted a.b": "success",
    "[alpha] nested/regex-titles.spec.ts > dash x-y": "success",
    "[alpha] nested/regex-titles.spec.ts > dollar $1 and caret ^ and star * and plus + and question ?": "success",
    "[alpha] nested/regex-titles.spec.ts > braces {n} and back\\slash": "success",
    "[alpha] nested/regex-titles.spec.ts > unicode ünïcødé ✓": "success",
    "[alpha] nested/regex-titles.spec.ts > dash x": "success",
}
got = {n: t["status"] for n, t in by.items()}
assert got == want, {n: (got.get(n), s) for n, s in want.items() if got.get(n) != s} or got
failed = by["[alpha] basic.spec.ts > fails on purpose"]
assert "one is not two" in failed["error"]["message"], failed
assert "basic.spec.ts:" in failed["error"]["stackTrace"], failed
assert failed["filePath"] == "specs/basic.spec.ts", failed
ok = by["[alpha] nested/regex-titles.spec.ts > dash x-y"]
assert ok["filePath"] == "specs/nested/regex-titles.spec.ts", ok
b = browser == "success"
assert d["tests"] == {"total": 17, "success": 13 + b, "skipped": 2 - b, "failed": 2}, d["tests"]
# every test's artifacts: Playwright's report and logs, its output folder
for t in d["testResults"]:
    art = "%s/.hypertest/bucket/%s/%s" % (p, d["runId"], t["testId"])
    for f in ("playwright-results.json", "stdout.log", "stderr.log"):
        assert os.path.isfile(art + "/" + f), (t["name"], f, os.listdir(art))
art = "%s/.hypertest/bucket/%s/%s/test-results" % (p, d["runId"], failed["testId"])
assert any("error-context.md" in fs for _, _, fs in os.walk(art)), art
print("%d results as expected" % len(by))
PY
echo "ok"
exit 0
