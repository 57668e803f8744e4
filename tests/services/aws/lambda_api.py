"""lambda_api.py - the Lambda control and invoke API of the stand-in (REST-JSON, 2015-03-31).

Operations: Invoke (RequestResponse only), GetFunction,
GetFunctionConfiguration, UpdateFunctionCode (container images).  Every
function's invoke behaviour comes from its config entry (see README.md) and
can be replaced at run time.  Limits follow the real service: 6 MB request
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

from awsfmt import ApiError, json_response
from httpserv import Response

PREFIX = "/2015-03-31/functions/"
MAX_REQUEST = 6291456          # "Request must be smaller than 6291456 bytes"
MAX_RESPONSE = 6291556         # the figure the real service's message names
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ARN_RE = re.compile(r"^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):)?(?:(\d{12}):function:)?"
                    r"([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$")
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
    def __init__(self, name, behaviour, region, account):
        self.name = name
        self.region = region
        self.account = account
        self.behaviour = behaviour
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

    def configuration(self):
        st, reason, code = self.status()
        cfg = {
            "FunctionName": self.name, "FunctionArn": self.arn,
            "Role": "arn:aws:iam::%s:role/%s-role" % (self.account, self.name),
            "CodeSize": 0, "Description": "", "Timeout": self.behaviour.get("timeout", 900),
            "MemorySize": self.behaviour.get("memorySize", 2048),
            "LastModified": self.last_modified, "CodeSha256": self.code_sha,
            "Version": "$LATEST", "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": self.revision, "State": "Active", "LastUpdateStatus": st,
            "PackageType": "Image", "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
        }
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
    def __init__(self, region, account, image_source, quota):
        self.region = region
        self.account = account
        self.functions = {}
        self.images = image_source       # ecr_api.ImageSource
        self.quota = quota               # callable -> account concurrency limit
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
        """Operation name for a request under /2015-03-31/, or None."""
        if not req.raw_path.startswith(PREFIX):
            return None
        rest = req.raw_path[len(PREFIX):].split("/")
        table = {(1, "GET", None): "GetFunction",
                 (2, "GET", "configuration"): "GetFunctionConfiguration",
                 (2, "POST", "invocations"): "Invoke",
                 (2, "PUT", "code"): "UpdateFunctionCode"}
        key = (len(rest), req.method, rest[1] if len(rest) == 2 else None)
        return table.get(key) if rest[0] else None

    def _function(self, req, allow_qualifier=True):
        raw = urllib.parse.unquote(req.raw_path[len(PREFIX):].split("/")[0])
        m = ARN_RE.match(raw)
        if not m:
            raise ApiError(400, "ValidationException",
                           "1 validation error detected: Value '%s' at 'functionName' failed to "
                           "satisfy constraint: Member must satisfy regular expression pattern: "
                           "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?"
                           "(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?" % raw)
        region, account, name, qualifier = m.groups()
        qualifier = qualifier or req.query().get("Qualifier")
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

    async def handle(self, op, req):
        if op == "GetFunction":
            fn = self._function(req)
            st = fn.configuration()
            repo = fn.image_uri.split("@")[0].rsplit(":", 1)[0] if "@" not in fn.image_uri \
                else fn.image_uri.split("@")[0]
            return json_response({"Configuration": st, "Tags": {},
                                  "Code": {"RepositoryType": "ECR", "ImageUri": fn.image_uri,
                                           "ResolvedImageUri": "%s@sha256:%s" % (repo, fn.code_sha)}})
        if op == "GetFunctionConfiguration":
            return json_response(self._function(req).configuration())
        if op == "UpdateFunctionCode":
            return await self._update_code(req)
        return await self._invoke(req)

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
        m = IMAGE_RE.match(uri)
        if not m:
            raise ApiError(400, "InvalidParameterValueException",
                           "Source image %s is not valid. Provide a valid source image." % uri)
        account, region, repo, tag, digest = m.groups()
        if region != self.region:
            raise ApiError(400, "InvalidParameterValueException",
                           "Source image %s must be in the same region as the function (%s)."
                           % (uri, self.region))
        fn.status()
        if fn.update and fn.update["state"] == "InProgress":
            raise ApiError(409, "ResourceConflictException",
                           "The operation cannot be performed at this time. An update is in "
                           "progress for resource: " + fn.arn, extra={"Type": "User"})
        if body.get("RevisionId") not in (None, fn.revision):
            raise ApiError(412, "PreconditionFailedException",
                           "The Revision Id provided does not match the latest Revision Id. "
                           "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
        sha = hashlib.sha256(uri.encode()).hexdigest() if not digest else digest[7:]
        if self.images.knows(repo):
            image = await self.images.lookup(repo, tag=tag, digest=digest, missing_ok=True)
            if image is None:
                raise ApiError(400, "InvalidParameterValueException",
                               "Source image %s does not exist. Provide a valid source image." % uri)
            sha = image["digest"][7:]
        if body.get("DryRun"):
            return json_response(fn.configuration())
        b = fn.behaviour
        fn.update = {"state": "InProgress", "old": (fn.image_uri, fn.code_sha),
                     "due": time.monotonic() + b.get("updateDelayMs", 1000) / 1000.0,
                     "failure": b.get("updateFailure")}
        fn.image_uri, fn.code_sha = uri, sha
        fn.revision = str(uuid.uuid4())
        fn.last_modified = _now_text()
        return json_response(fn.configuration())

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
        if "concurrencyLimit" in b and fn.in_flight >= b["concurrencyLimit"]:
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
        timeout = b.get("timeoutMs", b.get("timeout", 900) * 1000) / 1000.0
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
