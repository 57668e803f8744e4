#!/bin/sh
# The public headers compile alone, as C99 (pedantic) and as C++.
set -u
top_src=${HT_TOP_SRCDIR:?}
cc=${CC:-cc}
cxx=${CXX:-c++}
tmp=$(mktemp -d /tmp/ht-headers-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
for h in common.h hypertest.h plugin.h; do
	printf '#include <hypertest/%s>\n#include <hypertest/%s>\nint main(void) { return 0; }\n' "$h" "$h" >"$tmp/t.c"
	$cc -std=c99 -pedantic-errors -Wall -Wextra -Werror -I"$top_src/include" -c "$tmp/t.c" -o "$tmp/t.o" ||
		{ echo "FAIL: $h as C99"; status=1; }
	if command -v "$cxx" >/dev/null 2>&1; then
		cp "$tmp/t.c" "$tmp/t.cc"
		$cxx -std=c++11 -pedantic-errors -Wall -Wextra -Werror -I"$top_src/include" -c "$tmp/t.cc" -o "$tmp/t.o" ||
			{ echo "FAIL: $h as C++"; status=1; }
	else
		echo "no C++ compiler: C++ check of $h skipped"
	fi
done
# C++ linkage: the declarations must be extern "C"
if command -v "$cxx" >/dev/null 2>&1; then
	printf '#include <hypertest/hypertest.h>\nconst char *(*f)(int) = hypertest_strerror;\nint main(void) { return f(0) == 0; }\n' >"$tmp/l.cc"
	$cxx -I"$top_src/include" -c "$tmp/l.cc" -o "$tmp/l.o" && nm "$tmp/l.o" | grep -q ' U hypertest_strerror$' ||
		{ echo "FAIL: hypertest_strerror is not declared extern \"C\""; status=1; }
fi
[ $status -eq 0 ] && echo "ok"
exit $status
