#!/bin/sh
# abi-check.sh - the ABI of libhypertest and of the plugin interface against
# the baseline kept in tests/abi/baseline/.
#
# abidw (Debian package abigail-tools) describes three objects of this build:
# libhypertest.so (the embedding API), abi/probe-plugin.so (a module using
# every type, enum, id and function type of plugin.h and common.h) and
# abi/probe-embed.so (every enum and type of hypertest.h that no function
# carries); abidiff compares each description with the baseline's.
#
#   an incompatible change (a layout, a value, a signature changed; anything
#   removed): the test fails and prints abidiff's report;
#   a compatible addition (a function, an enumerator, an id, an upcall or an
#   operation): the test passes and prints what was added.
#
# Also checks that the probes cover every enum, struct, function type and id
# of the public headers, so that a new one cannot escape the comparison.
#
# abi-check.sh --baseline writes the descriptions of this build, the public
# headers and the probe's sources to the baseline directory instead: see
# ABI.md for when that may be done ("make abi-baseline").
#
# Environment: ABIDW, ABIDIFF (from configure), HT_TOP_BUILDDIR,
# HT_TOP_SRCDIR, HT_TESTS_BUILDDIR; HT_ABI_BASELINE, another baseline
# directory (for abi-selftest.sh).  Exit status 77 (skipped) without the
# tools, 99 when a tool fails.
set -u

top_src=${HT_TOP_SRCDIR:?}
top_build=${HT_TOP_BUILDDIR:?}
tests_build=${HT_TESTS_BUILDDIR:-$top_build/tests}
abi_src=$top_src/tests/abi
# (abi-selftest.sh compares with altered copies of the baseline)
baseline=${HT_ABI_BASELINE:-$abi_src/baseline}
current=${HT_ABI_CURRENT:-$tests_build/abi/current}
headers=$top_src/include/hypertest

mode=check
[ "${1:-}" = --baseline ] && mode=baseline

ABIDW=${ABIDW:-}
ABIDIFF=${ABIDIFF:-}
if [ -z "$ABIDW" ] || [ -z "$ABIDIFF" ]; then
	echo "SKIP: abidw and abidiff not found when configure ran (Debian package abigail-tools);"
	echo "      install it and run configure again to compare the ABI with the baseline"
	exit 77
fi

# The object and its .abi name, in the order they are compared.
lib=$top_build/libhypertest/.libs/libhypertest.so
probe=$tests_build/abi/.libs/probe-plugin.so
embed=$tests_build/abi/.libs/probe-embed.so
for f in "$lib" "$probe" "$embed"; do
	[ -f "$f" ] || { echo "ERROR: $f is not built (run make first)"; exit 99; }
done

has_debug_info() {
	LC_ALL=C readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'
}

# Only the types of the public headers (and the probe's id enums) count;
# no path of this machine enters the description: file names only, no
# corpus or compilation directory, no DT_NEEDED (sanitizer builds add
# theirs), no undefined symbols.
dump() { # object output header-dirs...
	obj=$1 out=$2
	shift 2
	hd=
	for d in "$@"; do hd="$hd --headers-dir $d"; done
	# shellcheck disable=SC2086
	"$ABIDW" $hd --drop-private-types --drop-undefined-syms --no-elf-needed \
		--no-corpus-path --no-comp-dir-path --short-locs \
		--out-file "$out" "$obj"
}

mkdir -p "$current" || exit 99
rc=0
if has_debug_info "$lib"; then
	dump "$lib" "$current/libhypertest.abi" "$headers" || rc=99
	have_lib=1
else
	echo "NOTE: $lib has no debug information (configure with -g in CFLAGS):"
	echo "      the library's functions are not compared, the probes are"
	have_lib=0
fi
dump "$probe" "$current/probe-plugin.abi" "$headers" "$abi_src" || rc=99
dump "$embed" "$current/probe-embed.abi" "$headers" || rc=99
if [ $rc -ne 0 ]; then
	echo "ERROR: abidw failed"
	exit 99
fi

# ---- the probes cover every type and id of the public headers -------------------
missing=
need() { # abixml pattern what
	grep -q "$2" "$1" || missing="$missing
  $3"
}
for h in common.h plugin.h; do
	for e in $(sed -n 's/^enum \(hypertest_[a-z_]*\) {.*/\1/p' "$headers/$h"); do
		need "$current/probe-plugin.abi" "<enum-decl name='$e'" "enum $e ($h) in probe-plugin.c"
	done
done
for h in common.h hypertest.h; do
	for e in $(sed -n 's/^enum \(hypertest_[a-z_]*\) {.*/\1/p' "$headers/$h"); do
		need "$current/probe-embed.abi" "<enum-decl name='$e'" "enum $e ($h) in probe-embed.c"
	done
done
for t in $(sed -n 's/^typedef [^(]*(\*\(hypertest_[A-Za-z_]*\))(.*/\1/p' "$headers/plugin.h"); do
	need "$current/probe-plugin.abi" "<typedef-decl name='$t'" "function type $t (plugin.h) in probe-plugin.c"
done
for t in $(sed -n 's/^typedef [^(]*(\*\(hypertest_[A-Za-z_]*\))(.*/\1/p' "$headers/hypertest.h"); do
	need "$current/probe-embed.abi" "<typedef-decl name='$t'" "function type $t (hypertest.h) in probe-embed.c"
done
for s in $(sed -n 's/^typedef struct \(hypertest_[a-z_]*\) {.*/\1/p' "$headers/plugin.h"); do
	# compiled into each plugin, never crosses the boundary: may grow
	[ "$s" = hypertest_upcalls ] && continue
	need "$current/probe-plugin.abi" "<class-decl name='$s'" "struct $s (plugin.h) in probe-plugin.c"
done
for id in $(sed -n 's/^#define \(HYPERTEST_\(UP\|OP\|RUNNER\|PROVIDER\)_[A-Z_]*\) [0-9][0-9]*$/\1/p' "$headers/plugin.h"); do
	need "$current/probe-plugin.abi" "name='probe_id_$id'" "id $id (plugin.h) in probe-ids.h"
done
if [ -n "$missing" ]; then
	echo "FAIL: the ABI probes do not use everything of the public headers; add:$missing"
	exit 1
fi

# ---- regenerate the baseline ---------------------------------------------------
if [ $mode = baseline ]; then
	if [ $have_lib = 0 ]; then
		echo "ERROR: libhypertest.so has no debug information: configure with -g in CFLAGS"
		exit 99
	fi
	mkdir -p "$baseline/include/hypertest" || exit 99
	cp "$current/libhypertest.abi" "$current/probe-plugin.abi" "$current/probe-embed.abi" \
		"$baseline/" &&
		cp "$headers/common.h" "$headers/hypertest.h" "$headers/plugin.h" \
			"$baseline/include/hypertest/" &&
		cp "$abi_src/probe-plugin.c" "$abi_src/probe-ids.h" "$baseline/" || exit 99
	echo "baseline written to $baseline:"
	(cd "$baseline" && ls -1 ./*.abi ./*.c ./*.h include/hypertest/*.h)
	exit 0
fi

# ---- compare --------------------------------------------------------------------
failed=0
added=0
for name in libhypertest probe-plugin probe-embed; do
	[ $name = libhypertest ] && [ $have_lib = 0 ] && continue
	old=$baseline/$name.abi new=$current/$name.abi
	[ -f "$old" ] || { echo "ERROR: no baseline $old"; exit 99; }
	# additions (new symbols, new enumerators) are not reported by this run:
	# whatever it reports is a change to something that existed.  The name
	# of the architecture is not compared: the baseline was written on
	# x86-64, and holds for any LP64 machine (not for a 32-bit one)
	"$ABIDIFF" --no-architecture --no-added-syms "$old" "$new" >"$current/$name.diff" 2>&1
	st=$?
	if [ $((st & 3)) -ne 0 ]; then
		echo "ERROR: abidiff failed on $name ($st):"
		cat "$current/$name.diff"
		exit 99
	fi
	if [ $st -ne 0 ]; then
		echo "FAIL: incompatible ABI change in $name (abidiff exit status $st):"
		echo
		sed 's/^/    /' "$current/$name.diff"
		failed=1
		continue
	fi
	# now with additions and harmless changes
	"$ABIDIFF" --no-architecture --harmless "$old" "$new" >"$current/$name.added" 2>&1
	st=$?
	if [ $((st & 3)) -ne 0 ]; then
		echo "ERROR: abidiff failed on $name ($st):"
		cat "$current/$name.added"
		exit 99
	fi
	if [ $st -ne 0 ]; then
		echo "compatible additions to $name (a minor release; see ABI.md):"
		echo
		sed 's/^/    /' "$current/$name.added"
		added=1
	else
		echo "$name: no ABI change"
	fi
done

if [ $failed -ne 0 ]; then
	cat <<'EOT'

An interface that existed at the baseline was changed or removed.  Undo the
change, or, for a new major version (a new soname, a new plugin ABI major),
follow ABI.md and run "make abi-baseline".
EOT
	exit 1
fi
[ $added -ne 0 ] && echo "(additions only: compatible with the baseline)"
exit 0
