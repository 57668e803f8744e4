#!/bin/sh
# The first SIGINT/SIGTERM ends what blocks, promptly, with what is in hand
# written: a deploy whose registry stalls in the middle of an answer
# (services/registry/stall.py), and an invoke waiting for the deployed
# image while another process (a deploy unpacking it) holds its lock;
# doctor does not wait for that lock at all.
# "Promptly" is a generous 30 s against a hang.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-interrupt-XXXXXX) || exit 1
cleanup() {
	[ -n "${stall:-}" ] && kill "$stall" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
[ -e "$tests_build/abi/.libs/fixture-good.so" ] || { echo "fixture-good.so not built"; exit 77; }

# ---- deploy: a registry that stalls mid-body ------------------------------------
python3 "$tests_src/services/registry/stall.py" "$tmp/port" >"$tmp/stall.log" 2>&1 &
stall=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port" 2>/dev/null) || fail "stall.py did not start"
mkdir -p "$tmp/plugins" "$tmp/d/tests"
ln -s "$tests_build/abi/.libs/fixture-good.so" "$tmp/plugins/fixture-good.so"
printf 'a test\n' >"$tmp/d/tests/a.test"
cat >"$tmp/d/hypertest.config.json" <<JSON
{"imageName": "e2e/stall",
 "testRunner": {"plugin": "fixture", "options": {"count": 3}},
 "cloudProvider": {"plugin": "fixture", "options": {"bucketDir": "$tmp/d/bucket",
   "target": {"registry": "127.0.0.1:$port", "repository": "e2e/stall",
              "baseImage": "127.0.0.1:$port/base:latest"}}}}
JSON
mkdir -p "$tmp/d/bucket"
HYPERTEST_PLUGIN_PATH="$tmp/plugins" signal_timed "$tmp/deploy.out" SIGINT \
	"$tmp/stall.log" "stalled:" -- "$hypertest" -C "$tmp/d" deploy >"$tmp/deploy.rc" ||
	{ cat "$tmp/deploy.out"; fail "deploy was not interrupted"; }
read -r rc secs <"$tmp/deploy.rc"
echo "deploy exited $rc, $secs s after SIGINT"
[ "$rc" -ne 0 ] || { cat "$tmp/deploy.out"; fail "a cancelled deploy exited 0"; }
grep -q "registry 127.0.0.1:$port: GET /v2/.*: cancelled" "$tmp/deploy.out" ||
	{ cat "$tmp/deploy.out"; fail "deploy did not say which request was cancelled"; }
echo "deploy cancelled in a stalled pull ok"

# ---- invoke: waiting for an image another process holds -------------------------
p=$tmp/inv
mkdir -p "$p/tests"
for t in a b c; do printf 'echo %s\n' "$t" >"$p/tests/$t.sh"; done
cat >"$p/hypertest.config.json" <<JSON
{"imageName": "e2e/lockwait",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "tests": ["tests/a.sh", "tests/b.sh", "tests/c.sh"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"functionDir": ".hypertest/function"}}}
JSON
"$hypertest" -C "$p" --quiet deploy >"$tmp/inv.deploy" 2>&1 || { cat "$tmp/inv.deploy"; fail "deploy"; }
root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"])' \
	"$p/.hypertest/function/current") || fail "no current"
lock=$(dirname "$root")/lock
[ -f "$lock" ] || fail "no lock file $lock"
signal_timed "$tmp/invoke.out" SIGTERM "$tmp/invoke.out" "waiting for the deployed image" \
	"$lock" -- "$hypertest" -C "$p" invoke >"$tmp/invoke.rc" ||
	{ cat "$tmp/invoke.out"; fail "invoke was not interrupted"; }
read -r rc secs <"$tmp/invoke.rc"
echo "invoke exited $rc, $secs s after SIGTERM"
[ "$rc" -ne 0 ] || { cat "$tmp/invoke.out"; fail "a cancelled invoke exited 0"; }
python3 - "$p/hypertest.results.json" <<'PY' || { cat "$tmp/invoke.out"; fail "results of the cancelled run"; }
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tests"]["total"] == 3, r["tests"]
assert r["tests"]["failed"] == 3, r["tests"]
for t in r["testResults"]:
    assert "cancelled" in t["error"]["message"], t
PY
# doctor does not wait for the image either: it says why it cannot look
python3 - "$lock" "$hypertest" "$p" >"$tmp/doctor.out" 2>&1 <<'PY' || { cat "$tmp/doctor.out"; fail "doctor while the image is held"; }
import fcntl, subprocess, sys
lock, ht, proj = sys.argv[1:]
held = open(lock, "rb")
fcntl.flock(held, fcntl.LOCK_EX)
r = subprocess.run([ht, "-C", proj, "doctor"], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True, timeout=30)
assert "is being unpacked or repaired" in r.stdout, r.stdout
PY
# the lock released, the same invoke runs
"$hypertest" -C "$p" --quiet invoke >"$tmp/invoke.2" 2>&1 || { cat "$tmp/invoke.2"; fail "invoke after"; }
echo "invoke cancelled while waiting for the image ok"
