#!/bin/sh
# End to end through the CLI with the `local` provider and the `command`
# runner: every kind of test outcome, ids that a shell would mangle, drift,
# reproducible deploys, a TMPDIR short enough for Unix sockets, and no
# process left behind after the orchestrator is killed.  Its speed is
# local-speed.sh's.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-local-e2e-XXXXXX) || exit 1
marker=$(basename "$tmp")
cleanup() {
	[ -n "${bg:-}" ] && kill -9 "$bg" 2>/dev/null
	rm -rf "$tmp" "/tmp/pwned-$marker" "/tmp/pwned2-$marker" ${links_base:+"$links_base"}
}
trap cleanup EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

# json FILE EXPR: evaluate a Python expression over the JSON document d
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
config() { # DIR RUNNER_OPTIONS_JSON PROVIDER_OPTIONS_JSON [CONCURRENCY]
	cat >"$1/hypertest.config.json" <<JSON
{"concurrency": ${4:-30}, "imageName": "e2e/local",
 "testRunner": {"plugin": "command", "options": $2},
 "cloudProvider": {"plugin": "local", "options": $3}}
JSON
}

# ---- every kind of outcome -------------------------------------------------------
k=$tmp/kinds
mkdir -p "$k/tests"
printf 'echo all good\n' >"$k/tests/pass.sh"
printf 'echo "expected 4, got 5" >&2\nexit 1\n' >"$k/tests/fail.sh"
printf 'echo "not on this machine" >&2\nexit 77\n' >"$k/tests/skip.sh"
printf 'echo "about to crash" >&2\nkill -SEGV $$\n' >"$k/tests/crash.sh"
printf 'exec sleep 60\n' >"$k/tests/hang.sh"
printf 'head -c 60000000 /dev/zero | tr "\\\\0" x\necho "flooded" >&2\n' >"$k/tests/flood.sh"
config "$k" '{"testDir": "tests", "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}' \
	'{"timeout": 3}' 10
"$hypertest" -C "$k" --quiet deploy >"$tmp/kinds.deploy" 2>&1 || { cat "$tmp/kinds.deploy"; fail "deploy kinds"; }
"$hypertest" -C "$k" --quiet invoke >"$tmp/kinds.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/kinds.out"; fail "invoke with failures must exit 1"; }
python3 - "$k/hypertest.results.json" <<'PY' || fail "outcomes"
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["context"]["id"]: t for t in d["testResults"]}
def check(id, status, needle=None):
    t = by[id]
    assert t["status"] == status, (id, t)
    if needle:
        assert needle in t["error"]["message"], (id, t["error"]["message"])
check("tests/pass.sh", "success")
check("tests/flood.sh", "success")
check("tests/skip.sh", "skipped")
check("tests/fail.sh", "failed", "expected 4, got 5")
check("tests/crash.sh", "failed", "SIGSEGV")
check("tests/hang.sh", "failed", "timed out after 3 s")
assert d["tests"] == {"total": 6, "success": 2, "skipped": 1, "failed": 3}, d["tests"]
print("outcomes ok")
PY
# the flood's output is an artifact, capped; the others' output too
run_id=$(json "$k/hypertest.results.json" 'd["runId"]')
[ -d "$k/.hypertest/bucket/$run_id" ] || fail "no artifacts under the run id"
ls "$k/.hypertest/bucket/$run_id"/*/stdout.log >/dev/null 2>&1 || fail "no stdout.log artifacts"

# ---- ids that a shell would mangle reach the test byte for byte -------------------
s=$tmp/ids
mkdir -p "$s/tests"
printf 'printf "%%s" "$2" >"$1/id.txt"\n' >"$s/tests/record.sh"
python3 - "$s" "$marker" <<'PY'
import json, sys
s, marker = sys.argv[1], sys.argv[2]
ids = ["a b", "q'uote\"d", "$(touch /tmp/pwned-%s)" % marker, "`touch /tmp/pwned2-%s`" % marker,
       "new\nline", "ünïcødé ✓ 测试", "semi;colon&amp|pipe>out", "  spaces  "]
cfg = {"concurrency": 8, "testRunner": {"plugin": "command", "options": {
        "tests": ids, "run": ["sh", "tests/record.sh", "{artifactsDir}", "{id}"]}},
       "cloudProvider": {"plugin": "local", "options": {}}}
json.dump(cfg, open(s + "/hypertest.config.json", "w"))
json.dump(ids, open(s + "/ids.json", "w"))
PY
"$hypertest" -C "$s" --quiet deploy >"$tmp/ids.deploy" 2>&1 || { cat "$tmp/ids.deploy"; fail "deploy ids"; }
# under umask 027: the zygote reads the umask once for its children, and
# each test's artifacts directory goes into the bucket as 0750, its files 0644
(umask 027 && "$hypertest" -C "$s" --quiet invoke) >"$tmp/ids.out" 2>&1 ||
	{ cat "$tmp/ids.out"; fail "invoke ids"; }
python3 - "$s" <<'PY' || fail "ids"
import json, sys, os
s = sys.argv[1]
ids = json.load(open(s + "/ids.json"))
d = json.load(open(s + "/hypertest.results.json"))
seen = []
for t in d["testResults"]:
    art = "%s/.hypertest/bucket/%s/%s" % (s, d["runId"], t["testId"])
    got = open(art + "/id.txt", encoding="utf-8").read()
    assert got == t["context"]["id"], (got, t["context"]["id"])
    assert os.stat(art).st_mode & 0o7777 == 0o750, (art, oct(os.stat(art).st_mode))
    assert os.stat(art + "/id.txt").st_mode & 0o7777 == 0o644, oct(os.stat(art + "/id.txt").st_mode)
    seen.append(got)
assert sorted(seen) == sorted(ids), seen
print("ids ok")
PY
[ ! -e "/tmp/pwned-$marker" ] && [ ! -e "/tmp/pwned2-$marker" ] || fail "an id was run through a shell"

# ---- drift: warning, error, silence ------------------------------------------------
digest1=$(json "$k/.hypertest/bucket/hypertest.manifest.json" 'd["imageDigest"]')
printf 'echo all good, changed\n' >"$k/tests/pass.sh"
"$hypertest" -C "$k" --quiet invoke >"$tmp/drift-warning.out" 2>&1
grep -q "drift" "$tmp/drift-warning.out" || { cat "$tmp/drift-warning.out"; fail "no drift warning"; }
"$hypertest" -C "$k" --quiet --set driftDetectionPolicy=error invoke >"$tmp/drift-error.out" 2>&1
[ $? -eq 1 ] && grep -q "changed since the last deploy" "$tmp/drift-error.out" ||
	{ cat "$tmp/drift-error.out"; fail "drift error"; }
grep -q "^test " "$tmp/drift-error.out" && fail "tests ran despite drift policy error"
"$hypertest" -C "$k" --quiet --set driftDetectionPolicy=silence invoke >"$tmp/drift-silence.out" 2>&1
grep -qi "drift" "$tmp/drift-silence.out" && { cat "$tmp/drift-silence.out"; fail "drift reported with silence"; }

# ---- deploying twice without a change gives the same image digest -------------------
"$hypertest" -C "$k" --quiet deploy >/dev/null 2>&1 || fail "redeploy"
digest2=$(json "$k/.hypertest/bucket/hypertest.manifest.json" 'd["imageDigest"]')
[ "$digest1" != "$digest2" ] || fail "a changed test did not change the image"
touch -d '2001-01-01' "$k/tests/"*.sh
chmod 600 "$k/tests/pass.sh"
"$hypertest" -C "$k" --quiet deploy >/dev/null 2>&1 || fail "redeploy"
digest3=$(json "$k/.hypertest/bucket/hypertest.manifest.json" 'd["imageDigest"]')
[ "$digest2" = "$digest3" ] || fail "same content, other times and modes: $digest2 != $digest3"

# ---- TMPDIR: short (Unix sockets below it fit), in the scratch directory, then gone --
u=$tmp/tmpdir
mkdir -p "$u/tests"
cat >"$u/tests/tmpdir.py" <<'PY'
import os, socket, sys
td = os.environ["TMPDIR"]
assert os.path.realpath(td) == os.path.realpath(".hypertest/tmp"), (td, os.getcwd())
# Chromium's is $TMPDIR/.org.chromium.Chromium.XXXXXX/SingletonSocket (46 more bytes)
d = os.path.join(td, ".org.chromium.Chromium.abcdef")
os.mkdir(d)
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(d, "SingletonSocket"))
s.close()
open(os.path.join(sys.argv[1], "tmpdir.txt"), "w").write(td)
PY
config "$u" '{"tests": ["a", "b"], "run": ["python3", "tests/tmpdir.py", "{artifactsDir}"]}' '{}' 2
"$hypertest" -C "$u" --quiet deploy >"$tmp/tmpdir.deploy" 2>&1 || { cat "$tmp/tmpdir.deploy"; fail "deploy tmpdir"; }
"$hypertest" -C "$u" --quiet invoke >"$tmp/tmpdir.out" 2>&1 || { cat "$tmp/tmpdir.out"; fail "invoke tmpdir"; }
run_id=$(json "$u/hypertest.results.json" 'd["runId"]')
for id in $(json "$u/hypertest.results.json" '" ".join(t["testId"] for t in d["testResults"])'); do
	td=$(cat "$u/.hypertest/bucket/$run_id/$id/tmpdir.txt") || fail "no TMPDIR recorded by $id"
	echo "TMPDIR of $id: $td"
	[ ! -e "$td" ] && [ ! -L "$td" ] || fail "TMPDIR $td of $id is still there"
	[ ! -e "$(dirname "$td")" ] || fail "the directory of TMPDIR links $(dirname "$td") is still there"
done

# ---- SIGKILL of the orchestrator leaves no function process behind ------------------
# each test is a shell with a background job: the sleeps are grandchildren
# of the function, which no parent-death signal reaches
g=$tmp/kill
mkdir -p "$g/tests"
echo x >"$g/tests/x"
# (the function tree in the project, where count_ours looks for the functions)
config "$g" '{"tests": ["1", "2", "3", "4", "5"], "run": ["sh", "-c", "sleep 37.5 & sleep 37.6; wait", "{id}"]}' \
	'{"functionDir": ".hypertest/function"}' 5
"$hypertest" -C "$g" --quiet deploy >/dev/null 2>&1 || fail "deploy kill"
# a TMPDIR of this part's own for the directories of TMPDIR links: the
# orchestrators of tests running beside this one sweep /tmp
links_base=$(mktemp -d /tmp/ht-links-XXXXXX) || fail "mktemp"
TMPDIR=$links_base "$hypertest" -C "$g" --quiet invoke >/dev/null 2>&1 &
bg=$!
count_ours() { # processes working below $g, or with their HOME there (a test's)
	n=0
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/cwd" 2>/dev/null)" in
		"$g"/*) n=$((n + 1)) ;;
		*) grep -qa "HOME=$g/" "$p/environ" 2>/dev/null && n=$((n + 1)) ;;
		esac
	done
	echo $n
}
for _ in $(seq 100); do [ "$(count_ours)" -ge 20 ] && break; sleep 0.1; done
[ "$(count_ours)" -ge 20 ] || fail "the 5 functions and their tests did not start ($(count_ours))"
killed=$bg
kill -9 "$bg"
wait "$bg" 2>/dev/null
bg=
for _ in $(seq 50); do [ "$(count_ours)" -eq 0 ] && break; sleep 0.1; done
[ "$(count_ours)" -eq 0 ] || { ps -ef | grep -v grep | grep -E "sleep 37|hypertest-function"; fail "processes left behind"; }
# its directory of TMPDIR links stays, until the next orchestrator starts
left=$(ls -d "$links_base"/hypertest-*-"$killed"-?????? 2>/dev/null)
[ -n "$left" ] || fail "no directory of TMPDIR links named for process $killed in $links_base"
config "$g" '{"tests": ["1"], "run": ["true"]}' '{"functionDir": ".hypertest/function"}' 1
TMPDIR=$links_base "$hypertest" -C "$g" --quiet invoke >"$tmp/after-kill.out" 2>&1 ||
	{ cat "$tmp/after-kill.out"; fail "invoke after the kill"; }
[ ! -e "$left" ] || fail "$left, left by the killed orchestrator, is still there"
[ -z "$(ls -A "$links_base")" ] || fail "$links_base is not empty: $(ls "$links_base")"
rmdir "$links_base"

# ---- the function loads only the plugins it serves with --------------------------
# (every other module of the plugin path, and the libraries it pulls in,
# would be mappings for each fork of the zygote to copy; the aws provider's
# libcurl brings p11-kit, which can never be unloaded): the test looks at
# the maps of its parent, the function process, forked or started with
# exec; and the tests do not see the variable that names those modules
others=$(cd "$HYPERTEST_PLUGIN_PATH" && ls *.so 2>/dev/null | grep -v -x -e provider-local.so -e runner-command.so)
if [ -n "$others" ]; then
	m=$tmp/modules
	mkdir -p "$m/tests"
	echo "maps" >"$m/tests/README"
	pattern=""
	for o in $others libp11-kit; do pattern="$pattern -e $o"; done
	config "$m" "{\"tests\": [\"a\", \"b\"], \"run\": [\"sh\", \"-c\", \"grep -F -q runner-command.so /proc/\$PPID/maps || exit 2; printenv HYPERTEST_PLUGIN_MODULES >&2 && exit 3; ! grep -F$pattern /proc/\$PPID/maps >&2\", \"{id}\"]}" '{}' 2
	"$hypertest" -C "$m" --quiet deploy >"$tmp/modules.deploy" 2>&1 || { cat "$tmp/modules.deploy"; fail "deploy modules"; }
	for zygote in 0 1; do
		HYPERTEST_LOCAL_NO_ZYGOTE=$zygote "$hypertest" -C "$m" --quiet invoke >"$tmp/modules.out" 2>&1 ||
			{ cat "$tmp/modules.out"; json "$m/hypertest.results.json" '[t.get("error") for t in d["testResults"]]';
			  fail "the function process maps another module or libp11-kit, or its test sees HYPERTEST_PLUGIN_MODULES (HYPERTEST_LOCAL_NO_ZYGOTE=$zygote)"; }
	done
fi
echo "ok"
exit 0
