#!/bin/sh
# Careless and hostile input through the CLI, with the local provider and
# the command runner: artifacts that cannot be stored (links out of the
# artifacts directory, a loop, a dangling link, a FIFO) are reported in the
# test's result and in the output, and only regular files and directories
# are stored; a list command that prints an id twice is refused; an endless
# configuration file is refused at its cap; a FIFO among the base image's
# blobs is refused; a plugin's option error says where the option is.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-rel-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "timeout not found"; exit 77; }

config() { # DIR RUNNER_OPTIONS_JSON PROVIDER_OPTIONS_JSON
	cat >"$1/hypertest.config.json" <<JSON
{"concurrency": 4, "imageName": "e2e/reliability",
 "testRunner": {"plugin": "command", "options": $2},
 "cloudProvider": {"plugin": "local",
   "options": $3}}
JSON
}

# ---- artifacts: the same rules as the aws provider's upload ------------------------
a=$tmp/art
outside=$tmp/outside
mkdir -p "$a/tests" "$outside/secret-dir"
echo "secret file" >"$outside/secret.txt"
echo "secret deep" >"$outside/secret-dir/deep.txt"
cat >"$a/tests/make.sh" <<'SH'
d=$1
mkdir -p "$d/sub/deeper"
echo one >"$d/one.txt"
echo two >"$d/sub/deeper/two.txt"
ln -s "$2/secret.txt" "$d/file-link"
ln -s "$2/secret-dir" "$d/dir-link"
ln -s one.txt "$d/inner-link"
ln -s loop "$d/loop"
ln -s nowhere "$d/dangling"
mkfifo "$d/sub/fifo"
SH
config "$a" "{\"tests\": [\"t1\"], \"run\": [\"sh\", \"tests/make.sh\", \"{artifactsDir}\", \"$outside\"]}" '{}'
"$hypertest" -C "$a" --quiet deploy >"$tmp/art.deploy" 2>&1 || { cat "$tmp/art.deploy"; fail "deploy"; }
"$hypertest" -C "$a" invoke >"$tmp/art.out" 2>&1 || { cat "$tmp/art.out"; fail "invoke must pass"; }
python3 - "$a" <<'PY' || { cat "$tmp/art.out"; fail "artifacts"; }
import json, os, sys
a = sys.argv[1]
d = json.load(open(os.path.join(a, "hypertest.results.json")))
t = d["testResults"][0]
assert t["status"] == "success", t
w = sorted(t.get("warnings", []))
want = sorted([
    "artifact dangling: not stored: a dangling symbolic link",
    "artifact dir-link: not stored: a symbolic link (links are not followed)",
    "artifact file-link: not stored: a symbolic link (links are not followed)",
    "artifact inner-link: not stored: a symbolic link (links are not followed)",
    "artifact loop: not stored: a symbolic link loop",
    "artifact sub/fifo: not stored: a FIFO (only regular files and directories are stored)",
])
assert w == want, w
store = os.path.join(a, ".hypertest", "bucket", d["runId"], t["testId"])
assert open(os.path.join(store, "one.txt")).read() == "one\n"
assert open(os.path.join(store, "sub", "deeper", "two.txt")).read() == "two\n"
for name in ("file-link", "dir-link", "inner-link", "loop", "dangling", "sub/fifo"):
    assert not os.path.lexists(os.path.join(store, name)), name
for root, dirs, files in os.walk(store):
    for f in files:
        assert "secret" not in open(os.path.join(root, f), errors="replace").read(), f
print("artifacts ok")
PY
grep -q "^warning: .*artifact loop: not stored: a symbolic link loop$" "$tmp/art.out" ||
	{ cat "$tmp/art.out"; fail "no warning line in the output"; }
[ "$(grep -c '^warning: .*not stored' "$tmp/art.out")" -eq 6 ] ||
	{ cat "$tmp/art.out"; fail "one warning line per artifact not stored"; }

# ---- a list command that prints an id twice ----------------------------------------
l=$tmp/list
mkdir -p "$l/tests"
echo 'exit 0' >"$l/tests/t.sh"
config "$l" '{"list": ["printf", "a\nb\na\n"], "run": ["sh", "tests/t.sh", "{id}"]}' '{}'
"$hypertest" -C "$l" --quiet deploy >"$tmp/list.out" 2>&1 && { cat "$tmp/list.out"; fail "repeated ids accepted"; }
grep -q "line 3 repeats the test id 'a' of line 1" "$tmp/list.out" ||
	{ cat "$tmp/list.out"; fail "repeated id not named"; }

# ---- an endless configuration file --------------------------------------------------
timeout 60 "$hypertest" -C "$l" --config /dev/zero doctor >"$tmp/zero.out" 2>&1
rc=$?
[ $rc -ne 124 ] || fail "--config /dev/zero still reading after 60 s"
[ $rc -ne 0 ] || fail "--config /dev/zero accepted"
grep -q "/dev/zero: larger than 1 MiB, the limit for a configuration file" "$tmp/zero.out" ||
	{ cat "$tmp/zero.out"; fail "--config /dev/zero: no clear error"; }

# ---- a FIFO among the blobs of the base image's layout --------------------------------
# refused at once (it used to block deploy, and a SIGTERM did not end it)
f=$tmp/fifo
mkdir -p "$f/tests" "$f/base/blobs/sha256"
echo 'exit 0' >"$f/tests/t.sh"
echo '{"imageLayoutVersion": "1.0.0"}' >"$f/base/oci-layout"
digest=0000000000000000000000000000000000000000000000000000000000000001
mkfifo "$f/base/blobs/sha256/$digest"
cat >"$f/base/index.json" <<JSON
{"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
 "digest": "sha256:$digest", "size": 500,
 "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
JSON
config "$f" '{"tests": ["t"], "run": ["sh", "tests/t.sh"]}' "{\"baseImage\": \"oci:$f/base:latest\"}"
timeout -s KILL 60 "$hypertest" -C "$f" --quiet deploy >"$tmp/fifo.out" 2>&1
rc=$?
[ $rc -ne 137 ] || fail "deploy waited on a FIFO blob"
[ $rc -ne 0 ] || fail "a FIFO blob accepted"
grep -q "blobs/sha256/$digest: not a regular file" "$tmp/fifo.out" ||
	{ cat "$tmp/fifo.out"; fail "a FIFO blob: no clear error"; }

# ---- a plugin's option error says where ---------------------------------------------
o=$tmp/option
mkdir -p "$o/tests"
echo 'exit 0' >"$o/tests/t.sh"
config "$o" '{"tests": ["t"], "run": ["sh", "tests/t.sh"]}' '{"isolation": "bogus"}'
"$hypertest" -C "$o" --quiet deploy >"$tmp/option.out" 2>&1 && fail "a bad option accepted"
grep -q "hypertest.config.json:4:29: key 'cloudProvider.options.isolation': provider 'local': option 'isolation'" "$tmp/option.out" ||
	{ cat "$tmp/option.out"; fail "the option error does not say where"; }
echo "reliability e2e ok"
