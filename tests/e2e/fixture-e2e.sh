#!/bin/sh
# End to end through the CLI with the fixture plugins: deploy, then invoke
# 1,000 tests at concurrency 100 on a provider that completes invocations
# asynchronously after a delay.  No more than 100 may ever be in flight and
# every test must be in the results file.  Then the bad inputs of the CLI.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

mkdir -p "$tmp/plugins" "$tmp/project/tests"
ln -s "$tests_build/abi/.libs/fixture-good.so" "$tmp/plugins/fixture-good.so"
export HYPERTEST_PLUGIN_PATH="$tmp/plugins"
printf 'a test\n' >"$tmp/project/tests/a.test"
cat >"$tmp/project/hypertest.config.json" <<JSON
{
  "concurrency": 100,
  "imageName": "e2e/hypertest",
  "testRunner": {"plugin": "fixture", "options": {"count": 1000}},
  "cloudProvider": {"plugin": "fixture",
    "options": {"delayMs": 30, "statsFile": "$tmp/stats.json"}}
}
JSON

"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
for step in pull build push manifest update; do
	grep -q "$step" "$tmp/deploy.out" || { cat "$tmp/deploy.out"; fail "deploy output lacks step $step"; }
done
"$hypertest" -C "$tmp/project" invoke >"$tmp/invoke.out" 2>&1
rc=$?
[ $rc -eq 0 ] || { tail -20 "$tmp/invoke.out"; fail "invoke exited $rc"; }
python3 - "$tmp" <<'PY' || fail "results"
import json, sys
tmp = sys.argv[1]
stats = json.load(open(tmp + "/stats.json"))
assert stats["maxInFlight"] <= 100, stats
assert stats["maxInFlight"] == 100, stats
assert stats["started"] == 1000, stats
res = json.load(open(tmp + "/project/hypertest.results.json"))
assert res["tests"] == {"total": 1000, "success": 1000, "skipped": 0, "failed": 0}, res["tests"]
ns = sorted(t["context"]["n"] for t in res["testResults"])
assert ns == list(range(1000)), "not every test is in the results"
assert len({t["testId"] for t in res["testResults"]}) == 1000
print("1000 results, at most", stats["maxInFlight"], "in flight")
PY

# --output oci:DIR writes a copy of the image, in a dry run too, and nothing else.
before=$(ls -R "$tmp/project/bucket" | md5sum)
"$hypertest" -C "$tmp/project" --dry-run deploy --output "oci:$tmp/out" >"$tmp/out.log" 2>&1 ||
	{ cat "$tmp/out.log"; fail "deploy --output"; }
[ -f "$tmp/out/oci-layout" ] && grep -q '"org.opencontainers.image.ref.name":"latest"' "$tmp/out/index.json" ||
	{ ls -R "$tmp/out"; cat "$tmp/out/index.json"; fail "no OCI layout written"; }
[ "$(ls -R "$tmp/project/bucket" | md5sum)" = "$before" ] || fail "a dry run changed the bucket"
"$hypertest" -C "$tmp/project" invoke --output "oci:$tmp/out2" >/dev/null 2>&1
[ $? -eq 2 ] || fail "--output with invoke must be a usage error"

# A failing test makes invoke exit 1.
"$hypertest" -C "$tmp/project" --set 'cloudProvider.options.failEvery=500' invoke >"$tmp/fail.out" 2>&1
[ $? -eq 1 ] || fail "invoke with failed tests must exit 1"

# Results that cannot be written go to standard output as JSON, after the
# plain lines of the run (from the first line that is "{").
printf 'x' >"$tmp/project/blocker"
"$hypertest" -C "$tmp/project" --quiet --set 'resultsFileName=blocker/r.json' invoke >"$tmp/stdout.json" 2>"$tmp/stderr.txt"
python3 -c '
import json, sys
lines = open(sys.argv[1]).read().split("\n")
d = json.loads("\n".join(lines[lines.index("{"):]))
assert d["tests"]["total"] == 1000' "$tmp/stdout.json" ||
	{ head -c 300 "$tmp/stdout.json"; cat "$tmp/stderr.txt"; fail "results not on stdout"; }

# Unknown plugin: the error lists what was found and where.
"$hypertest" -C "$tmp/project" --set 'testRunner.plugin=nosuch' invoke >"$tmp/unknown.out" 2>&1
[ $? -eq 1 ] || fail "unknown plugin must exit 1"
grep -q "nosuch" "$tmp/unknown.out" && grep -q "'fixture'" "$tmp/unknown.out" && grep -q "$tmp/plugins" "$tmp/unknown.out" ||
	{ cat "$tmp/unknown.out"; fail "unknown plugin message"; }

# Missing and invalid configuration.
mkdir "$tmp/empty"
"$hypertest" -C "$tmp/empty" invoke >"$tmp/noconf.out" 2>&1
[ $? -eq 1 ] || fail "missing config must exit 1"
grep -q "hypertest.config.json" "$tmp/noconf.out" || { cat "$tmp/noconf.out"; fail "missing config message"; }
printf '{\n  "concurrency": "thirty"\n}\n' >"$tmp/empty/hypertest.config.json"
"$hypertest" -C "$tmp/empty" invoke >"$tmp/badconf.out" 2>&1
[ $? -eq 1 ] || fail "invalid config must exit 1"
grep -q "hypertest.config.json:2:" "$tmp/badconf.out" && grep -q "concurrency" "$tmp/badconf.out" ||
	{ cat "$tmp/badconf.out"; fail "invalid config message"; }

# ABI mismatch named on the CLI.
ln -s "$tests_build/abi/.libs/fixture-major.so" "$tmp/plugins/fixture-major.so"
"$hypertest" -C "$tmp/project" plugins >"$tmp/plugins.out" 2>&1
grep "fixture-major" "$tmp/plugins.out" | grep -q "failed" && grep -q "2.0" "$tmp/plugins.out" ||
	{ cat "$tmp/plugins.out"; fail "ABI mismatch not shown"; }
echo "ok"
exit 0
