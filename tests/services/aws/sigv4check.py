"""sigv4check.py - verifies an incoming request's Signature Version 4 with botocore.

The signature is recomputed by botocore's own signer (SigV4Auth, or
S3SigV4Auth for S3, which does not double-encode the path), fed with exactly
the headers the client listed in SignedHeaders, the raw path as it came over
the wire, the query re-encoded the way AWS canonicalises it, the body, and
the time from X-Amz-Date.  Everything botocore would add by itself (dates,
tokens, host) is kept out of the request so that it signs what we were sent.

check() returns None when the request is authentic, else an AuthError
carrying the code and message AWS answers with.
"""

import datetime
import hashlib
import hmac
import re
import urllib.parse

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = datetime.timedelta(minutes=5)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
SIG_MISMATCH = ("The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. "
                "Consult the service documentation for details.")
BAD_TOKEN = "The security token included in the request is invalid."


class AuthError(Exception):
    def __init__(self, code, message, status=403):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class _Exact:
    """Mixin: sign exactly the given headers, no more (botocore otherwise
    drops some such as user-agent and adds host itself)."""

    signed = None

    def headers_to_sign(self, request):
        return self.signed


class _ExactV4(_Exact, SigV4Auth):
    pass


class _ExactS3V4(_Exact, S3SigV4Auth):
    pass


def _parse_authorization(value):
    m = AUTH_RE.match(value.strip())
    if not m:
        algo = value.strip().split(" ", 1)[0]
        raise AuthError("IncompleteSignatureException",
                        "Unsupported authorization algorithm %r: only AWS4-HMAC-SHA256 is accepted." % algo)
    fields = {}
    for part in m.group(1).split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            fields[k.strip()] = v.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise AuthError("IncompleteSignatureException",
                        " ".join("Authorization header requires '%s' parameter." % k for k in missing)
                        + " Authorization=" + value.split("Signature=")[0].strip())
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise AuthError("IncompleteSignatureException",
                        "Credential should be of the form "
                        "AKID/YYYYMMDD/region/service/aws4_request, got %r." % fields["Credential"])
    return cred, fields["SignedHeaders"], fields["Signature"]


def _timestamp(req, now):
    amz_date = req.header("X-Amz-Date")
    if amz_date is None:
        raise AuthError("IncompleteSignatureException",
                        "Authorization header requires existence of either a 'X-Amz-Date' "
                        "or a 'Date' header. (this stand-in reads X-Amz-Date only)")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise AuthError("IncompleteSignatureException",
                        "Date must be in ISO-8601 'basic format'. Got '%s'." % amz_date) from None
    fmt = "%Y%m%dT%H%M%SZ"
    if when < now - MAX_SKEW:
        raise AuthError("InvalidSignatureException",
                        "Signature expired: %s is now earlier than %s (%s - 5 min.)"
                        % (amz_date, (now - MAX_SKEW).strftime(fmt), now.strftime(fmt)))
    if when > now + MAX_SKEW:
        raise AuthError("InvalidSignatureException",
                        "Signature not yet current: %s is still later than %s (%s + 5 min.)"
                        % (amz_date, (now + MAX_SKEW).strftime(fmt), now.strftime(fmt)))
    return amz_date


def _query_pairs(raw):
    """Decoded (name, value) pairs; '+' stays a plus, as in RFC 3986."""
    pairs = []
    for part in raw.split("&"):
        if part:
            k, _, v = part.partition("=")
            pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
    return pairs


def check(req, service, region, credentials, now=None):
    """Verify req's signature for service ("lambda", "ecr", "servicequotas",
    "s3") in region (None: any).  credentials maps access key ids to
    {"secret": ..., "sessionToken": optional}."""
    auth = req.header("Authorization")
    if not auth:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    cred, signed_list, signature = _parse_authorization(auth)
    akid, date, cregion, cservice, _ = cred
    entry = credentials.get(akid)
    if entry is None:
        raise AuthError("UnrecognizedClientException", BAD_TOKEN)
    token = req.header("X-Amz-Security-Token")
    if (entry.get("sessionToken") or None) != token:
        raise AuthError("UnrecognizedClientException", BAD_TOKEN)
    if cservice != service:
        raise AuthError("InvalidSignatureException",
                        "Credential should be scoped to correct service: '%s'. " % service)
    if region is not None and cregion != region:
        raise AuthError("InvalidSignatureException",
                        "Credential should be scoped to a valid region, not '%s'. " % cregion)
    amz_date = _timestamp(req, now or datetime.datetime.now(datetime.timezone.utc))
    if date != amz_date[:8]:
        raise AuthError("InvalidSignatureException",
                        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                        "of date from HTTP: '%s' != '%s', from '%s'." % (date, amz_date[:8], amz_date))

    names = signed_list.split(";")
    if "host" not in names:
        raise AuthError("InvalidSignatureException",
                        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    signed = HTTPHeaders()
    for name in names:
        values = [v for n, v in req.headers if n.lower() == name]
        if not values:
            raise AuthError("InvalidSignatureException",
                            "Header '%s' is listed in SignedHeaders but is not in the request." % name)
        for v in values:
            signed[name] = v

    body_hash = req.header("X-Amz-Content-SHA256")
    actual = hashlib.sha256(req.body).hexdigest()
    if service == "s3":
        if body_hash is None:
            raise AuthError("InvalidRequest", "Missing required header for this request: "
                            "x-amz-content-sha256", 400)
        if body_hash != "UNSIGNED-PAYLOAD" and body_hash != actual:
            raise AuthError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                            "header does not match what was computed.", 400)
    elif body_hash is not None and body_hash != actual:
        raise AuthError("InvalidSignatureException", "The provided 'x-amz-content-sha256' "
                        "header does not match what was computed.")

    # Rebuild the request for botocore.  The URL keeps the raw path (botocore
    # encodes it once more for non-S3 services, as AWS does); the query goes
    # in as decoded pairs, which botocore encodes canonically.
    host = req.header("Host") or "localhost"
    aws_req = AWSRequest(method=req.method, url="http://%s%s" % (host, req.raw_path),
                         data=req.body)
    aws_req.params = _query_pairs(req.raw_query)
    aws_req.headers = HTTPHeaders()
    if body_hash is not None:
        aws_req.headers["X-Amz-Content-SHA256"] = body_hash
    aws_req.context["timestamp"] = amz_date
    signer_cls = _ExactS3V4 if service == "s3" else _ExactV4
    signer = signer_cls(Credentials(akid, entry["secret"], token), cservice, cregion)
    signer.signed = signed
    canonical = signer.canonical_request(aws_req)
    string_to_sign = signer.string_to_sign(aws_req, canonical)
    expected = signer.signature(string_to_sign, aws_req)
    if not hmac.compare_digest(expected, signature):
        raise AuthError("InvalidSignatureException" if service != "s3" else "SignatureDoesNotMatch",
                        SIG_MISMATCH + "\n\nThe Canonical String for this request should have been\n'"
                        + canonical + "'\n\nThe String-to-Sign should have been\n'"
                        + string_to_sign + "'\n")
    return akid
