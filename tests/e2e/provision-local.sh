#!/bin/sh
# hypertest provision and destroy with the local provider: the plan
# changes nothing, provision creates and marks the bucket and function
# directories, a second run changes nothing, deploy and invoke run on what
# was provisioned, destroy lists first, needs --yes without a terminal
# (on one, an interrupt at its question stops it at once),
# keeps a bucket holding objects without --force, and never touches a
# directory it did not mark.
. "$(dirname "$0")/preamble.sh"
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
tmp=$(mktemp -d /tmp/ht-provision-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

p=$tmp/project
mkdir -p "$p/tests"
printf 'echo ok\n' >"$p/tests/a.sh"
cat >"$p/hypertest.config.json" <<'JSON'
{"concurrency": 2, "imageName": "e2e/provision",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"bucketDir": "out/bucket",
   "functionDir": "out/function"}}}
JSON
ht() { "$hypertest" -C "$p" "$@"; }
# actions FILE: "type=action" of a --json answer, one per line, sorted
actions() {
	python3 -c 'import json,sys
for r in sorted(json.load(open(sys.argv[1])), key=lambda r: r["type"]):
    print(r["type"] + "=" + r["action"])' "$1" | tr '\n' ' '
}
expect_actions() { # FILE WANT WHAT
	got=$(actions "$1")
	[ "$got" = "$2" ] || fail "$3: got '$got', want '$2'"
}

# the plan: nothing created
ht --dry-run --json provision >"$tmp/plan.json" 2>"$tmp/plan.err" || { cat "$tmp/plan.err"; fail "plan"; }
expect_actions "$tmp/plan.json" "bucket=create function=create " "plan"
[ ! -e "$p/out" ] || fail "the plan created $(ls "$p/out")"
grep -q "bucket $p/out/bucket: create (the directory does not exist)" "$tmp/plan.err" ||
	{ cat "$tmp/plan.err"; fail "the plan logs each resource and why"; }
ht --dry-run provision >"$tmp/plan.txt" 2>/dev/null || fail "plan (text)"
grep -q "^Plan: 2 to create, 0 to update, 0 unchanged (dry run" "$tmp/plan.txt" ||
	{ cat "$tmp/plan.txt"; fail "plan summary"; }

# provision, then again
ht provision >"$tmp/apply.txt" 2>&1 || { cat "$tmp/apply.txt"; fail "provision"; }
grep -q "^2 created, 0 updated, 0 unchanged." "$tmp/apply.txt" || { cat "$tmp/apply.txt"; fail "provision summary"; }
for d in bucket function; do
	[ -d "$p/out/$d" ] || fail "no $d directory"
	[ -f "$p/out/$d/.hypertest-provisioned" ] || fail "$d not marked"
done
ht provision >"$tmp/again.txt" 2>&1 || { cat "$tmp/again.txt"; fail "second provision"; }
grep -q "^Nothing to change: 2 resources as configured." "$tmp/again.txt" ||
	{ cat "$tmp/again.txt"; fail "the second provision must change nothing"; }
ht --json provision >"$tmp/again.json" 2>/dev/null || fail "second provision (json)"
expect_actions "$tmp/again.json" "bucket=exists function=exists " "second provision"

# an unmarked directory is adopted (update), not recreated
rm "$p/out/function/.hypertest-provisioned"
ht --json provision >"$tmp/adopt.json" 2>/dev/null || fail "provision of an unmarked directory"
expect_actions "$tmp/adopt.json" "bucket=exists function=update " "unmarked directory"

# deploy and invoke on what was provisioned
ht -q deploy >"$tmp/deploy.txt" 2>&1 || { cat "$tmp/deploy.txt"; fail "deploy"; }
ht -q invoke >"$tmp/invoke.txt" 2>&1 || { cat "$tmp/invoke.txt"; fail "invoke"; }
ls "$p/out/bucket" | grep -q . || fail "the run left nothing in the bucket"

# destroy: listed, refused without --yes when stdin is no terminal
ht destroy </dev/null >"$tmp/noyes.txt" 2>&1 && { cat "$tmp/noyes.txt"; fail "destroy without --yes"; }
grep -q "confirm with --yes" "$tmp/noyes.txt" || { cat "$tmp/noyes.txt"; fail "destroy asks for --yes"; }
grep -q "function $p/out/function: delete" "$tmp/noyes.txt" || { cat "$tmp/noyes.txt"; fail "destroy lists first"; }
[ -d "$p/out/function" ] || fail "destroy without --yes removed the function"
ht --dry-run --json destroy >"$tmp/dry.json" 2>/dev/null || fail "destroy --dry-run"
expect_actions "$tmp/dry.json" "bucket=keep function=delete " "destroy --dry-run"
[ -d "$p/out/function" ] || fail "destroy --dry-run removed the function"
# at the question on a terminal, an interrupt stops the program at once
# (destroy catches it otherwise, to end a request under way), nothing removed
python3 - "$hypertest" -C "$p" destroy <<'PY' || fail "an interrupt at destroy's question"
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
seen, end = b"", time.time() + 60
while b"[y/N]" not in seen and time.time() < end:
    if select.select([fd], [], [], 0.2)[0]:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
if b"[y/N]" not in seen:
    os.kill(pid, signal.SIGKILL)
    sys.exit("no question: %r" % seen)
os.kill(pid, signal.SIGINT)
for _ in range(300):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    sys.exit("still waiting for an answer 30 s after SIGINT")
if not os.WIFSIGNALED(status) or os.WTERMSIG(status) != signal.SIGINT:
    sys.exit("not stopped by SIGINT: status %d" % status)
PY
[ -d "$p/out/function" ] || fail "an interrupted destroy removed the function"

# a bucket with objects survives without --force
ht --json destroy --yes </dev/null >"$tmp/destroy.json" 2>"$tmp/destroy.err" &&
	fail "destroy keeping the bucket must exit 1"
expect_actions "$tmp/destroy.json" "bucket=keep function=delete " "destroy"
grep -q "1 resource kept" "$tmp/destroy.err" || { cat "$tmp/destroy.err"; fail "kept bucket reported"; }
[ ! -e "$p/out/function" ] || fail "the function directory is still there"
[ -f "$p/out/bucket/.hypertest-provisioned" ] || fail "the bucket was touched"

# an unmarked directory is never removed, even forced
mkdir "$p/out/function" && touch "$p/out/function/mine"
ht --json destroy --yes --force </dev/null >"$tmp/force.json" 2>"$tmp/force.err" ||
	{ cat "$tmp/force.err"; fail "destroy --force"; }
expect_actions "$tmp/force.json" "bucket=delete " "destroy --force"
[ ! -e "$p/out/bucket" ] || fail "the bucket is still there"
[ -f "$p/out/function/mine" ] || fail "destroy removed a directory it did not mark"
ht destroy --yes >"$tmp/nothing.txt" 2>&1 || { cat "$tmp/nothing.txt"; fail "destroy of nothing"; }
grep -q "^Nothing to destroy" "$tmp/nothing.txt" || { cat "$tmp/nothing.txt"; fail "nothing to destroy"; }
echo "provision-local ok"
