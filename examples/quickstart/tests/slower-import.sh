#!/bin/sh
# passes after two seconds: the longest test sets the suite's duration
sleep 2
echo "imported 1000 rows"
