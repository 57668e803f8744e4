#!/bin/sh
# The runtime layer end to end through the CLI: a base image whose root
# holds nothing but a statically linked busybox (no libc, no libcurl, no
# OpenSSL), deployed with the local provider's isolation "image", which
# runs the image's own entry point inside that root with bubblewrap, the
# payload on stdin.  The tests run there, their artifacts arrive in the
# bucket; redeploys are reproducible; a base of another architecture is
# refused.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-runtime-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
# the base: busybox alone; isolation "image" runs it without --uid
base_userns=no
. "$(dirname "$0")/lambda-base.sh"

# the function program goes into the image, with the libraries it loads

json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

p=$tmp/project
mkdir -p "$p/tests"
cat >"$p/tests/inside.sh" <<'SH'
# only busybox and the runtime layer: no libc of a distribution
[ -e /usr ] && { echo "/usr exists: not the busybox root" >&2; exit 1; }
[ -e /lib/x86_64-linux-gnu/libc.so.6 ] && { echo "a libc in /lib" >&2; exit 1; }
[ -x /opt/hypertest/bin/hypertest-function ] || { echo "no runtime layer" >&2; exit 1; }
echo "inside the busybox root: $(busybox uname -s)"
echo "an artifact" >"$1/note.txt"
SH
printf 'echo "expected 4, got 5" >&2\nexit 1\n' >"$p/tests/fails.sh"
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 2, "imageName": "e2e/runtime",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}", "{artifactsDir}"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "image", "timeout": 60}}}
JSON

# ---- deploy: base + runtime layer + test layer ----------------------------------------------------
"$hypertest" -C "$p" --verbose deploy >"$tmp/deploy1.out" 2>&1 || { cat "$tmp/deploy1.out"; fail "deploy"; }
rt1=$(sed -n 's/.*runtime layer \(sha256:[0-9a-f]*\).*/\1/p' "$tmp/deploy1.out" | head -1)
[ -n "$rt1" ] || { cat "$tmp/deploy1.out"; fail "no runtime layer in the deploy"; }
img1=$(sed -n 's/.*image \(sha256:[0-9a-f]*\).*/\1/p' "$tmp/deploy1.out" | head -1)
python3 - "$p/.hypertest/image" "$rt1" <<'PY' || fail "image config"
import json, os, sys
d, rt = sys.argv[1:3]
blob = lambda dg: os.path.join(d, "blobs", *dg.split(":"))
idx = json.load(open(os.path.join(d, "index.json")))
m = json.load(open(blob(idx["manifests"][-1]["digest"])))
c = json.load(open(blob(m["config"]["digest"])))
assert len(m["layers"]) == 3 and m["layers"][1]["digest"] == rt, m["layers"]
cfg = c["config"]
ep = cfg["Entrypoint"]
assert ep[0].startswith("/opt/hypertest/lib/ld-") and ep[1:] == ["--library-path",
    "/opt/hypertest/lib", "/opt/hypertest/bin/hypertest-function"], ep
assert cfg["Labels"]["org.hypertest.runtime.layer"] == rt, cfg["Labels"]
assert cfg["Labels"]["org.hypertest.version"], cfg["Labels"]
assert "PATH=/bin" in cfg["Env"], cfg["Env"]
assert any(e.startswith("HYPERTEST_PLUGIN_PATH=/opt/hypertest/") for e in cfg["Env"]), cfg["Env"]
# what the function runtime loads, and nothing of what only deploy and
# invoke need (hypertest-function links the core's archive)
import tarfile
with tarfile.open(blob(rt)) as t:
    libs = sorted(os.path.basename(n) for n in t.getnames() if "/lib/" in n and ".so" in n)
for unwanted in ("libhypertest.so", "libarchive.so", "libcurl.so", "libxml2.so", "libicu"):
    assert not any(l.startswith(unwanted) for l in libs), (unwanted, libs)
assert any(l.startswith("libjansson.so") for l in libs), libs
print("runtime layer: %d bytes, %d libraries: %s" % (os.path.getsize(blob(rt)), len(libs), " ".join(libs)))
PY
echo "deployed $img1 with runtime layer $rt1"

# ---- invoke: every test runs inside the busybox root ----------------------------------------------
"$hypertest" -C "$p" invoke >"$tmp/invoke.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/invoke.out"; fail "invoke with a failing test must exit 1"; }
res=$p/hypertest.results.json
python3 - "$res" <<'PY' || { cat "$tmp/invoke.out"; fail "results"; }
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["context"]["id"]: t for t in d["testResults"]}
assert by["tests/inside.sh"]["status"] == "success", by["tests/inside.sh"]
assert by["tests/fails.sh"]["status"] == "failed", by["tests/fails.sh"]
assert "expected 4, got 5" in by["tests/fails.sh"]["error"]["message"], by["tests/fails.sh"]
assert d["tests"] == {"total": 2, "success": 1, "skipped": 0, "failed": 1}, d["tests"]
PY
run=$(json "$res" 'd["runId"]')
tid=$(json "$res" '[t["testId"] for t in d["testResults"] if t["context"]["id"] == "tests/inside.sh"][0]')
bucket=$p/.hypertest/bucket
grep -q "inside the busybox root: Linux" "$bucket/$run/$tid/stdout.log" 2>/dev/null ||
	{ cat "$bucket/$run/$tid/"* 2>/dev/null; fail "stdout.log of the test in the bucket"; }
[ "$(cat "$bucket/$run/$tid/note.txt" 2>/dev/null)" = "an artifact" ] || fail "note.txt in the bucket"
echo "invoked inside the busybox root: results and artifacts in the bucket"

# ---- reproducible: the same deploy, the same digests ----------------------------------------------
"$hypertest" -C "$p" --verbose deploy >"$tmp/deploy2.out" 2>&1 || { cat "$tmp/deploy2.out"; fail "redeploy"; }
grep -q "runtime layer $rt1" "$tmp/deploy2.out" || { cat "$tmp/deploy2.out"; fail "runtime layer changed"; }
grep -q "image $img1" "$tmp/deploy2.out" || { cat "$tmp/deploy2.out"; fail "image digest changed"; }
echo "changed" >>"$p/tests/fails.sh"
"$hypertest" -C "$p" --verbose deploy >"$tmp/deploy3.out" 2>&1 || { cat "$tmp/deploy3.out"; fail "deploy after a change"; }
grep -q "runtime layer $rt1" "$tmp/deploy3.out" || { cat "$tmp/deploy3.out"; fail "a test change changed the runtime layer"; }
grep -q "image $img1" "$tmp/deploy3.out" && fail "a test change left the image digest"
echo "reproducible: the runtime layer stays $rt1"

# ---- a base of another architecture is refused ----------------------------------------------------
python3 "$tests_src/projects/runtime/make-layout.py" "$tmp/root" "$tmp/base-other" "$other" || fail "other layout"
sed "s|oci:$tmp/base\"|oci:$tmp/base-other\"|" "$p/hypertest.config.json" >"$tmp/c.json" &&
	mv "$tmp/c.json" "$p/hypertest.config.json"
"$hypertest" -C "$p" deploy >"$tmp/deploy4.out" 2>&1 && { cat "$tmp/deploy4.out"; fail "deploy onto $other"; }
grep -q "base image is for $other" "$tmp/deploy4.out" && grep -q "runs on $arch" "$tmp/deploy4.out" ||
	{ cat "$tmp/deploy4.out"; fail "the refusal does not say why"; }
echo "a $other base is refused"
