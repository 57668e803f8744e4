#!/bin/sh
# passes: string handling
s="hyper test"
[ "${s% *}" = "hyper" ] || exit 1
[ "${#s}" -eq 10 ] || exit 1
