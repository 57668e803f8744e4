#!/bin/sh
# long-functions.sh [LIMIT] [DIR...]: the C functions longer than LIMIT
# lines (default 120) in libhypertest/, plugins/ and cli/ (or the DIRs
# given), longest first, as "LINES FILE:LINE NAME".  A report, never a
# gate: it exits 0 whatever it finds.
#
# The heuristic follows the tree's style: a function's body opens with "{"
# alone at the start of a line and closes with "}" at the start of a line;
# its name is the identifier before the first "(" of the lines just above.
set -u
cd "$(dirname "$0")/.." || exit 0
limit=${1:-120}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- libhypertest plugins cli
find "$@" -name '*.c' -type f | LC_ALL=C sort | while read -r f; do
	awk -v limit="$limit" -v file="$f" '
	# the last lines before a body, to find the name in a signature that
	# spans several lines
	/^\{/ && start == 0 {
		name = (prev1 ~ /\(/) ? prev1 : prev2 " " prev1
		sub(/\(.*/, "", name)
		n = split(name, w, /[ \t*]+/)
		name = w[n]
		start = NR
		head = (prev1 ~ /\(/) ? NR - 1 : NR - 2
		next
	}
	/^\}/ && start > 0 {
		len = NR - head + 1
		if (len > limit)
			printf "%d %s:%d %s\n", len, file, head, name
		start = 0
	}
	{ prev2 = prev1; prev1 = $0 }
	' "$f"
done | LC_ALL=C sort -k1,1nr
exit 0
