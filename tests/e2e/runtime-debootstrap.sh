#!/bin/sh
# The runtime layer on a base of another library set: a minimal Debian made
# with debootstrap (its own libc, no libcurl, no OpenSSL, no jansson), used
# as the base image of a local-provider deploy with isolation "image"; the
# tests run inside it through the runtime layer.  Not part of `make check`
# (debootstrap fetches a few hundred packages from the Debian mirror): run
# it by hand from a build tree,
#
#   HT_TOP_BUILDDIR=$PWD HT_TESTS_SRCDIR=/path/to/hypertest/tests \
#       sh /path/to/hypertest/tests/e2e/runtime-debootstrap.sh [SUITE] [MIRROR]
#
# SUITE defaults to bookworm, MIRROR to debootstrap's default.  Needs root,
# debootstrap, bwrap and python3.
. "$(dirname "$0")/preamble.sh"
suite=${1:-bookworm}
tmp=$(mktemp -d /tmp/ht-debootstrap-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
for tool in debootstrap bwrap python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: skipped"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root: skipped"; exit 77; }
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) exit 77 ;; esac

echo "debootstrap --variant=minbase $suite (a few minutes)"
debootstrap --variant=minbase "$suite" "$tmp/root" ${2:+"$2"} >"$tmp/debootstrap.log" 2>&1 ||
	{ tail -20 "$tmp/debootstrap.log"; fail "debootstrap"; }
for lib in libcurl.so.4 libjansson.so.4 libcrypto.so.3 libltdl.so.7; do
	find "$tmp/root/usr/lib" "$tmp/root/lib" -name "$lib" 2>/dev/null | grep -q . &&
		echo "note: the base has $lib of its own"
done
python3 "$tests_src/projects/runtime/make-layout.py" "$tmp/root" "$tmp/base" "$arch" || fail "base layout"

p=$tmp/project
mkdir -p "$p/tests"
cat >"$p/tests/inside.sh" <<'SH'
grep -q '^ID=debian' /etc/os-release || { echo "not the debootstrap root" >&2; exit 1; }
[ -x /opt/hypertest/bin/hypertest-function ] || { echo "no runtime layer" >&2; exit 1; }
echo "inside $(. /etc/os-release; echo "$PRETTY_NAME")"
SH
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 2, "imageName": "e2e/debootstrap",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "tests": ["tests/inside.sh"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "image", "timeout": 120}}}
JSON
"$hypertest" -C "$p" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
"$hypertest" -C "$p" invoke >"$tmp/invoke.out" 2>&1 || { cat "$tmp/invoke.out"; fail "invoke"; }
run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runId"])' "$p/hypertest.results.json")
cat "$p/.hypertest/bucket/$run"/*/stdout.log
echo "ok: the test ran inside the $suite root through the runtime layer"
