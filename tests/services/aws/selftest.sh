#!/bin/sh
# selftest.sh - runs the self-tests of the aws test services (test_endpoint.py,
# test_services.py) as one automake test.  Exit 77 (skipped) when no python3
# with botocore is installed (Debian package python3-botocore).
here=$(cd "$(dirname "$0")" && pwd) || exit 1
for py in python3 /usr/bin/python3; do
	if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import botocore' 2>/dev/null; then
		cd "$here" || exit 1
		PYTHONDONTWRITEBYTECODE=1 exec "$py" -m unittest -v test_endpoint test_services
	fi
done
echo "selftest.sh: no python3 with botocore (Debian package python3-botocore): skipped" >&2
exit 77
