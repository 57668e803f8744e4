"""s3_api.py - S3 bucket configuration (REST-XML), which s3rver does not implement.

operation(): the S3 operation a path-style request is (for the request log
and for dispatch).  S3Buckets serves CreateBucket (location constraint
rules of the region), HeadBucket, DeleteBucket, GetBucketLocation, and the
public access block, default encryption, lifecycle and tagging
subresources (Put/Get/Delete), each checked against botocore's model of
its operation, with the Content-MD5 or x-amz-checksum-* that S3 requires of
some of them verified.  When an upstream S3 server (s3rver) holds the
objects, bucket creation, existence, deletion, listing and DeleteObjects
go to it too, so objects of the same bucket keep working.

A bucket CreateBucket makes has what S3 gives a new bucket today: every
public access block setting on and SSE-S3 (AES256) default encryption.  A
bucket that exists only upstream (made before) has no public access block.
"""

import base64
import hashlib
import re
import urllib.parse
import zlib

import modelcheck
import xmlshape
from awsfmt import ApiError, request_id
from httpserv import Response

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
BUCKET_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$")
IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# (method, subresource) -> operation, for a bucket path
BUCKET_OPS = {
    ("PUT", None): "CreateBucket", ("HEAD", None): "HeadBucket", ("DELETE", None): "DeleteBucket",
    ("GET", None): "ListObjects", ("GET", "list-type"): "ListObjectsV2",
    ("POST", "delete"): "DeleteObjects", ("GET", "location"): "GetBucketLocation",
    ("PUT", "publicAccessBlock"): "PutPublicAccessBlock",
    ("GET", "publicAccessBlock"): "GetPublicAccessBlock",
    ("DELETE", "publicAccessBlock"): "DeletePublicAccessBlock",
    ("PUT", "encryption"): "PutBucketEncryption", ("GET", "encryption"): "GetBucketEncryption",
    ("DELETE", "encryption"): "DeleteBucketEncryption",
    ("PUT", "lifecycle"): "PutBucketLifecycleConfiguration",
    ("GET", "lifecycle"): "GetBucketLifecycleConfiguration",
    ("DELETE", "lifecycle"): "DeleteBucketLifecycle",
    ("PUT", "tagging"): "PutBucketTagging", ("GET", "tagging"): "GetBucketTagging",
    ("DELETE", "tagging"): "DeleteBucketTagging",
    ("GET", "uploads"): "ListMultipartUploads", ("GET", "versioning"): "GetBucketVersioning",
    ("GET", "cors"): "GetBucketCors", ("PUT", "cors"): "PutBucketCors",
    ("GET", "policy"): "GetBucketPolicy", ("PUT", "policy"): "PutBucketPolicy",
}
OBJECT_OPS = {
    ("PUT", None): "PutObject", ("GET", None): "GetObject", ("HEAD", None): "HeadObject",
    ("DELETE", None): "DeleteObject", ("POST", "uploads"): "CreateMultipartUpload",
    ("PUT", "partNumber"): "UploadPart", ("POST", "uploadId"): "CompleteMultipartUpload",
    ("DELETE", "uploadId"): "AbortMultipartUpload", ("GET", "uploadId"): "ListParts",
    ("GET", "tagging"): "GetObjectTagging", ("PUT", "tagging"): "PutObjectTagging",
}
SUBRESOURCES = ("list-type", "delete", "location", "publicAccessBlock", "encryption", "lifecycle",
                "tagging", "uploads", "uploadId", "partNumber", "versioning", "cors", "policy",
                "acl", "website", "logging", "notification", "replication", "ownershipControls")
# served here; "upstream" ones also go to the upstream S3 server
CONFIG = {"publicAccessBlock": ("PublicAccessBlockConfiguration", "NoSuchPublicAccessBlockConfiguration",
                                "The public access block configuration was not found"),
          "encryption": ("ServerSideEncryptionConfiguration",
                         "ServerSideEncryptionConfigurationNotFoundError",
                         "The server side encryption configuration was not found"),
          "lifecycle": ("LifecycleConfiguration", "NoSuchLifecycleConfiguration",
                        "The lifecycle configuration does not exist"),
          "tagging": ("Tagging", "NoSuchTagSet", "The TagSet does not exist")}
SERVED = {"CreateBucket", "HeadBucket", "DeleteBucket", "GetBucketLocation", "ListObjectsV2",
          "DeleteObjects"} | {op for (m, sub), op in BUCKET_OPS.items() if sub in CONFIG}
UPSTREAM = {"CreateBucket", "HeadBucket", "DeleteBucket", "ListObjectsV2", "DeleteObjects"}
DEFAULT_ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                                 "BucketKeyEnabled": False}]}
NEW_BUCKET_PAB = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                  "RestrictPublicBuckets": True}


def operation(req):
    """(operation, bucket, key) of a path-style S3 request."""
    parts = req.raw_path.lstrip("/").split("/", 1)
    bucket = urllib.parse.unquote(parts[0])
    key = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    names = [p.partition("=")[0] for p in req.raw_query.split("&") if p]
    sub = next((n for n in SUBRESOURCES if n in names), None)
    if not bucket:
        return ("ListBuckets" if req.method == "GET" else None), None, None
    if key is None:
        return BUCKET_OPS.get((req.method, sub)), bucket, None
    if req.method == "PUT" and sub is None and req.header("x-amz-copy-source"):
        return "CopyObject", bucket, key
    return OBJECT_OPS.get((req.method, sub)), bucket, key


# ---- checksums --------------------------------------------------------------------------

def _crc_table(poly, bits):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc_table(0x82F63B78, 32)
_CRC64NVME = _crc_table(0x9A6C9329AC4BC9B5, 64)


def _crc(table, data, mask, nbytes):
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return (c ^ mask).to_bytes(nbytes, "big")


CHECKSUMS = {
    "crc32": lambda d: (zlib.crc32(d) & 0xFFFFFFFF).to_bytes(4, "big"),
    "crc32c": lambda d: _crc(_CRC32C, d, 0xFFFFFFFF, 4),
    "crc64nvme": lambda d: _crc(_CRC64NVME, d, 0xFFFFFFFFFFFFFFFF, 8),
    "sha1": lambda d: hashlib.sha1(d).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
}


def check_integrity(req, required, what):
    """Content-MD5 and x-amz-checksum-* verified; one of them required when S3 requires it."""
    given = False
    md5 = req.header("Content-MD5")
    if md5 is not None:
        given = True
        try:
            raw = base64.b64decode(md5, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 16:
            raise ApiError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        if raw != hashlib.md5(req.body).digest():
            raise ApiError(400, "BadDigest", "The Content-MD5 you specified did not match what we "
                           "received.")
    for alg, fn in CHECKSUMS.items():
        v = req.header("x-amz-checksum-" + alg)
        if v is None:
            continue
        given = True
        if v != base64.b64encode(fn(req.body)).decode():
            raise ApiError(400, "BadDigest", "The %s you specified did not match the calculated "
                           "checksum." % alg.upper())
    if required and not given:
        raise ApiError(400, "InvalidRequest", "Missing required header for this request: "
                       "Content-MD5 or x-amz-checksum-* (%s)" % what)


# ---- the buckets ----------------------------------------------------------------------------

def _malformed(detail):
    return ApiError(400, "MalformedXML", "The XML you provided was not well-formed or did not "
                    "validate against our published schema (%s)" % detail)


def _xml(root, body, status=200, headers=()):
    rid = request_id()
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + body.replace(
        "<%s>" % root, '<%s xmlns="%s">' % (root, NS), 1)
    return Response(status, text, [("Content-Type", "application/xml"),
                                   ("x-amz-request-id", rid)] + list(headers))


def _empty(status=200, headers=()):
    return Response(status, b"", [("x-amz-request-id", request_id())] + list(headers))


class S3Buckets:
    def __init__(self, region, upstream=None):
        """upstream: async (method, path, req or None) -> Response, or None."""
        self.region = region
        self.upstream = upstream
        self.buckets = {}

    def reset(self):
        self.buckets = {}

    def _model(self, op):
        return modelcheck.operation("s3", op)

    def params(self, op, req, bucket):
        """The request's members by the operation's model; the payload parsed."""
        model = self._model(op)
        shape = model.input_shape
        params = {}
        if shape is None:
            return model, params
        query = urllib.parse.parse_qs(req.raw_query, keep_blank_values=True)
        payload = shape.serialization.get("payload")
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri":
                params[name] = bucket
            elif loc == "header" and req.header(wire) is not None:
                params[name] = xmlshape._scalar(member, req.header(wire))
            elif loc == "querystring" and wire in query:
                params[name] = xmlshape._scalar(member, query[wire][-1])
            elif name == payload and req.body.strip():
                if member.type_name == "structure":
                    try:
                        params[name] = xmlshape.parse_xml(member, req.body)
                    except xmlshape.ShapeError as e:
                        raise _malformed(str(e)) from None
        try:
            modelcheck.validate(model, params)
        except modelcheck.ModelError as e:
            if op == "CreateBucket" and all("locationConstraint" in x for x in e.errors):
                raise ApiError(400, "InvalidLocationConstraint",
                               "The specified location-constraint is not valid") from None
            raise _malformed(str(e)) from None
        return model, params

    async def exists(self, bucket):
        if bucket in self.buckets:
            if self.upstream is None:
                return True
        if self.upstream is not None:
            resp = await self.upstream("HEAD", "/" + urllib.parse.quote(bucket), None)
            if resp.status != 200:
                self.buckets.pop(bucket, None)
                return False
            self.buckets.setdefault(bucket, {"region": self.region, "encryption": DEFAULT_ENCRYPTION})
            return True
        return False

    async def _state(self, bucket):
        if not await self.exists(bucket):
            raise ApiError(404, "NoSuchBucket", "The specified bucket does not exist")
        return self.buckets[bucket]

    async def handle(self, op, req, bucket):
        model, p = self.params(op, req, bucket)
        required = bool(model.http_checksum.get("requestChecksumRequired")
                        or model.metadata.get("httpChecksumRequired"))
        check_integrity(req, required, op)
        if op == "CreateBucket":
            return await self._create(req, bucket, p)
        if op == "HeadBucket":
            st = await self._state(bucket)
            return _empty(headers=[("x-amz-bucket-region", st["region"])])
        if op == "DeleteBucket":
            await self._state(bucket)
            if self.upstream is not None:
                resp = await self.upstream("DELETE", req.target, req)
                if resp.status < 300:
                    self.buckets.pop(bucket, None)
                return resp
            del self.buckets[bucket]
            return _empty(204)
        if op in ("ListObjectsV2", "DeleteObjects"):
            await self._state(bucket)
            if self.upstream is None:
                if op == "ListObjectsV2":
                    return _xml("ListBucketResult", "<ListBucketResult><Name>%s</Name><KeyCount>0"
                                "</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
                                "</ListBucketResult>" % xmlshape.escape(bucket))
                raise ApiError(501, "NotImplemented", "no upstream S3 server holds objects")
            return await self.upstream(req.method, req.target, req)
        if op == "GetBucketLocation":
            st = await self._state(bucket)
            loc = "" if st["region"] == "us-east-1" else st["region"]
            return _xml("LocationConstraint", "<LocationConstraint>%s</LocationConstraint>" % loc)
        return await self._config(op, req, bucket, p)

    async def _create(self, req, bucket, p):
        if not BUCKET_RE.match(bucket) or IP_RE.match(bucket) or ".." in bucket:
            raise ApiError(400, "InvalidBucketName", "The specified bucket is not valid.")
        loc = (p.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        if self.region == "us-east-1":
            if loc == "us-east-1":
                raise ApiError(400, "InvalidLocationConstraint",
                               "The specified location-constraint is not valid")
            if loc is not None:
                raise ApiError(400, "IllegalLocationConstraintException",
                               "The %s location constraint is incompatible for the region specific "
                               "endpoint this request was sent to." % loc)
        elif loc != self.region:
            raise ApiError(400, "IllegalLocationConstraintException",
                           "The %s location constraint is incompatible for the region specific "
                           "endpoint this request was sent to." % (loc or "unspecified"))
        if await self.exists(bucket):
            if self.region == "us-east-1":    # us-east-1 answers 200 to its owner
                return _empty(headers=[("Location", "/" + bucket)])
            raise ApiError(409, "BucketAlreadyOwnedByYou", "Your previous request to create the "
                           "named bucket succeeded and you already own it.")
        if self.upstream is not None:
            resp = await self.upstream("PUT", "/" + urllib.parse.quote(bucket), req)
            if resp.status >= 300:
                return resp
        self.buckets[bucket] = {"region": self.region, "publicAccessBlock": dict(NEW_BUCKET_PAB),
                                "encryption": DEFAULT_ENCRYPTION}
        return _empty(headers=[("Location", "/" + bucket)])

    async def _config(self, op, req, bucket, p):
        st = await self._state(bucket)
        sub = next(s for (m, s), o in BUCKET_OPS.items() if o == op)
        member, code, message = CONFIG[sub]
        if req.method == "DELETE":
            st.pop(sub, None)
            return _empty(204)
        if req.method == "GET":
            value = st.get(sub)
            if value is None:
                raise ApiError(404, code, message)
            shape = self._model(op.replace("Get", "Put", 1)).input_shape.members[member]
            return _xml(member, xmlshape.to_xml(shape, value, member))
        value = p.get(member)
        if value is None:
            raise _malformed("the %s document is missing" % member)
        getattr(self, "_check_" + sub)(value)
        st[sub] = value
        return _empty()

    @staticmethod
    def _check_publicAccessBlock(v):
        pass

    @staticmethod
    def _check_encryption(v):
        for rule in v.get("Rules", []):
            d = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if d.get("KMSMasterKeyID") and d.get("SSEAlgorithm") == "AES256":
                raise ApiError(400, "InvalidArgument", "a KMSMasterKeyID is not applicable if the "
                               "default sse algorithm is not aws:kms or aws:kms:dsse")

    @staticmethod
    def _check_lifecycle(v):
        ids = set()
        rules = v.get("Rules", [])
        if not rules:
            raise _malformed("a LifecycleConfiguration needs at least one Rule")
        for r in rules:
            if r.get("ID") in ids and r.get("ID"):
                raise ApiError(400, "InvalidArgument", "Rule ID must be unique. Found same ID for "
                               "more than one rule")
            ids.add(r.get("ID"))
            if "Filter" not in r and "Prefix" not in r:
                raise _malformed("a Rule needs a Filter or a Prefix")
            days = (r.get("Expiration") or {}).get("Days")
            if days is not None and days < 1:
                raise ApiError(400, "InvalidArgument", "'Days' for Expiration action must be a "
                               "positive integer")
            if not any(k in r for k in ("Expiration", "Transitions", "NoncurrentVersionExpiration",
                                        "NoncurrentVersionTransitions",
                                        "AbortIncompleteMultipartUpload")):
                raise _malformed("a Rule needs at least one action")

    @staticmethod
    def _check_tagging(v):
        keys = [t.get("Key") for t in v.get("TagSet", [])]
        if len(keys) != len(set(keys)):
            raise ApiError(400, "InvalidTag", "Cannot provide multiple Tags with the same key")
        if len(keys) > 50:
            raise ApiError(400, "BadRequest", "Object tags cannot be greater than 50")
