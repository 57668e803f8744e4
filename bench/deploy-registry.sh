#!/usr/bin/env bash
# Benchmark: deploy a test directory of 5,000 files and 200 MB to a local
# docker-registry, against the floor of `tar czf` of the same directory
# plus one upload of the result with curl; then a redeploy with no change
# (target: under 1 s, no layer built, nothing uploaded), with the runtime
# layer.  Prints each figure beside its floor or target and the ratio.
#
#   bench/deploy-registry.sh [BUILD_DIR]     (default: _build, then .)
#
# Needs docker-registry (Debian package), curl, and a build with the tests
# built (make check or make -C tests abi/fixture-good.la): the deploy goes
# through the fixture provider, which names the registry as its target.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
[ -n "$build" ] || { [ -x "$here/_build/cli/hypertest" ] && build=$here/_build || build=$here; }
hypertest=$build/cli/hypertest
fixture=$build/tests/abi/.libs/fixture-good.so
files=${FILES:-5000}
megabytes=${MEGABYTES:-200}
[ -x "$hypertest" ] || { echo "no $hypertest: build first"; exit 1; }
[ -f "$fixture" ] || make -C "$build/tests" abi/fixture-good.la >/dev/null
command -v docker-registry >/dev/null || { echo "docker-registry not installed (apt-get install docker-registry)"; exit 1; }

tmp=$(mktemp -d /tmp/ht-bench-XXXXXX)
cleanup() { [ -n "${reg_pid:-}" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $tmp/registry-data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

echo "making $files files, $megabytes MB in all"
mkdir -p "$tmp/project/tests"
python3 - "$tmp/project/tests" "$files" "$megabytes" <<'PY'
import os, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = mb * 1024 * 1024 // n
for i in range(n):
    d = os.path.join(root, "dir%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "test%05d.bin" % i), "wb") as f:
        # half random (incompressible), half text, like screenshots beside specs
        f.write(os.urandom(size // 2) + (b"expect(page).toHaveTitle('x');\n" * (size // 64))[: size - size // 2])
PY
cat >"$tmp/project/hypertest.config.json" <<JSON
{"testRunner": {"plugin": "fixture", "options": {"count": 1}},
 "cloudProvider": {"plugin": "fixture", "options": {"target":
   {"registry": "127.0.0.1:$port", "repository": "bench/tests", "tag": "latest",
    "runtimeLayer": "1"}}}}
JSON
mkdir "$tmp/plugins" && ln -s "$fixture" "$tmp/plugins/"
export HYPERTEST_PLUGIN_PATH=$tmp/plugins:$build/plugins/.libs
export HYPERTEST_FUNCTION_PROGRAM=$build/cli/hypertest-function

seconds() { python3 -c 'import sys,time; print("%.2f" % (time.time() - float(sys.argv[1])))' "$1"; }
now() { python3 -c 'import time; print(time.time())'; }

sync
# a layer's key is recorded only for inputs older than a second
sleep 1.2
t=$(now)
tar czf "$tmp/floor.tar.gz" -C "$tmp/project" tests
tar_s=$(seconds "$t")
t=$(now)
curl -fs -X POST -o /dev/null -D "$tmp/h" "http://127.0.0.1:$port/v2/floor/blobs/uploads/"
loc=$(sed -n 's/^Location: *//Ip' "$tmp/h" | tr -d '\r')
case $loc in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
dig=sha256:$(sha256sum "$tmp/floor.tar.gz" | cut -d' ' -f1)
sep='?'; case $loc in *\?*) sep='&' ;; esac
curl -fs -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$tmp/floor.tar.gz" "$loc${sep}digest=$dig" -o /dev/null
curl_s=$(seconds "$t")

t=$(now)
/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KB max RSS' -o "$tmp/time1" \
	"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy1.log" 2>&1 ||
	{ cat "$tmp/deploy1.log"; exit 1; }
first_s=$(cut -d" " -f1 "$tmp/time1") # /usr/bin/time: no interpreter start-up in it
t=$(now)
/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KB max RSS' -o "$tmp/time2" \
	"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy2.log" 2>&1 ||
	{ cat "$tmp/deploy2.log"; exit 1; }
second_s=$(cut -d" " -f1 "$tmp/time2")

layers() { grep -o 'layers: [0-9]* built, [0-9]* unchanged' "$1" | head -1; }
uploads() { grep -o '[0-9]* of [0-9]* layers uploaded' "$1" | head -1; }
floor=$(python3 -c "print('%.2f' % ($tar_s + $curl_s))")
echo "floor: tar czf ${tar_s}s + curl upload ${curl_s}s = ${floor}s ($(du -m "$tmp/floor.tar.gz" | cut -f1) MB compressed)"
echo "hypertest deploy (first):     ${first_s}s  floor ${floor}s  ratio $(python3 -c "print('%.2f' % ($first_s / $floor))") (target 1.2)  [$(layers "$tmp/deploy1.log"); $(uploads "$tmp/deploy1.log")]  ($(cat "$tmp/time1"))"
echo "hypertest deploy (no change): ${second_s}s  target 1.00s  ratio $(python3 -c "print('%.2f' % ($second_s / 1.0))")  [$(layers "$tmp/deploy2.log"); $(uploads "$tmp/deploy2.log"), target 0]  ($(cat "$tmp/time2"))"
echo "steps of the redeploy: $(grep -o 'step [a-z]* done [0-9.]*s' "$tmp/deploy2.log" | sed 's/step //; s/ done//' | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
