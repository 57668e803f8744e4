#!/bin/sh
# function-deps.sh - what the function side carries into every image: the
# dependency rule of libhypertest/README.md, checked on the built objects.
#  1. hypertest-function needs no libcurl, libarchive, libxml2 or ICU
#     (readelf -d: its NEEDED entries);
#  2. the plugins the function side loads (provider-local and the runners;
#     not provider-aws, which needs libcurl) load neither libcurl nor
#     libarchive (ldd);
#  3. each of libhypertest's internal libraries calls only itself and the
#     libraries to its left in core <- elf <- oci <- commands (nm: every
#     undefined ht_/hypertest_ symbol of an archive is defined there).
# Needs neither Check nor bwrap nor busybox.
# Exit 0 pass, 1 fail, 77 skip (readelf, ldd or nm missing).
set -u
top_build=${HT_TOP_BUILDDIR:?}

for tool in readelf ldd nm; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not found"; exit 77; }
done

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/function-deps.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

unwanted='libcurl|libarchive|libxml2|libicu'

# 1. The real program, not a libtool wrapper script.
prog=$top_build/cli/.libs/hypertest-function
[ -f "$prog" ] || prog=$top_build/cli/hypertest-function
if [ ! -f "$prog" ]; then
	fail "missing $prog"
elif ! readelf -d "$prog" > "$tmp/dynamic"; then
	fail "readelf -d $prog"
elif ! grep -q NEEDED "$tmp/dynamic"; then
	fail "$prog: readelf -d shows no NEEDED entry (not a dynamic program?)"
else
	grep NEEDED "$tmp/dynamic" | grep -E "\[($unwanted)" |
		sed 's/.*\[\(.*\)\]/\1/' > "$tmp/needed"
	while read -r lib; do
		fail "hypertest-function needs $lib"
	done < "$tmp/needed"
fi

# 2. The plugins the function side loads.
checked=0
for name in provider-local runner-command runner-pytest runner-ctest runner-playwright; do
	so=$(find "$top_build/plugins" -path "*/.libs/$name.so" 2>/dev/null | head -n 1)
	if [ -z "$so" ]; then
		case $name in
		provider-local | runner-command) fail "missing $name.so under $top_build/plugins" ;;
		esac
		continue
	fi
	checked=$((checked + 1))
	if ! ldd "$so" > "$tmp/ldd"; then
		fail "ldd $so"
		continue
	fi
	grep -E '^[[:space:]]*(libcurl|libarchive)' "$tmp/ldd" | awk '{print $1}' > "$tmp/loaded"
	while read -r lib; do
		fail "$name.so loads $lib"
	done < "$tmp/loaded"
done
[ "$checked" -gt 0 ] || fail "no plugin found under $top_build/plugins"

# 3. The rule between libhypertest's internal libraries.
lib=$top_build/libhypertest
left=""
for part in core elf oci commands; do
	archive=$lib/$part/.libs/libhtcore-$part.a
	[ -f "$archive" ] || { fail "missing $archive"; continue; }
	left="$left $archive"
	# shellcheck disable=SC2086 # the list of archives is split on purpose
	nm --defined-only -g $left 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u > "$tmp/defined"
	nm -u "$archive" | awk '{print $NF}' | grep -E '^(ht_|hypertest_)' | sort -u > "$tmp/used"
	comm -23 "$tmp/used" "$tmp/defined" > "$tmp/outside"
	while read -r sym; do
		fail "libhypertest/$part/ calls $sym, which is not in $part/ or left of it"
	done < "$tmp/outside"
done

if [ "$failures" -gt 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "hypertest-function, $checked plugin(s) and libhypertest's four parts: dependencies as the rule says"
exit 0
