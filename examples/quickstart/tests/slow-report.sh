#!/bin/sh
# passes after a second of work, leaving a report among its artifacts
sleep 1
echo "report: all rows balanced"
