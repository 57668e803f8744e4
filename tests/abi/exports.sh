#!/bin/sh
# The symbols libhypertest.so exports must be exactly the functions the
# public headers declare with HYPERTEST_EXPORT.
set -u
top_build=${HT_TOP_BUILDDIR:?}
top_src=${HT_TOP_SRCDIR:?}
lib="$top_build/libhypertest/.libs/libhypertest.so"
[ -f "$lib" ] || { echo "missing $lib"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "nm not found"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sed 's/@.*//' | sort -u > "$tmp/exported"
# declarations: "HYPERTEST_EXPORT <type> [*]name(" possibly with the name on the line
sed -n 's/^HYPERTEST_EXPORT .*[ *]\(hypertest_[a-z0-9_]*\)(.*/\1/p' \
	"$top_src/include/hypertest/hypertest.h" | sort -u > "$tmp/declared"

if ! cmp -s "$tmp/exported" "$tmp/declared"; then
	echo "exported symbols differ from the public declarations (< exported, > declared):"
	diff "$tmp/exported" "$tmp/declared"
	exit 1
fi
if grep -v '^hypertest_' "$tmp/exported"; then
	echo "symbols outside the hypertest_ prefix are exported"
	exit 1
fi
echo "ok: $(wc -l < "$tmp/exported") exported symbols match the declarations"
exit 0
