#!/usr/bin/env python3
# aws-sigv4-botocore.py - signs one request with botocore, for check_sigv4's
# cross-check of plugins/provider-aws/sigv4.c.
#
# stdin: a JSON object {"method", "url" (percent-encoded), "headers":
# [[name, value], ...], "body_b64", "service", "region", "access_key",
# "secret_key", "token" (or null), "timestamp" ("20150830T123600Z")}.
# stdout: the Authorization header on the first line, then the canonical
# request botocore signed.
# With a JSON array of such objects on stdin (one start of python for many
# requests), stdout is a JSON array of {"authorization", "canonical_request"}.
# Exit status 77 when botocore is not installed.
import base64
import datetime
import types
import json
import sys

try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as e:
    print("botocore is not available: %s" % e, file=sys.stderr)
    sys.exit(77)


def sign(spec):
    when = datetime.datetime.strptime(spec["timestamp"], "%Y%m%dT%H%M%SZ")
    # botocore takes the signing time from get_current_datetime (recent
    # releases) or from datetime.datetime.utcnow() (Debian 12's 1.29)
    botocore.auth.get_current_datetime = lambda *a, **k: when

    class Fixed(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    botocore.auth.datetime = types.SimpleNamespace(datetime=Fixed,
                                                   timezone=datetime.timezone,
                                                   timedelta=datetime.timedelta)

    req = AWSRequest(method=spec["method"], url=spec["url"],
                     data=base64.b64decode(spec["body_b64"]))
    for name, value in spec["headers"]:
        req.headers[name] = value  # appends: repeated names are kept
    creds = Credentials(spec["access_key"], spec["secret_key"], spec.get("token"))
    cls = botocore.auth.S3SigV4Auth if spec["service"] == "s3" else botocore.auth.SigV4Auth
    signer = cls(creds, spec["service"], spec["region"])

    canonical = []
    original = signer.canonical_request

    def keep(request):
        cr = original(request)
        canonical.append(cr)
        return cr

    signer.canonical_request = keep
    signer.add_auth(req)
    return req.headers["Authorization"], canonical[-1]


def main():
    spec = json.load(sys.stdin)
    if isinstance(spec, list):
        out = []
        for one in spec:
            auth, cr = sign(one)
            out.append({"authorization": auth, "canonical_request": cr})
        json.dump(out, sys.stdout)
    else:
        auth, cr = sign(spec)
        sys.stdout.write(auth + "\n" + cr)


if __name__ == "__main__":
    main()
