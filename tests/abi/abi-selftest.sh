#!/bin/sh
# abi-selftest.sh - abi-check.sh tells an incompatible change from an
# addition: against copies of the baseline altered the other way round
# (a value the build does not have; an enumerator, an id or a function the
# build has and the copy lacks), it must fail with abidiff's report, or pass
# and report the addition.  Exit 0 pass, 1 fail, 77 skip (no abigail-tools).
set -u
: "${HT_TOP_SRCDIR:?}" "${HT_TESTS_BUILDDIR:?}"
check=$HT_TOP_SRCDIR/tests/abi/abi-check.sh
if [ -z "${ABIDW:-}" ] || [ -z "${ABIDIFF:-}" ]; then
	echo "SKIP: abidw and abidiff not found when configure ran (Debian package abigail-tools)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ht-abi-selftest-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
# variant NAME FILE SED-SCRIPT: a copy of the baseline with FILE edited
variant() {
	mkdir -p "$tmp/$1"
	cp "$HT_TOP_SRCDIR"/tests/abi/baseline/*.abi "$tmp/$1/" || exit 1
	sed "$3" "$HT_TOP_SRCDIR/tests/abi/baseline/$2" >"$tmp/$1/$2" || exit 1
	cmp -s "$tmp/$1/$2" "$HT_TOP_SRCDIR/tests/abi/baseline/$2" && {
		echo "ERROR: the edit of $1 changed nothing in $2"
		exit 99
	}
}
# run NAME: abi-check.sh against that copy; its status in $st, output in $tmp/NAME.out
run() {
	HT_ABI_BASELINE=$tmp/$1 HT_ABI_CURRENT=$tmp/$1/current sh "$check" >"$tmp/$1.out" 2>&1
	st=$?
}

# the build as it is: passes
mkdir -p "$tmp/same" && cp "$HT_TOP_SRCDIR"/tests/abi/baseline/*.abi "$tmp/same/"
run same
[ $st -eq 0 ] || { fail "the baseline itself: status $st"; cat "$tmp/same.out"; }

# an operation id whose number differs from the baseline's
variant opid probe-plugin.abi "s/name='probe_id_HYPERTEST_OP_CREATE' value='1'/name='probe_id_HYPERTEST_OP_CREATE' value='7'/"
run opid
if [ $st -ne 1 ] || ! grep -q "probe_id_HYPERTEST_OP_CREATE' from value '7' to '1'" "$tmp/opid.out"; then
	fail "a changed operation id: status $st"
	cat "$tmp/opid.out"
fi

# an enumerator value of the embedding API
variant enum probe-embed.abi "s/name='HYPERTEST_EVENT_TEST_END' value='4'/name='HYPERTEST_EVENT_TEST_END' value='12'/"
run enum
if [ $st -ne 1 ] || ! grep -q "HYPERTEST_EVENT_TEST_END' from value '12' to '4'" "$tmp/enum.out"; then
	fail "a changed enumerator: status $st"
	cat "$tmp/enum.out"
fi

# an upcall id and an error code the baseline lacks: additions, which pass
variant added probe-plugin.abi "/name='probe_id_HYPERTEST_UP_BUFFER_FREE'/d; /name='HYPERTEST_ERR_DIGEST'/d"
run added
if [ $st -ne 0 ] || ! grep -q "compatible additions to probe-plugin" "$tmp/added.out" ||
	! grep -q "probe_id_HYPERTEST_UP_BUFFER_FREE" "$tmp/added.out"; then
	fail "an added id: status $st"
	cat "$tmp/added.out"
fi

# a function the baseline lacks: an addition
variant addfn libhypertest.abi "/<elf-symbol name='hypertest_cancel'/d; /<function-decl name='hypertest_cancel'/,/<\/function-decl>/d"
run addfn
if [ $st -ne 0 ] || ! grep -q "hypertest_cancel" "$tmp/addfn.out"; then
	fail "an added function: status $st"
	cat "$tmp/addfn.out"
fi

# a function the baseline has and the build lacks: removed, which fails
mkdir -p "$tmp/removed"
cp "$HT_TOP_SRCDIR"/tests/abi/baseline/*.abi "$tmp/removed/"
awk '
	/<elf-symbol name=.hypertest_cancel./ { print; gsub(/hypertest_cancel/, "hypertest_gone"); print; next }
	/<function-decl name=.hypertest_cancel./ { grab = 1; block = "" }
	grab { block = block $0 "\n" }
	{ print }
	grab && /<\/function-decl>/ { grab = 0; gsub(/hypertest_cancel/, "hypertest_gone", block); printf "%s", block }
' "$HT_TOP_SRCDIR/tests/abi/baseline/libhypertest.abi" >"$tmp/removed/libhypertest.abi"
grep -q "hypertest_gone" "$tmp/removed/libhypertest.abi" || { echo "ERROR: no function added to the copy"; exit 99; }
run removed
if [ $st -ne 1 ] || ! grep -q "1 Removed function" "$tmp/removed.out" ||
	! grep -q "hypertest_gone" "$tmp/removed.out"; then
	fail "a removed function: status $st"
	cat "$tmp/removed.out"
fi

[ $failures -eq 0 ] || exit 1
echo "abi-check.sh: changes fail, additions pass"
exit 0
