#!/bin/sh
# Open files and concurrency: hypertest raises its soft RLIMIT_NOFILE to the
# hard limit, and a run whose concurrency cannot fit under the limit is
# refused before it starts with an error that names both (fixture plugins,
# limits set with prlimit).
. "$(dirname "$0")/preamble.sh"
command -v prlimit >/dev/null 2>&1 || { echo "prlimit not found"; exit 77; }
tmp=$(mktemp -d /tmp/ht-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/plugins" "$tmp/project/tests"
ln -s "$tests_build/abi/.libs/fixture-good.so" "$tmp/plugins/fixture-good.so"
export HYPERTEST_PLUGIN_PATH="$tmp/plugins"
printf 'a test\n' >"$tmp/project/tests/a.test"
cat >"$tmp/project/hypertest.config.json" <<JSON
{
  "concurrency": 500,
  "imageName": "e2e/hypertest",
  "testRunner": {"plugin": "fixture", "options": {"count": 600}},
  "cloudProvider": {"plugin": "fixture", "options": {"delayMs": 1}}
}
JSON
"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

# a hard limit of 100: refused, nothing invoked, the numbers in the message
prlimit --nofile=100:100 "$hypertest" -C "$tmp/project" invoke >"$tmp/low.out" 2>&1 &&
	{ cat "$tmp/low.out"; fail "invoke at concurrency 500 under a limit of 100 succeeded"; }
grep -q "concurrency 500 needs about 564 file descriptors; the limit is 100 (ulimit -n)" "$tmp/low.out" ||
	{ cat "$tmp/low.out"; fail "no clear error for the descriptor limit"; }
grep -q "hard limit too" "$tmp/low.out" || { cat "$tmp/low.out"; fail "the message does not say the hard limit is too low"; }
test -e "$tmp/project/hypertest.results.json" && fail "a refused run wrote results"

# fewer tests than the concurrency: only as many as there are tests count
sed -i 's/"count": 600/"count": 20/' "$tmp/project/hypertest.config.json"
"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy2.out" 2>&1 || { cat "$tmp/deploy2.out"; fail "deploy 2"; }
prlimit --nofile=100:100 "$hypertest" -C "$tmp/project" invoke >"$tmp/few.out" 2>&1 ||
	{ cat "$tmp/few.out"; fail "20 tests under a limit of 100 refused"; }

# a soft limit of 100 under a hard one of 4096: raised, the run goes ahead
sed -i 's/"count": 20/"count": 600/' "$tmp/project/hypertest.config.json"
"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy3.out" 2>&1 || { cat "$tmp/deploy3.out"; fail "deploy 3"; }
prlimit --nofile=100:4096 "$hypertest" -C "$tmp/project" invoke >"$tmp/raised.out" 2>&1 ||
	{ tail -20 "$tmp/raised.out"; fail "invoke with the soft limit below the hard one"; }
echo "ok"
