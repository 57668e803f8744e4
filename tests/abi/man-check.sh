#!/bin/sh
# man-check.sh - the man pages against the code: every exported function and
# every error code in libhypertest(3), every upcall and operation id in
# hypertest-plugin(7), every top-level configuration key in
# hypertest.config(5), every long option of hypertest in hypertest(1) and of
# hypertest-function in hypertest-function(1); and every page renders with
# groff -ww without a warning.
# Exit 0 pass, 1 fail, 77 skip (groff missing; the name checks still ran).
set -u

top=${HT_TOP_SRCDIR:-$(dirname "$0")/../..}
inc=$top/include/hypertest
man=$top/man

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/man-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The text of a page as a reader would search it: comment lines dropped,
# "\-" as "-", font changes and "\&" removed.
page_text() {
	sed -e '/^\.\\"/d' -e 's/\\-/-/g' -e 's/\\&//g' \
		-e 's/\\f[BIRP]//g' -e 's/\\f(..//g' "$1"
}

# Every match of the extended regular expression $1 on stdin, one a line,
# with the text matched by $2 (a prefix) and $3 (a suffix) cut off.
matches() {
	awk -v re="$1" -v pre="$2" -v post="$3" '{
		s = $0
		while (match(s, re)) {
			m = substr(s, RSTART, RLENGTH)
			sub("^" pre, "", m)
			sub(post "$", "", m)
			print m
			s = substr(s, RSTART + RLENGTH)
		}
	}'
}

# check WHAT LIST PAGE MIN: every word of the file LIST appears, as a whole
# word, in the text of PAGE; LIST holds at least MIN words.
check() {
	what=$1 list=$2 page=$3 min=$4
	n=$(sort -u "$list" | grep -c .)
	if [ "$n" -lt "$min" ]; then
		fail "found only $n $what in the sources (expected at least $min): cannot check $page"
		return
	fi
	if [ ! -f "$man/$page" ]; then
		fail "$man/$page is missing"
		return
	fi
	page_text "$man/$page" > "$tmp/text"
	sort -u "$list" > "$tmp/words"
	missing=0
	while read -r word; do
		if ! grep -q -w -F -e "$word" "$tmp/text"; then
			fail "$page does not mention $what $word"
			missing=$((missing + 1))
		fi
	done < "$tmp/words"
	[ "$missing" -eq 0 ] && echo "ok: $n $what in $page"
}

# Functions declared with HYPERTEST_EXPORT in hypertest.h (as exports.sh
# reads them).
sed -n 's/^HYPERTEST_EXPORT .*[ *]\(hypertest_[a-z0-9_]*\)(.*/\1/p' \
	"$inc/hypertest.h" > "$tmp/functions"
check "function" "$tmp/functions" libhypertest.3 40

# Error codes: the members of enum hypertest_error.
sed -n '/^enum hypertest_error {/,/^};/p' "$inc/common.h" |
	matches 'HYPERTEST_[A-Z0-9_]+ *=' '' ' *=' > "$tmp/errors"
check "error code" "$tmp/errors" libhypertest.3 20

# Upcall and operation ids: "#define HYPERTEST_UP_X 1" and the like.
matches '^#define HYPERTEST_(UP|OP|RUNNER|PROVIDER)_[A-Z0-9_]+ +[0-9]+' \
	'#define ' ' +[0-9]+' < "$inc/plugin.h" > "$tmp/ids"
check "plugin ABI id" "$tmp/ids" hypertest-plugin.7 35

# Top-level configuration keys: the table core_keys[] of config_check.c.
sed -n '/core_keys\[\] = {/,/};/p' "$top/libhypertest/core/config_check.c" |
	matches '"[A-Za-z0-9_]+"' '"' '"' > "$tmp/keys"
check "configuration key" "$tmp/keys" hypertest.config.5 10

# Long options: the struct option tables of the two programs.
for f in "$top"/cli/*.c; do
	[ "$(basename "$f")" = function.c ] && continue
	cat "$f"
done | matches '[{]"[a-z][a-z0-9-]*", *[a-z]+_argument' '[{]"' '", *[a-z]+_argument' |
	sed 's/^/--/' > "$tmp/options"
check "option" "$tmp/options" hypertest.1 10
matches '[{]"[a-z][a-z0-9-]*", *[a-z]+_argument' '[{]"' '", *[a-z]+_argument' \
	< "$top/cli/function.c" | sed 's/^/--/' > "$tmp/function-options"
check "option" "$tmp/function-options" hypertest-function.1 3

# Rendering.
if ! command -v groff >/dev/null 2>&1; then
	echo "man-check: groff not found: rendering not checked" >&2
	[ "$failures" -eq 0 ] && exit 77
	exit 1
fi
pages=0
for page in "$man"/*.[1-9]; do
	[ -f "$page" ] || continue
	pages=$((pages + 1))
	if ! groff -man -ww -z "$page" > "$tmp/warnings" 2>&1; then
		fail "groff failed on $page"
	fi
	if [ -s "$tmp/warnings" ]; then
		fail "groff -ww warns about $page:"
		cat "$tmp/warnings" >&2
	fi
done
[ "$pages" -ge 5 ] || fail "found $pages man pages in $man, expected 5"
[ "$failures" -eq 0 ] && echo "ok: $pages pages render without warnings"

if [ "$failures" -ne 0 ]; then
	echo "man-check: $failures failure(s)" >&2
	exit 1
fi
exit 0
