#!/bin/sh
# man-check.sh - the man pages against the code: every exported function and
# every error code in libhypertest(3), every upcall and operation id in
# hypertest-plugin(7), every top-level configuration key in
# hypertest.config(5) and README.md, every command and long option of
# hypertest in hypertest(1) (the commands in README.md too) and every long
# option of hypertest-function in hypertest-function(1); every plugin that
# plugins/ registers in README.md, hypertest(1), hypertest-plugin(7) and a
# section of its own in hypertest.config(5), which names every option of
# the plugin's table (its "option_names[]"); every page listed in
# man/Makefile.am and every page in the SEE ALSO of hypertest(1); every
# citation of DESIGN.md naming one of its sections; and every page renders
# with groff -ww without a warning.
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

# in_text WHAT WORD FILE LABEL: WORD appears as a whole word in FILE (text).
in_text() {
	grep -q -w -F -e "$2" "$3" || fail "$4 does not mention $1 $2"
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

# The same keys in README.md's list.
check_file() { # WHAT LIST FILE: every word of LIST in FILE
	sort -u "$2" > "$tmp/words"
	missing=0
	while read -r word; do
		if ! grep -q -w -F -e "$word" "$3"; then
			fail "$(basename "$3") does not mention $1 $word"
			missing=$((missing + 1))
		fi
	done < "$tmp/words"
	[ "$missing" -eq 0 ] && echo "ok: $(grep -c . "$tmp/words") $1 in $(basename "$3")"
}
check_file "configuration key" "$tmp/keys" "$top/README.md"

# Commands: the names of the command table of cli/usage.c, each a tagged
# paragraph (".B name" after ".TP") of hypertest(1)'s COMMANDS, and each
# "hypertest name" in README.md.
awk '/^[\t ]*\[CLI_CMD_[A-Z_]+\] *= *[{]/ { want = 1; next }
     want && match($0, /"[a-z][a-z-]*"/) { print substr($0, RSTART + 1, RLENGTH - 2); want = 0 }' \
	"$top/cli/usage.c" > "$tmp/commands"
n=$(grep -c . "$tmp/commands")
if [ "$n" -lt 8 ]; then
	fail "found only $n commands in cli/usage.c (expected at least 8)"
else
	sed -n '/^\.SH COMMANDS/,/^\.SH [^C]/p' "$man/hypertest.1" | page_text /dev/stdin |
		awk 'prev == ".TP" && /^\.BR? / { print $2 } { prev = $1 }' > "$tmp/documented"
	missing=0
	while read -r c; do
		grep -q -x -F -e "$c" "$tmp/documented" ||
			{ fail "hypertest.1 has no paragraph for the command $c in COMMANDS"; missing=1; }
		grep -q -e "hypertest $c\b" "$top/README.md" ||
			{ fail "README.md does not show the command hypertest $c"; missing=1; }
	done < "$tmp/commands"
	[ "$missing" -eq 0 ] && echo "ok: $n commands in hypertest.1 and README.md"
fi

# Plugins: each directory of plugins/ that registers one (a call naming
# HYPERTEST_KIND_RUNNER or _PROVIDER, then "name") and its option table.
page_text "$man/hypertest.1" > "$tmp/hypertest.1.txt"
page_text "$man/hypertest-plugin.7" > "$tmp/hypertest-plugin.7.txt"
plugins=0
for dir in "$top"/plugins/*/; do
	reg=$(cat "$dir"*.c 2>/dev/null |
		matches 'HYPERTEST_KIND_(RUNNER|PROVIDER), *"[a-z0-9_-]+"' 'HYPERTEST_KIND_' '"' |
		tr -d ' ')
	[ -n "$reg" ] || continue
	for r in $reg; do
		kind=${r%%,*}
		name=${r##*\"}
		plugins=$((plugins + 1))
		case $kind in
		RUNNER) title="Test runner" ;;
		*) title="Cloud provider" ;;
		esac
		grep -q -F -e "\`$name\`" "$top/README.md" ||
			fail "README.md does not mention the plugin $name (as \`$name\`)"
		in_text plugin "$name" "$tmp/hypertest.1.txt" hypertest.1
		in_text plugin "$name" "$tmp/hypertest-plugin.7.txt" hypertest-plugin.7
		# its section of hypertest.config(5): from its .SS to the next .SS or .SH
		awk -v t="$title \\(lq$name\\(rq" '
			/^\.S[SH] / { on = (substr($0, 5) == t) ; next }
			on' "$man/hypertest.config.5" > "$tmp/section.raw"
		if [ ! -s "$tmp/section.raw" ]; then
			fail "hypertest.config.5 has no section .SS $title \\(lq$name\\(rq for the plugin $name"
			continue
		fi
		page_text "$tmp/section.raw" > "$tmp/section"
		sed -n '/option_names\[\] *= *[{]/,/};/p' "$dir"*.c |
			matches '"[A-Za-z0-9_]+"' '"' '"' > "$tmp/plugin-options"
		n=$(grep -c . "$tmp/plugin-options")
		if [ "$n" -lt 1 ]; then
			fail "plugin $name: no option table (static const char *const option_names[]) in $dir"
			continue
		fi
		missing=0
		while read -r o; do
			if ! grep -q -w -F -e "$o" "$tmp/section"; then
				fail "hypertest.config.5 does not document option $o of the plugin $name"
				missing=1
			fi
		done < "$tmp/plugin-options"
		[ "$missing" -eq 0 ] && echo "ok: plugin $name and its $n options"
	done
done
[ "$plugins" -ge 6 ] || fail "found $plugins plugins in plugins/, expected at least 6"

# Pages: each installed page (man/Makefile.am) exists and hypertest(1)'s
# SEE ALSO names every other page.
pages_am=$(sed -n 's/^[\t ]*\([a-z][a-z.-]*\.[1-9]\)[\t \\]*$/\1/p' "$man/Makefile.am")
sed -n '/^\.SH SEE ALSO/,$p' "$man/hypertest.1" | page_text /dev/stdin > "$tmp/seealso"
for p in $pages_am; do
	[ -f "$man/$p" ] || fail "man/Makefile.am installs $p, which does not exist"
	[ "$p" = hypertest.1 ] && continue
	sect=${p##*.}
	base=${p%.*}
	grep -q -F -e "$base ($sect)" "$tmp/seealso" ||
		grep -q -F -e "$base($sect)" "$tmp/seealso" ||
		fail "hypertest.1 SEE ALSO does not list $base($sect)"
done
for p in "$man"/*.[1-9]; do
	echo "$pages_am" | grep -q -x -F -e "$(basename "$p")" ||
		fail "$(basename "$p") is not installed (man/Makefile.am)"
done

# DESIGN.md: every citation of it in the sources and documents names a
# section that exists ('DESIGN.md, "Results file"' or 'DESIGN.md
# ("Results file")', possibly across a line break in a comment).
if [ ! -f "$top/DESIGN.md" ]; then
	fail "DESIGN.md is missing"
else
	sed -n 's/^#\{1,4\} \(.*\)$/\1/p' "$top/DESIGN.md" > "$tmp/design-sections"
	cites=0
	for f in $(grep -rl -F 'DESIGN.md' "$top/libhypertest" "$top/plugins" "$top/cli" \
		"$top/include" "$top/tests/unit" "$top/tests/lib" "$top/tests/plugins" \
		"$top/ABI.md" 2>/dev/null); do
		case $f in *.c|*.h|*.js|*.md|*.py) ;; *) continue ;; esac
		tr '\n' ' ' < "$f" | sed -e 's#//# #g' -e 's#[*]# #g' -e 's/[ \t][ \t]*/ /g' \
			> "$tmp/flat"
		matches 'DESIGN\.md[,( ]*"[^"]*"' 'DESIGN\.md[,( ]*"' '"' < "$tmp/flat" > "$tmp/cites"
		all=$(matches 'DESIGN\.md' '' '' < "$tmp/flat" | grep -c .)
		[ "$all" -eq "$(grep -c . "$tmp/cites")" ] ||
			fail "$f cites DESIGN.md without naming a section (DESIGN.md, \"Section\")"
		while read -r name; do
			cites=$((cites + 1))
			grep -q -x -F -e "$name" "$tmp/design-sections" ||
				fail "$f cites DESIGN.md, \"$name\", which has no such section"
		done < "$tmp/cites"
	done
	[ "$cites" -ge 7 ] || fail "found $cites citations of DESIGN.md, expected at least 7"
	echo "ok: $cites citations of DESIGN.md name sections it has"
fi

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
