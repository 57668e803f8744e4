"""lambda_api.py - the Lambda control and invoke API of the stand-in (REST-JSON).

Operations: Invoke (RequestResponse only), CreateFunction (PackageType
Image), GetFunction, GetFunctionConfiguration, UpdateFunctionCode (container
images), UpdateFunctionConfiguration, DeleteFunction, Put/Get/
DeleteFunctionConcurrency, ListTags, TagResource, UntagResource,
GetAccountSettings; each routed by botocore's own requestUri of the
operation.  Every function's invoke behaviour comes from its config entry
(see README.md) or, for a function CreateFunction makes, from the template
of its name, and can be replaced at run time.  Limits follow the real service: 6 MB request
and response payloads, 429 with Retry-After when throttled, ResourceConflict
while an update is in progress.
"""

import asyncio
import base64
import datetime
import hashlib
import json
import math
import os
import random
import re
import signal
import time
import urllib.parse
import uuid
from collections import Counter

import modelcheck
from awsfmt import ApiError, json_response
from httpserv import Response

PREFIX = "/2015-03-31/functions/"
MAX_REQUEST = 6291456          # "Request must be smaller than 6291456 bytes"
MAX_RESPONSE = 6291556         # the figure the real service's message names
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ARN_RE = re.compile(r"^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):)?(?:(\d{12}):function:)?"
                    r"([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
ROLE_RE = re.compile(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
FUNCTION_PATH_RE = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/([^/]+)")
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}   # image config -> Lambda
MIN_UNRESERVED = 100           # the unreserved concurrency Lambda always keeps
# the operations served, routed by their botocore requestUri
OPERATIONS = ("Invoke", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionCode",
              "CreateFunction", "UpdateFunctionConfiguration", "DeleteFunction",
              "PutFunctionConcurrency", "GetFunctionConcurrency", "DeleteFunctionConcurrency",
              "ListTags", "TagResource", "UntagResource", "GetAccountSettings")
IMAGE_RE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                      r"([a-z0-9]+(?:[._/-][a-z0-9]+)*)"
                      r"(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(sha256:[0-9a-f]{64}))$")
MODES = ("success", "echo", "command", "functionError", "fixed")
# Injected faults ("faults" of a function's behaviour), each counted:
#   throttle       429 TooManyRequestsException (Retry-After), before the run
#   server500/503  500 or 503 ServiceException, before the run
#   reset          the function runs, then the connection is reset (RST)
#   truncated      the function runs; half the body is sent, then close
#   garbage        the function runs; 200 with a body that is not JSON
#   slow           the function runs; the body sent in pieces over slowMs
#   functionError  200, X-Amz-Function-Error: Unhandled and an error payload
FAULT_KINDS = ("throttle", "server500", "server503", "reset", "truncated", "garbage", "slow",
               "functionError")


def _now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def check_behaviour(b):
    """Raise ValueError when a function's behaviour object is malformed."""
    if not isinstance(b, dict):
        raise ValueError("a function's behaviour must be a JSON object")
    mode = b.get("mode", "success")
    if mode not in MODES:
        raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), mode))
    if mode == "command":
        argv = b.get("command")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise ValueError('mode "command" needs "command": a non-empty list of strings')
    for key in ("throttle", "serverErrors"):
        rule = b.get(key)
        if rule is not None:
            if not isinstance(rule, dict) or not isinstance(rule.get("every"), int) or rule["every"] < 1 \
                    or not isinstance(rule.get("burst"), int) or rule["burst"] < 0:
                raise ValueError('%s must be {"burst": N >= 0, "every": M >= 1}' % key)
    if "faults" in b:
        check_faults(b["faults"])
    for key in ("delayMs", "concurrencyLimit", "updateDelayMs", "timeout", "timeoutMs"):
        if key in b and (not isinstance(b[key], (int, float)) or b[key] < 0):
            raise ValueError("%s must be a number >= 0" % key)


def check_faults(f):
    """Raise ValueError unless f is {"rate": 0..1, "seed": int, "kinds": {kind: weight},
    "slowMs": N, "retryAfter": N} (all but rate optional)."""
    if not isinstance(f, dict) or set(f) - {"rate", "seed", "kinds", "slowMs", "retryAfter"}:
        raise ValueError('faults must be {"rate": R, "seed": N, "kinds": {...}, "slowMs": N, '
                         '"retryAfter": N}')
    rate = f.get("rate")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError("faults.rate must be a number from 0 to 1")
    if not isinstance(f.get("seed", 0), int):
        raise ValueError("faults.seed must be an integer")
    kinds = f.get("kinds", {k: 1 for k in FAULT_KINDS})
    if not isinstance(kinds, dict) or not kinds or set(kinds) - set(FAULT_KINDS) or \
            not all(isinstance(w, (int, float)) and w >= 0 for w in kinds.values()) or \
            not sum(kinds.values()) > 0:
        raise ValueError("faults.kinds must map some of %s to weights >= 0" % ", ".join(FAULT_KINDS))
    for key in ("slowMs", "retryAfter"):
        if key in f and (not isinstance(f[key], int) or f[key] < 0):
            raise ValueError("faults.%s must be an integer >= 0" % key)


def pick_fault(f, seq):
    """The fault of invocation seq (None: none): the same seed gives the same
    faults to the same invocation numbers, whatever the order of arrival."""
    if not f:
        return None
    rng = random.Random("%d:%d" % (f.get("seed", 0), seq))
    if rng.random() >= f["rate"]:
        return None
    kinds = f.get("kinds", {k: 1 for k in FAULT_KINDS})
    names = sorted(kinds)
    return rng.choices(names, [kinds[k] for k in names])[0]


class Function:
    def __init__(self, name, behaviour, region, account, spec=None, pending_polls=0):
        self.name = name
        self.region = region
        self.account = account
        self.behaviour = behaviour
        # what CreateFunction / UpdateFunctionConfiguration set (Role,
        # MemorySize, Timeout, EphemeralStorage, Architectures, Environment,
        # Description); a function of the config has none
        self.spec = dict(spec or {})
        self.tags = {}
        self.reserved = None    # PutFunctionConcurrency
        self.pending_polls = pending_polls   # reads that still see State Pending
        self.image_arch = None  # the image config's architecture, when known
        self.image_uri = behaviour.get("imageUri") or \
            "%s.dkr.ecr.%s.amazonaws.com/hypertest:initial" % (account, region)
        self.code_sha = behaviour.get("codeSha256") or hashlib.sha256(self.image_uri.encode()).hexdigest()
        self.revision = str(uuid.uuid4())
        self.last_modified = _now_text()
        self.update = None      # dict while an update is pending or done
        self.reset_counters()

    def reset_counters(self):
        self.seq = 0
        self.invocations = 0
        self.billed_ms = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.statuses = Counter()
        self.faults = Counter()
        self.outcomes = {}      # testId -> [fault kind or "ok", ...] in order

    @property
    def arn(self):
        return "arn:aws:lambda:%s:%s:function:%s" % (self.region, self.account, self.name)

    def status(self):
        """(LastUpdateStatus, reason, reasonCode), finishing a due update."""
        u = self.update
        if u is None:
            return "Successful", None, None
        if u["state"] == "InProgress" and time.monotonic() >= u["due"]:
            if u["failure"]:
                u["state"] = "Failed"
                self.image_uri, self.code_sha = u["old"]
            else:
                u["state"] = "Successful"
        if u["state"] == "Failed":
            f = u["failure"]
            return "Failed", f.get("reason", "Update failed."), f.get("reasonCode", "ImageAccessDenied")
        return u["state"], None, None

    def timeout(self):
        return self.spec.get("Timeout", self.behaviour.get("timeout", 900))

    def poll(self):
        """A read of the configuration: one poll less while Pending."""
        if self.pending_polls > 0:
            self.pending_polls -= 1

    def configuration(self):
        st, reason, code = self.status()
        spec = self.spec
        cfg = {
            "FunctionName": self.name, "FunctionArn": self.arn,
            "Role": spec.get("Role", "arn:aws:iam::%s:role/%s-role" % (self.account, self.name)),
            "CodeSize": 0, "Description": spec.get("Description", ""), "Timeout": self.timeout(),
            "MemorySize": spec.get("MemorySize", self.behaviour.get("memorySize", 2048)),
            "LastModified": self.last_modified, "CodeSha256": self.code_sha,
            "Version": "$LATEST", "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": self.revision, "State": "Active", "LastUpdateStatus": st,
            "PackageType": "Image", "Architectures": spec.get("Architectures", ["x86_64"]),
            "EphemeralStorage": spec.get("EphemeralStorage", {"Size": 512}),
        }
        if spec.get("Environment", {}).get("Variables"):
            cfg["Environment"] = {"Variables": spec["Environment"]["Variables"]}
        if self.pending_polls > 0:
            cfg.update(State="Pending", StateReason="The function is being created.",
                       StateReasonCode="Creating")
        if reason:
            cfg["LastUpdateStatusReason"] = reason
            cfg["LastUpdateStatusReasonCode"] = code
        return cfg

    def stats(self):
        return {"invocations": self.invocations, "billedMs": self.billed_ms,
                "inFlight": self.in_flight,
                "maxInFlight": self.max_in_flight,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "faults": dict(sorted(self.faults.items())),
                "outcomes": self.outcomes}


def _rule_hits(rule, seq):
    return bool(rule) and seq % rule["every"] < rule["burst"]


def _error_payload(message, etype):
    return json.dumps({"errorMessage": message, "errorType": etype}).encode()


class LambdaService:
    def __init__(self, region, account, image_source, quota, iam=None, settings=None):
        self.region = region
        self.account = account
        self.functions = {}
        self.images = image_source       # ecr_api.ImageSource
        self.quota = quota               # callable -> account concurrency limit
        self.iam = iam                   # iam_api.IamService: roles CreateFunction may use
        self.templates = {}              # name or "*" -> behaviour of a function CreateFunction makes
        self.settings = dict(settings or {})   # "pendingPolls"
        self.in_flight = 0
        self.max_in_flight = 0
        self.invocations = 0
        self.statuses = Counter()

    # ---- configuration -------------------------------------------------
    def set_function(self, name, behaviour):
        if not NAME_RE.match(name):
            raise ValueError("bad function name %r" % name)
        check_behaviour(behaviour)
        fn = self.functions.get(name)
        if fn is None:
            self.functions[name] = Function(name, dict(behaviour), self.region, self.account)
        else:
            fn.behaviour = dict(behaviour)
            if "imageUri" in behaviour:
                fn.image_uri = behaviour["imageUri"]
            if "faults" in behaviour:   # counted from here on
                inflight = fn.in_flight
                fn.reset_counters()
                fn.in_flight = fn.max_in_flight = inflight

    def reset_counters(self):
        self.max_in_flight = self.in_flight
        self.invocations = 0
        self.statuses = Counter()
        for fn in self.functions.values():
            inflight = fn.in_flight
            fn.reset_counters()
            fn.in_flight = inflight
            fn.max_in_flight = inflight

    def stats(self):
        return {"invocations": self.invocations, "inFlight": self.in_flight,
                "maxInFlight": self.max_in_flight,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "functions": {n: f.stats() for n, f in sorted(self.functions.items())}}

    # ---- routing -------------------------------------------------------
    @staticmethod
    def route(req):
        """Operation name for a Lambda request, or None."""
        for op, method, regex in _ROUTES:
            if req.method == method and regex.match(req.raw_path):
                return op
        return None

    def _named(self, raw, qualifier=None, allow_qualifier=True):
        m = ARN_RE.match(raw)
        if not m:
            raise ApiError(400, "ValidationException",
                           "1 validation error detected: Value '%s' at 'functionName' failed to "
                           "satisfy constraint: Member must satisfy regular expression pattern: "
                           "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                           "(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?" % raw)
        region, account, name, q = m.groups()
        qualifier = q or qualifier
        fn = self.functions.get(name)
        arn = "arn:aws:lambda:%s:%s:function:%s" % (region or self.region, account or self.account, name)
        if qualifier:
            arn += ":" + qualifier
        if fn is None or (region and region != self.region) or (account and account != self.account) \
                or (qualifier and qualifier != "$LATEST"):
            raise ApiError(404, "ResourceNotFoundException", "Function not found: " + arn)
        if qualifier and not allow_qualifier:
            raise ApiError(400, "InvalidParameterValueException",
                           "Qualifiers are not supported for this operation.")
        return fn

    def _function(self, req, allow_qualifier=True):
        m = FUNCTION_PATH_RE.match(req.raw_path)
        raw = urllib.parse.unquote(m.group(1)) if m else ""
        return self._named(raw, req.query().get("Qualifier"), allow_qualifier)

    def _by_arn(self, req):
        """The function a /tags/{ARN} path names (only a function's unqualified ARN)."""
        arn = urllib.parse.unquote(req.raw_path.split("/tags/", 1)[1])
        m = ARN_RE.match(arn)
        if not arn.startswith("arn:") or not m or m.group(4):
            raise ApiError(400, "ValidationException",
                           "1 validation error detected: Value '%s' at 'resource' failed to "
                           "satisfy constraint: Member must be a function ARN" % arn)
        return self._named(arn)

    async def handle(self, op, req):
        if op in ("Invoke", "UpdateFunctionCode"):
            return await (self._invoke(req) if op == "Invoke" else self._update_code(req))
        body = {}
        if req.body:
            try:
                body = json.loads(req.body)
            except ValueError as e:
                raise ApiError(400, "InvalidRequestContentException",
                               "Could not parse request body into json: %s" % e) from None
            if not isinstance(body, dict):
                raise ApiError(400, "InvalidRequestContentException",
                               "Request body must be a JSON object")
        return await getattr(self, "_" + op)(req, body)

    async def _GetFunction(self, req, body):
        fn = self._function(req)
        fn.poll()
        st = fn.configuration()
        repo = fn.image_uri.split("@")[0].rsplit(":", 1)[0] if "@" not in fn.image_uri \
            else fn.image_uri.split("@")[0]
        out = {"Configuration": st, "Code": {"RepositoryType": "ECR", "ImageUri": fn.image_uri,
                                             "ResolvedImageUri": "%s@sha256:%s" % (repo, fn.code_sha)}}
        if fn.tags:
            out["Tags"] = dict(fn.tags)
        if fn.reserved is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": fn.reserved}
        return json_response(out)

    async def _GetFunctionConfiguration(self, req, body):
        fn = self._function(req)
        fn.poll()
        return json_response(fn.configuration())

    # ---- CreateFunction, UpdateFunctionConfiguration, DeleteFunction ----------
    def _check_role(self, role):
        if not ROLE_RE.match(role):
            raise ApiError(400, "ValidationException",
                           "1 validation error detected: Value '%s' at 'role' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: "
                           "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+" % role)
        if self.iam is None or not self.iam.assumable(role):
            raise ApiError(400, "InvalidParameterValueException", CANNOT_ASSUME)

    @staticmethod
    def _check_spec(body):
        env = (body.get("Environment") or {}).get("Variables") or {}
        reserved = sorted(k for k in env if k in RESERVED_ENV)
        if reserved:
            raise ApiError(400, "InvalidParameterValueException",
                           "Lambda was unable to configure your environment variables because the "
                           "environment variables you have provided contains reserved keys that are "
                           "currently not supported for modification. Reserved keys used in this "
                           "request: %s" % ",".join(reserved))
        for key in ("Handler", "Runtime", "Layers"):
            if body.get(key):
                raise ApiError(400, "InvalidParameterValueException",
                               "Please don't provide Handler or Runtime or Layer when the intended "
                               "function PackageType is Image.")

    def _busy(self, fn):
        if fn.pending_polls > 0:
            raise ApiError(409, "ResourceConflictException",
                           "The operation cannot be performed at this time. The function is "
                           "currently in the following state: Pending", extra={"Type": "User"})
        fn.status()
        if fn.update and fn.update["state"] == "InProgress":
            raise ApiError(409, "ResourceConflictException",
                           "The operation cannot be performed at this time. An update is in "
                           "progress for resource: " + fn.arn, extra={"Type": "User"})

    async def _CreateFunction(self, req, body):
        name = body["FunctionName"]
        m = ARN_RE.match(name)
        if not m:
            self._named(name)   # the pattern's ValidationException
        name = m.group(3)
        if name in self.functions:
            raise ApiError(409, "ResourceConflictException", "Function already exist: %s" % name,
                           extra={"Type": "User"})
        if body.get("PackageType") != "Image":
            raise ApiError(400, "InvalidParameterValueException",
                           "This stand-in serves PackageType Image only, not %r."
                           % body.get("PackageType", "Zip"))
        code = body["Code"]
        if any(k in code for k in ("ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion")):
            raise ApiError(400, "InvalidParameterValueException",
                           "Please don't provide ZipFile or S3Bucket/S3Key when the intended "
                           "function PackageType is Image.")
        if not code.get("ImageUri"):
            raise ApiError(400, "InvalidParameterValueException",
                           "Please provide ImageUri when the intended function PackageType is Image.")
        self._check_spec(body)
        self._check_role(body["Role"])
        probe = Function(name, {}, self.region, self.account)
        sha = await self._image_sha(code["ImageUri"], probe)
        spec = {k: body[k] for k in ("Role", "MemorySize", "Timeout", "EphemeralStorage",
                                     "Architectures", "Environment", "Description") if k in body}
        spec.setdefault("MemorySize", 128)
        spec.setdefault("Timeout", 3)
        behaviour = dict(self.templates.get(name) or self.templates.get("*") or {"mode": "success"})
        behaviour["imageUri"] = code["ImageUri"]
        behaviour["codeSha256"] = sha
        fn = Function(name, behaviour, self.region, self.account, spec,
                      self.settings.get("pendingPolls", 1))
        fn.tags = dict(body.get("Tags") or {})
        fn.image_arch = probe.image_arch
        self.functions[name] = fn
        return json_response(fn.configuration(), 201)

    async def _UpdateFunctionConfiguration(self, req, body):
        fn = self._function(req, allow_qualifier=False)
        self._busy(fn)
        if body.get("RevisionId") not in (None, fn.revision):
            raise ApiError(412, "PreconditionFailedException",
                           "The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
        self._check_spec(body)
        if "Role" in body and body["Role"] != fn.configuration()["Role"]:
            self._check_role(body["Role"])
        for k in ("Role", "MemorySize", "Timeout", "EphemeralStorage", "Environment", "Description"):
            if k in body:
                fn.spec[k] = body[k]
        b = fn.behaviour
        fn.update = {"state": "InProgress", "old": (fn.image_uri, fn.code_sha),
                     "due": time.monotonic() + b.get("updateDelayMs", 1000) / 1000.0,
                     "failure": None}
        fn.revision = str(uuid.uuid4())
        fn.last_modified = _now_text()
        return json_response(fn.configuration())

    async def _DeleteFunction(self, req, body):
        fn = self._function(req, allow_qualifier=False)
        del self.functions[fn.name]
        return Response(204, b"", [("x-amzn-RequestId", str(uuid.uuid4()))])

    # ---- concurrency ---------------------------------------------------------
    def reserved_total(self, but=None):
        return sum(f.reserved or 0 for f in self.functions.values() if f is not but)

    async def _PutFunctionConcurrency(self, req, body):
        fn = self._function(req, allow_qualifier=False)
        n = body["ReservedConcurrentExecutions"]
        if self.quota() - self.reserved_total(but=fn) - n < MIN_UNRESERVED:
            raise ApiError(400, "InvalidParameterValueException",
                           "Specified ReservedConcurrentExecutions for function decreases account's "
                           "UnreservedConcurrentExecution below its minimum value of [%d]."
                           % MIN_UNRESERVED)
        fn.reserved = n
        return json_response({"ReservedConcurrentExecutions": n})

    async def _GetFunctionConcurrency(self, req, body):
        fn = self._function(req, allow_qualifier=False)
        return json_response({} if fn.reserved is None else {"ReservedConcurrentExecutions": fn.reserved})

    async def _DeleteFunctionConcurrency(self, req, body):
        self._function(req, allow_qualifier=False).reserved = None
        return Response(204, b"", [("x-amzn-RequestId", str(uuid.uuid4()))])

    async def _GetAccountSettings(self, req, body):
        q = self.quota()
        return json_response({
            "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                             "CodeSizeZipped": 52428800, "ConcurrentExecutions": q,
                             "UnreservedConcurrentExecutions": q - self.reserved_total()},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(self.functions)}})

    # ---- tags ------------------------------------------------------------------
    async def _ListTags(self, req, body):
        return json_response({"Tags": dict(self._by_arn(req).tags)})

    async def _TagResource(self, req, body):
        fn = self._by_arn(req)
        fn.tags.update(body["Tags"])
        if len(fn.tags) > 50:
            raise ApiError(400, "InvalidParameterValueException", "Number of tags exceeds resource tag limit.")
        return Response(204, b"", [("x-amzn-RequestId", str(uuid.uuid4()))])

    async def _UntagResource(self, req, body):
        fn = self._by_arn(req)
        for k in urllib.parse.parse_qs(req.raw_query).get("tagKeys", []):
            fn.tags.pop(k, None)
        return Response(204, b"", [("x-amzn-RequestId", str(uuid.uuid4()))])

    # ---- UpdateFunctionCode --------------------------------------------
    async def _update_code(self, req):
        fn = self._function(req, allow_qualifier=False)
        try:
            body = json.loads(req.body or b"{}")
        except ValueError as e:
            raise ApiError(400, "InvalidRequestContentException",
                           "Could not parse request body into json: %s" % e) from None
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequestContentException", "Request body must be a JSON object")
        if any(k in body for k in ("ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion")):
            raise ApiError(400, "InvalidParameterValueException",
                           "Please don't provide ZipFile or S3Bucket/S3Key when updating a "
                           "function with packageType Image.")
        uri = body.get("ImageUri")
        if not isinstance(uri, str) or not uri:
            raise ApiError(400, "InvalidParameterValueException",
                           "Please provide ImageUri when updating a function with packageType Image.")
        self._busy(fn)
        if body.get("RevisionId") not in (None, fn.revision):
            raise ApiError(412, "PreconditionFailedException",
                           "The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
        # the image's architecture matters (and is read) only for a function CreateFunction made
        probe = Function(fn.name, {}, self.region, self.account) if fn.spec else None
        sha = await self._image_sha(uri, probe)
        if body.get("DryRun"):
            return json_response(fn.configuration())
        if probe is not None:
            fn.image_arch = probe.image_arch
        b = fn.behaviour
        fn.update = {"state": "InProgress", "old": (fn.image_uri, fn.code_sha),
                     "due": time.monotonic() + b.get("updateDelayMs", 1000) / 1000.0,
                     "failure": b.get("updateFailure")}
        fn.image_uri, fn.code_sha = uri, sha
        fn.revision = str(uuid.uuid4())
        fn.last_modified = _now_text()
        return json_response(fn.configuration())

    async def _image_sha(self, uri, fn=None):
        """The digest (hex) an ECR image URI names; refused as Lambda refuses it.
        fn: the function whose image architecture to note, when the registry tells it."""
        m = IMAGE_RE.match(uri)
        if not m:
            raise ApiError(400, "InvalidParameterValueException",
                           "Source image %s is not valid. Provide a valid source image." % uri)
        account, region, repo, tag, digest = m.groups()
        if region != self.region:
            raise ApiError(400, "InvalidParameterValueException",
                           "Source image %s must be in the same region as the function (%s)."
                           % (uri, self.region))
        sha = hashlib.sha256(uri.encode()).hexdigest() if not digest else digest[7:]
        if self.images.knows(repo):
            image = await self.images.lookup(repo, tag=tag, digest=digest, missing_ok=True)
            if image is None:
                raise ApiError(400, "InvalidParameterValueException",
                               "Source image %s does not exist. Provide a valid source image." % uri)
            if image["mediaType"] in INDEX_TYPES:
                raise ApiError(400, "InvalidParameterValueException",
                               "The image manifest, config or layer media type for the source image "
                               "%s is not supported." % uri)
            sha = image["digest"][7:]
            if fn is not None:
                fn.image_arch = await self.images.architecture(repo, image)
        return sha

    # ---- Invoke ----------------------------------------------------------
    async def _invoke(self, req):
        fn = self._function(req)
        try:
            resp = await self._invoke_checked(fn, req)
        except ApiError as e:
            fn.statuses[e.status] += 1
            self.statuses[e.status] += 1
            raise
        fn.statuses[resp.status] += 1
        self.statuses[resp.status] += 1
        return resp

    async def _invoke_checked(self, fn, req):
        if fn.pending_polls > 0:
            raise ApiError(409, "ResourceConflictException",
                           "The operation cannot be performed at this time. The function is "
                           "currently in the following state: Pending", extra={"Type": "User"})
        itype = req.header("X-Amz-Invocation-Type", "RequestResponse")
        if itype != "RequestResponse":
            raise ApiError(400, "InvalidParameterValueException",
                           "Invocation type %r is not supported by this stand-in: only "
                           "RequestResponse." % itype)
        log_type = req.header("X-Amz-Log-Type", "None")
        if log_type not in ("None", "Tail"):
            raise ApiError(400, "InvalidParameterValueException",
                           "1 validation error detected: Value '%s' at 'logType' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [Tail, None]" % log_type)
        if len(req.body) > MAX_REQUEST:
            raise ApiError(413, "RequestTooLargeException",
                           "Request must be smaller than %d bytes for the InvokeFunction operation"
                           % MAX_REQUEST)
        payload = {}
        if req.body.strip():
            try:
                payload = json.loads(req.body)
            except ValueError as e:
                raise ApiError(400, "InvalidRequestContentException",
                               "Could not parse request body into json: %s" % e) from None
        b = fn.behaviour
        seq = fn.seq
        fn.seq += 1
        fn.invocations += 1
        self.invocations += 1
        retry = [("Retry-After", str(b.get("retryAfter", 1)))]
        if self.in_flight >= self.quota():
            raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.", retry,
                           {"Reason": "ConcurrentInvocationLimitExceeded"})
        if ("concurrencyLimit" in b and fn.in_flight >= b["concurrencyLimit"]) or \
                (fn.reserved is not None and fn.in_flight >= fn.reserved):
            raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.", retry,
                           {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
        if _rule_hits(b.get("throttle"), seq):
            raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.", retry,
                           {"Reason": "CallerRateLimitExceeded"})
        fault = pick_fault(b.get("faults"), seq)
        test_id = payload.get("testId") if isinstance(payload, dict) else None
        if isinstance(test_id, str):
            fn.outcomes.setdefault(test_id, []).append(fault or "ok")
        if fault:
            fn.faults[fault] += 1
        if fault == "throttle":
            raise ApiError(429, "TooManyRequestsException", "Rate Exceeded.",
                           [("Retry-After", str(b["faults"].get("retryAfter", 1)))],
                           {"Reason": "CallerRateLimitExceeded"})
        if fault in ("server500", "server503"):
            raise ApiError(int(fault[6:]), "ServiceException",
                           "Service error (injected fault, invocation %d)." % seq)
        rule = b.get("serverErrors")
        if _rule_hits(rule, seq):
            statuses = rule.get("status", 500)
            if isinstance(statuses, list):
                statuses = statuses[(seq // rule["every"]) % len(statuses)]
            raise ApiError(int(statuses), "ServiceException",
                           "Service error (configured: serverErrors, invocation %d)." % seq)
        fn.in_flight += 1
        self.in_flight += 1
        fn.max_in_flight = max(fn.max_in_flight, fn.in_flight)
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        rid = str(uuid.uuid4())
        started = time.monotonic()
        try:
            if b.get("delayMs"):
                await asyncio.sleep(b["delayMs"] / 1000.0)
            body, ferror, log = await self._run(fn, b, payload, req.body, rid)
        finally:
            fn.in_flight -= 1
            self.in_flight -= 1
        if len(body) > MAX_RESPONSE:
            body = _error_payload("Response payload size exceeded maximum allowed payload "
                                  "size (%d bytes)." % MAX_RESPONSE, "Function.ResponseSizeTooLarge")
            ferror = "Unhandled"
        headers = [("X-Amz-Executed-Version", "$LATEST")]
        if ferror:
            headers.append(("X-Amz-Function-Error", ferror))
        if log_type == "Tail":
            ms = (time.monotonic() - started) * 1000
            billed = int(math.ceil(ms))  # Lambda bills each millisecond begun
            fn.billed_ms += billed
            memory = fn.configuration()["MemorySize"]
            text = ("START RequestId: %s Version: $LATEST\n" % rid).encode() + log + \
                ("END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: "
                 "%d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t\n"
                 % (rid, rid, ms, billed, memory, min(memory, 64))).encode()
            headers.append(("X-Amz-Log-Result", base64.b64encode(text[-4096:]).decode()))
        headers += [("Content-Type", "application/json"), ("x-amzn-RequestId", rid)]
        if fault == "functionError":
            body = _error_payload("injected function error (invocation %d)" % seq, "InjectedFault")
            headers.insert(1, ("X-Amz-Function-Error", "Unhandled"))
        elif fault == "garbage":
            body = b"\x00<html>garbage " + bytes(random.Random(seq).randrange(256) for _ in range(64))
        resp = Response(200, body, headers)
        if fault in ("reset", "truncated", "slow"):
            resp.fault = fault
            resp.slow_ms = b["faults"].get("slowMs", 200)
        return resp

    async def _run(self, fn, b, payload, raw, rid):
        """(response body, function error or None, log bytes)"""
        arch = ARCHITECTURES.get(fn.image_arch, fn.image_arch)
        if fn.spec and arch and arch not in fn.configuration()["Architectures"]:
            # what Lambda's runtime reports when the image is for another CPU
            return _error_payload("RequestId: %s Error: fork/exec /lambda-entrypoint.sh: exec format "
                                  "error" % rid, "Runtime.InvalidEntrypoint"), "Unhandled", b""
        mode = b.get("mode", "success")
        if mode == "echo":
            return raw or b"{}", None, b""
        if mode == "fixed":
            return json.dumps(b.get("response")).encode(), None, b""
        if mode == "functionError":
            return _error_payload(b.get("errorMessage", "configured function error"),
                                  b.get("errorType", "Error")), "Unhandled", b""
        if mode == "command":
            return await self._command(fn, b, raw or b"{}", rid)
        ctx = payload.get("context") if isinstance(payload, dict) else None
        ctx = ctx if isinstance(ctx, dict) else {}
        name = next((ctx[k] for k in ("name", "id", "grep") if isinstance(ctx.get(k), str)), "unknown")
        path = next((ctx[k] for k in ("filePath", "file") if isinstance(ctx.get(k), str)), "unknown")
        return json.dumps({"success": True, "name": name, "filePath": path,
                           "duration": b.get("delayMs", 0)}).encode(), None, b""

    async def _command(self, fn, b, stdin, rid):
        env = dict(os.environ)
        env.update({k: str(v) for k, v in (b.get("env") or {}).items()})
        env.update({"AWS_LAMBDA_FUNCTION_NAME": fn.name, "AWS_REQUEST_ID": rid})
        timeout = b.get("timeoutMs", fn.timeout() * 1000) / 1000.0
        try:
            proc = await asyncio.create_subprocess_exec(
                *b["command"], stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, cwd=b.get("cwd"), start_new_session=True)
        except OSError as e:
            return _error_payload("RequestId: %s Error: could not start %s: %s"
                                  % (rid, b["command"][0], e), "Runtime.InvalidEntrypoint"), "Unhandled", b""
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return json.dumps({"errorMessage": "%s %s Task timed out after %.2f seconds"
                               % (stamp, rid, timeout)}).encode(), "Unhandled", b""
        if proc.returncode != 0:
            why = "exit status %d" % proc.returncode if proc.returncode > 0 \
                else "signal: %s" % signal.Signals(-proc.returncode).name
            return _error_payload("RequestId: %s Error: Runtime exited with error: %s" % (rid, why),
                                  "Runtime.ExitError"), "Unhandled", err
        return out, None, err


RESERVED_ENV = ("_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION",
                "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")


def _routes():
    out = []
    for op in OPERATIONS:
        http = modelcheck.operation("lambda", op).http
        path = http["requestUri"].partition("?")[0].rstrip("/")
        regex = re.sub(r"\\\{[A-Za-z0-9_]+\\\}", "[^/]+", re.escape(path))
        out.append((op, http["method"], re.compile("^%s/?$" % regex)))
    return out


_ROUTES = _routes()
