#!/bin/sh
# The local provider's isolation "lambda" with memoryMB as a cgroup v2
# limit (plugins/provider-local/local-cgroup.c), through the CLI, in the
# busybox root of lambda-e2e.sh (lambda-base.sh).
#  1. Everywhere: with HYPERTEST_LOCAL_CGROUP naming a directory laid out as
#     a delegated cgroup v2 (nothing is enforced: a check of our protocol,
#     not of the kernel), each sandbox gets a cgroup there with memory.max
#     memoryMB MiB and pids.max 1024, and its first process (bwrap) writes
#     its own pid to that cgroup.procs before it execs.
#  2. Where the machine delegates memory on cgroup v2 to hypertest (in a
#     systemd scope with Delegate=yes when systemd-run can make one, else in
#     the cgroup it runs in), as doctor reports it: a test that fills more
#     than memoryMB fails "out of memory (memoryMB 128)" as Lambda's do
#     (Runtime exited with error: signal: killed), one under it passes, and
#     no sandbox cgroup is left.  Elsewhere this part is skipped, saying why.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-lambda-cgroup-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/lambda-base.sh"

# /tmp is a tmpfs in the sandbox: what is written there is memory charged to
# the sandbox's cgroup (no swap: memory.swap.max 0)
p=$tmp/project
mkdir -p "$p/tests"
printf 'busybox dd if=/dev/zero of=/tmp/fill bs=1048576 count=%s\n' 16 >"$p/tests/under.sh"
printf 'busybox dd if=/dev/zero of=/tmp/fill bs=1048576 count=%s\n' 300 >"$p/tests/over.sh"
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 1, "imageName": "e2e/lambda-cgroup",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "lambda", "timeout": 20, "memoryMB": 128, "ephemeralStorageMB": 512,
   "functionName": "e2e-fn", "functionDir": ".hypertest/function"}}}
JSON
"$hypertest" -C "$p" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

# ---- 1. the protocol, in a directory laid out as a delegated cgroup ------------------------------
cg=$tmp/cgroup
mkdir -p "$cg"
echo "cpu memory pids" >"$cg/cgroup.controllers"
: >"$cg/cgroup.subtree_control"
: >"$cg/cgroup.procs"
# (nothing is enforced here: both tests pass)
# the invoke runs in a process of its own: the only one in cgroup.procs
HYPERTEST_LOCAL_CGROUP=$cg sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" \
	"$hypertest" -C "$p" --verbose invoke >"$tmp/fake.out" 2>&1 ||
	{ cat "$tmp/fake.out"; fail "invoke with a cgroup laid out in a directory"; }
python3 - "$cg" "$tmp/fake.out" <<'PY' || { cat "$tmp/fake.out"; fail "the cgroup protocol"; }
import os, sys
cg, out = sys.argv[1], open(sys.argv[2]).read()
assert open(cg + "/cgroup.subtree_control").read() == "+memory +pids"
moved = open(cg + "/hypertest/cgroup.procs").read()
assert moved.isdigit(), moved
boxes = [d for d in os.listdir(cg) if d.startswith("sandbox-")]
assert len(boxes) == 1, boxes  # one sandbox; the probe's was removed
box = os.path.join(cg, boxes[0])
assert boxes[0].startswith("sandbox-%s-" % moved), (boxes, moved)
assert open(box + "/memory.max").read() == str(128 << 20)
assert open(box + "/pids.max").read() == "1024"
entered = open(box + "/cgroup.procs").read()
assert entered.isdigit() and entered != moved, (entered, moved)
# not a cgroupfs: the interface files keep the directory, which is said
assert "cannot remove the cgroup %s: Directory not empty" % box in out, out
print("sandbox cgroup", box, "entered by pid", entered)
PY
echo "memoryMB: a sandbox's cgroup written as the protocol says, entered before exec"

# ---- 2. a real cgroup v2 limit, where memory is delegated -----------------------------------------
# a cgroup of its own for each hypertest run: a systemd scope with
# Delegate=yes when systemd-run can make one
scope=""
for s in "systemd-run --user --scope -p Delegate=yes -q --" "systemd-run --scope -p Delegate=yes -q --"; do
	if $s true >/dev/null 2>&1; then scope=$s; break; fi
done
$scope "$hypertest" -C "$p" doctor >"$tmp/doctor.out" 2>&1
grep -q "memory: " "$tmp/doctor.out" || { cat "$tmp/doctor.out"; fail "doctor says nothing of memory"; }
if ! grep -q "memory: cgroup v2 (" "$tmp/doctor.out"; then
	echo "memoryMB is not a cgroup v2 limit here (${scope:-no systemd-run scope}):"
	grep "memory: " "$tmp/doctor.out"
	echo "the real limit: skipped"
	exit 77
fi
$scope "$hypertest" -C "$p" --verbose invoke >"$tmp/invoke.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/invoke.out"; fail "invoke with a test over memoryMB must exit 1"; }
python3 - "$p/hypertest.results.json" <<'PY' || { cat "$tmp/invoke.out"; fail "results"; }
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["context"]["id"]: t for t in d["testResults"]}
def msg(t):
    return (t.get("error") or {}).get("message", "")
assert by["tests/under.sh"]["status"] == "success", by["tests/under.sh"]
over = by["tests/over.sh"]
assert over["status"] == "failed" and "out of memory (memoryMB 128)" in msg(over) and \
    "signal: killed" in msg(over), over
PY
grep -q "cannot remove the cgroup" "$tmp/invoke.out" && { cat "$tmp/invoke.out"; fail "a sandbox cgroup left"; }
echo "memoryMB as a cgroup v2 limit: over it the test fails out of memory, under it it passes"
