#!/bin/sh
# passes: 2 + 2 is 4
[ $((2 + 2)) -eq 4 ] || { echo "2 + 2 is not 4" >&2; exit 1; }
echo "2 + 2 = 4"
