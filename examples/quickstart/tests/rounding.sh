#!/bin/sh
# fails on purpose, to show what a failure looks like
expected=3
got=$(( 10 / 3 + 1 ))
if [ "$got" -ne "$expected" ]; then
	echo "rounding: expected $expected, got $got" >&2
	exit 1
fi
