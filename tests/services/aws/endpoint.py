#!/usr/bin/env python3
"""endpoint.py - a strict local stand-in for the AWS control APIs hypertest's aws provider calls.

Lambda (REST-JSON), ECR and Service Quotas (JSON 1.1), IAM (query) and S3
bucket configuration (REST-XML) on one 127.0.0.1 port; optionally a
signature-checking proxy in front of a real S3 server (s3rver, which does
not check Signature V4 itself) for objects.  Every request but /_control/ must
carry a valid Signature V4, verified with botocore (sigv4check.py); anything
AWS would refuse is refused with AWS's code, status and error format.

    endpoint.py [--port N] [--config FILE] [--credentials FILE] [--region R]
                [--registry URL] [--s3-upstream URL] [--watch-pid PID] [--verbose]

With --port 0 the first line on stdout is "PORT <n>".  See README.md for the
config format and the /_control/ API.  Also, not in README.md yet:

  POST /_control/credentials {"AKID": {"secret": "...", "sessionToken": "..."}}
      learn more keys (temporary ones with a session token, as a Lambda role
      has; a key with a token is refused without it, as AWS refuses it).  S3
      requests signed with them reach s3rver, after our check, under the
      first key of --credentials (the one services.sh gives s3rver).
  a function's behaviour {"oversize": {"bytes": N, "testIds": ["t1", ...]}}
      an Invoke whose payload's testId is listed answers 200 with a valid
      function response padded to exactly N bytes (N >= 256), no function
      error: what Lambda never sends (it turns a response over 6291556 bytes
      into Function.ResponseSizeTooLarge), for testing a client's own cap.
  each /_control/requests entry: "securityToken" (whether the request had
      X-Amz-Security-Token) and, for an oversized answer, "oversize" (N).
"""

import argparse
import asyncio
import collections
import json
import os
import resource
import signal
import sys
import time
import urllib.parse

import iam_api
import modelcheck
import s3_api
import sigv4check
import xmlshape
from awsfmt import ApiError, error_response, json_response
from ecr_api import ECR_PREFIX, SQ_PREFIX, EcrService, ImageSource, QuotaService
from httpserv import Request, Response, Server, _read_chunked
from lambda_api import LambdaService, check_behaviour

# botocore's names of the services where ours differ
MODEL_NAMES = {"servicequotas": "service-quotas"}
# the error code each service answers a request that does not fit its model
MODEL_ERRORS = {"ecr": "InvalidParameterException", "servicequotas": "IllegalArgumentException",
                "lambda": "ValidationException", "iam": "ValidationError"}
# IAM is global: its requests are signed for us-east-1 whatever the region
IAM_REGION = "us-east-1"
# operations that change nothing (the request log's "mutating": false)
READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet")
READ_OPERATIONS = ("Invoke",)


def mutating(op):
    return bool(op) and not op.startswith(READ_PREFIXES) and op not in READ_OPERATIONS

DEFAULT_CREDENTIALS = {"AKIDEXAMPLE": {"secret": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}
DEFAULT_CONFIG = {"functions": {"hypertest-test": {"mode": "success"}}}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "expect", "te", "upgrade",
               "proxy-connection", "content-length"}


OVERSIZE_MIN = 256     # an "oversize" body holds a function response and its padding


def check_oversize(rule):
    """Raise ValueError unless rule is {"bytes": N >= OVERSIZE_MIN, "testIds": [str, ...]}."""
    if not isinstance(rule, dict) or set(rule) - {"bytes", "testIds"}:
        raise ValueError('oversize must be {"bytes": N, "testIds": ["...", ...]}')
    size, ids = rule.get("bytes"), rule.get("testIds")
    if not isinstance(size, int) or isinstance(size, bool) or size < OVERSIZE_MIN:
        raise ValueError("oversize.bytes must be an integer >= %d" % OVERSIZE_MIN)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ValueError("oversize.testIds must be a non-empty list of strings")
    for test_id in ids:
        if len(_oversize_head(test_id)) + 2 > size:
            raise ValueError("oversize.bytes %d is too small for test id %r" % (size, test_id))


def _oversize_head(test_id):
    return (json.dumps({"success": True, "name": test_id, "filePath": "unknown"})[:-1]
            + ', "pad": "').encode()


def oversize_body(test_id, size):
    """A function response of exactly size bytes: valid JSON, padded."""
    head = _oversize_head(test_id)
    return head + b"x" * (size - len(head) - 2) + b'"}'


def check_credentials(creds):
    """Raise ValueError unless creds is {"AKID": {"secret": str, "sessionToken": optional str}}."""
    if not isinstance(creds, dict) or not creds:
        raise ValueError('credentials must be {"AKID": {"secret": "...", "sessionToken": "..."}}')
    for akid, entry in creds.items():
        if not akid or not isinstance(entry, dict) or not isinstance(entry.get("secret"), str) \
                or not entry["secret"] or set(entry) - {"secret", "sessionToken"} \
                or not isinstance(entry.get("sessionToken", ""), str):
            raise ValueError('credentials must be {"AKID": {"secret": "...", "sessionToken": "..."}}')


def _control_response(obj, status=200):
    return Response(status, json.dumps(obj, indent=1) + "\n", [("Content-Type", "application/json")])


class Endpoint:
    def __init__(self, args, config, credentials):
        self.args = args
        self.config = config
        self.credentials = credentials
        # s3rver knows one key (services.sh gives it the first one); keys
        # learned later reach it under that one, after our own check
        self.upstream_key = next(iter(credentials))
        self.region = config.get("region", args.region)
        self.account = config.get("accountId", "123456789012")
        ecr = config.get("ecr", {})
        token = ecr.get("token", "hypertest-test-token")
        self.images = ImageSource(self.account, ecr.get("repositories"), args.registry,
                                  ecr.get("registryUser", "AWS"), ecr.get("registryPassword", token))
        self.quotas = QuotaService(self.account, self.region, config.get("concurrencyQuota", 1000))
        self.ecr = EcrService(self.account, self.region, self.images, token,
                              ecr.get("proxyEndpoint", args.registry))
        self.iam = iam_api.IamService(self.account, modelcheck.service_model("iam"),
                                      config.get("iam"))
        self.lam = LambdaService(self.region, self.account, self.images, lambda: self.quotas.concurrency,
                                 self.iam, config.get("lambda"))
        self.s3 = s3_api.S3Buckets(self.region, self._s3_upstream if args.s3_upstream else None)
        self.load_functions()
        self.request_log = open(args.request_log, "a", encoding="utf-8") if args.request_log else None
        self.log = collections.deque(maxlen=args.keep_requests)
        self.reset_counters()
        self.server = None

    def load_functions(self):
        self.lam.functions.clear()
        for name, behaviour in self.config.get("functions", {}).items():
            self.set_function(name, behaviour)
        self.lam.templates.clear()
        for name, behaviour in self.config.get("templates", {}).items():
            self.set_template(name, behaviour)

    def reset_resources(self):
        """Forget every role, repository and bucket configuration; the config's
        images and its iam and lambda settings back."""
        self.iam.reset(self.config.get("iam"))
        self.ecr.repos.clear()
        self.images.load(self.config.get("ecr", {}).get("repositories"))
        self.s3.reset()
        self.lam.settings = dict(self.config.get("lambda") or {})

    def set_template(self, name, behaviour):
        check_behaviour(behaviour)
        self.lam.templates[name] = dict(behaviour)

    def set_function(self, name, behaviour):
        if isinstance(behaviour, dict) and "oversize" in behaviour:
            check_oversize(behaviour["oversize"])
        self.lam.set_function(name, behaviour)

    def reset_counters(self):
        self.seq = 0
        self.auth = collections.Counter()
        self.operations = collections.Counter()
        self.log.clear()
        self.lam.reset_counters()

    # ---- dispatch ------------------------------------------------------------
    def classify(self, req):
        """(service, error format, operation or None)"""
        target = req.header("X-Amz-Target")
        if target is not None:
            for prefix, svc in ((ECR_PREFIX, "ecr"), (SQ_PREFIX, "servicequotas")):
                if target.startswith(prefix):
                    return svc, "json11", target[len(prefix):]
            return None, "json11", None
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if req.raw_path == "/" and req.method == "POST" and ctype == "application/x-www-form-urlencoded":
            fields = dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace"),
                                                 keep_blank_values=True))
            return "iam", "iam", fields.get("Action")
        op = LambdaService.route(req)
        if op or req.raw_path.startswith("/2015-03-31/"):
            return "lambda", "lambda", op
        if self.args.s3_upstream or self._scope_service(req) == "s3":
            return "s3", "s3", s3_api.operation(req)[0] or req.method
        return None, "lambda", None

    async def handle(self, req):
        if req.raw_path.startswith("/_control/"):
            return await self.control(req)
        started = time.monotonic()
        service, fmt, op = self.classify(req)
        entry = {"seq": self.seq, "time": time.time(), "method": req.method, "path": req.raw_path,
                 "target": req.header("X-Amz-Target"), "service": service, "operation": op,
                 "mutating": mutating(op),
                 "securityToken": req.header("X-Amz-Security-Token") is not None,
                 "claimedKeyId": self._claimed_key(req)}
        self.seq += 1
        self.log.append(entry)
        try:
            resp = await self._handle(req, service, fmt, op, entry)
        except ApiError as e:
            resp = error_response(fmt, e)
            entry["error"] = e.code
        entry["status"] = resp.status
        if self.request_log:
            self.request_log.write(json.dumps(entry) + "\n")
            self.request_log.flush()
        if self.args.verbose:
            print("%s %s %s -> %d auth=%s %.1fms" % (
                req.method, req.raw_path, entry["target"] or "-", resp.status, entry.get("auth"),
                (time.monotonic() - started) * 1000), file=sys.stderr, flush=True)
        return resp

    async def _handle(self, req, service, fmt, op, entry):
        check_service = service or self._scope_service(req)
        try:
            region = IAM_REGION if check_service == "iam" else self.region
            entry["accessKeyId"] = sigv4check.check(req, check_service, region, self.credentials)
            entry["auth"] = "ok"
        except sigv4check.AuthError as e:
            entry["auth"] = e.code
            self.auth[e.code] += 1
            raise ApiError(e.status, e.code, e.message) from None
        self.auth["ok"] += 1
        if service == "iam" and op is None:
            raise ApiError(400, "MissingAction", "Missing Action")
        if service is None or op is None:
            if fmt == "json11":
                raise ApiError(400, "UnknownOperationException",
                               "Unknown operation %s" % req.header("X-Amz-Target"))
            raise ApiError(404, "UnknownOperationException", "Unknown operation %s %s"
                           % (req.method, req.raw_path))
        self.operations["%s:%s" % (service, op)] += 1
        if service == "iam":
            return self.iam_call(op, req)
        if service == "lambda":
            self.check_model_rest_json(service, op, req)
            resp = await self.lam.handle(op, req)
            return self.oversize(op, req, resp, entry)
        if service == "s3":
            req.access_key = entry["accessKeyId"]
            if op in s3_api.SERVED:
                return await self.s3.handle(op, req, s3_api.operation(req)[1])
            if not self.args.s3_upstream:
                raise ApiError(501, "NotImplemented", "%s needs an S3 server behind this endpoint "
                               "(--s3-upstream)" % op)
            s3_api.check_integrity(req, False, op)
            return await self.s3_proxy(req, entry["accessKeyId"])
        if req.method != "POST" or req.raw_path != "/":
            raise ApiError(404, "UnknownOperationException", "JSON 1.1 operations are POST /")
        ctype = (req.header("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-amz-json-1.1":
            raise ApiError(400, "SerializationException",
                           "Content-Type must be application/x-amz-json-1.1, not %r" % ctype)
        try:
            body = json.loads(req.body or b"{}")
        except ValueError as e:
            raise ApiError(400, "SerializationException", "Body is not JSON: %s" % e) from None
        if not isinstance(body, dict):
            raise ApiError(400, "SerializationException", "Body must be a JSON object")
        svc = self.ecr if service == "ecr" else self.quotas
        if op in svc.OPERATIONS:
            self.check_model(service, op, body)
        return await svc.handle(op, body)

    # ---- botocore's service model ----------------------------------------------
    @staticmethod
    def _model(service, op):
        model = modelcheck.operation(service, op)
        if model is None:
            raise ApiError(400, "UnknownOperationException",
                           "%s has no operation %s" % (service, op))
        return model

    def check_model(self, service, op, params):
        """A request AWS would refuse for its shape is refused here too."""
        try:
            modelcheck.validate(self._model(MODEL_NAMES.get(service, service), op), params)
        except modelcheck.ModelError as e:
            raise ApiError(400, MODEL_ERRORS[service], str(e)) from None

    def iam_call(self, op, req):
        """A query-protocol call: form fields read by the operation's input shape."""
        fields = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        fields = {k: v[-1] for k, v in fields.items()}
        if fields.get("Version") != "2010-05-08":
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                           % (op, fields.get("Version", "NO_VERSION_SPECIFIED")))
        if op not in iam_api.OPERATIONS:
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version 2010-05-08"
                           % op)
        model = self._model("iam", op)
        try:
            params = xmlshape.parse_query(model.input_shape, fields)
            modelcheck.validate(model, params)
        except (xmlshape.ShapeError, modelcheck.ModelError) as e:
            raise ApiError(400, "ValidationError", str(e)) from None
        return self.iam.handle(op, params)

    def check_model_rest_json(self, service, op, req):
        model = self._model(service, op)
        body = None
        if not model.input_shape or not model.input_shape.serialization.get("payload"):
            if req.body:
                try:
                    body = json.loads(req.body)
                except ValueError:
                    return   # the service's own check answers with its own error
        try:
            modelcheck.validate(model, modelcheck.params_rest_json(model, req, body))
        except modelcheck.ModelError as e:
            raise ApiError(400, MODEL_ERRORS[service], str(e)) from None

    def oversize(self, op, req, resp, entry):
        """A successful Invoke of a test the function's "oversize" rule names
        answers 200 with a body of oversize.bytes bytes, no function error:
        what real Lambda never sends, for testing the client's own cap."""
        if op != "Invoke" or resp.status != 200 or any(n.lower() == "x-amz-function-error"
                                                       for n, _ in resp.headers):
            return resp
        rule = self.lam._function(req).behaviour.get("oversize")   # it exists: it answered
        if not rule:
            return resp
        try:
            test_id = json.loads(req.body).get("testId")
        except (ValueError, AttributeError):
            return resp
        if test_id not in rule["testIds"]:
            return resp
        entry["oversize"] = rule["bytes"]
        return Response(200, oversize_body(test_id, rule["bytes"]), resp.headers)

    @staticmethod
    def _claimed_key(req):
        """The access key id a request says it is signed with (header or
        presigned form), whether or not the signature holds: tests that
        share the endpoint tell their own requests by it."""
        auth = req.header("Authorization") or ""
        if "Credential=" in auth:
            return auth.partition("Credential=")[2].split("/")[0] or None
        cred = req.query().get("X-Amz-Credential", "")
        return cred.split("/")[0] or None

    @staticmethod
    def _scope_service(req):
        auth = req.header("Authorization") or ""
        cred = auth.partition("Credential=")[2].split(",")[0].split("/")
        return cred[3] if len(cred) == 5 else "unknown"

    # ---- S3 through a signature check ---------------------------------------
    async def _s3_upstream(self, method, target, req):
        """s3_api's way to the S3 server: req forwarded (its key mapped), or a bare request."""
        if req is None:
            host = self.args.s3_upstream.split("//", 1)[-1].rstrip("/")
            return await self.s3_proxy(Request(method, target, "HTTP/1.1", [("Host", host)], b"",
                                               None), None)
        return await self.s3_proxy(req, req.access_key)

    async def s3_proxy(self, req, akid):
        """Forward a verified S3 request to the real S3 server and relay its answer."""
        host, _, port = self.args.s3_upstream.split("//", 1)[-1].rstrip("/").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port or 80), limit=1 << 20)
        try:
            lines = ["%s %s HTTP/1.1" % (req.method, req.target)]
            for n, v in req.headers:
                if n.lower() == "authorization" and akid is not None and akid != self.upstream_key:
                    v = v.replace("Credential=%s/" % akid, "Credential=%s/" % self.upstream_key, 1)
                if n.lower() not in HOP_HEADERS:
                    lines.append("%s: %s" % (n, v))
            lines += ["Content-Length: %d" % len(req.body), "Connection: close"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + req.body)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            status = int(head[0].split(" ")[1])
            headers = [tuple(x.strip() for x in h.split(":", 1)) for h in head[1:] if ":" in h]
            lower = {n.lower(): v for n, v in headers}
            if req.method == "HEAD" or status in (204, 304):
                body = b""
            elif "chunked" in lower.get("transfer-encoding", "").lower():
                body = await _read_chunked(reader, 1 << 34)
            elif "content-length" in lower:
                body = await reader.readexactly(int(lower["content-length"]))
            else:
                body = await reader.read()
        finally:
            writer.close()
        keep = [(n, v) for n, v in headers if n.lower() not in HOP_HEADERS]
        if req.method == "HEAD" and "content-length" in lower:
            keep.append(("Content-Length", lower["content-length"]))
        return Response(status, body, keep)

    # ---- control API ---------------------------------------------------------
    def stats(self):
        return {"requests": self.seq, "auth": dict(self.auth), "operations": dict(self.operations),
                "connections": self.server.connections if self.server else 0,
                "connectionsAccepted": self.server.accepted if self.server else 0,
                "lambda": self.lam.stats()}

    async def control(self, req):
        parts = req.raw_path.split("/")[2:]
        try:
            if parts == ["stats"] and req.method == "GET":
                return _control_response(self.stats())
            if parts == ["requests"] and req.method == "GET":
                last = int(req.query().get("last", len(self.log)))
                return _control_response({"requests": list(self.log)[-last:] if last else []})
            if parts == ["reset"] and req.method == "POST":
                opts = json.loads(req.body or b"{}")
                if opts.get("functions"):
                    self.load_functions()
                if opts.get("resources"):
                    self.reset_resources()
                self.reset_counters()
                return _control_response({"ok": True})
            if len(parts) == 2 and parts[0] == "function":
                if req.method == "POST":
                    self.set_function(parts[1], json.loads(req.body or b"{}"))
                    return _control_response({"ok": True})
                fn = self.lam.functions.get(parts[1])
                if req.method == "GET" and fn:
                    return _control_response({"behaviour": fn.behaviour, "stats": fn.stats(),
                                              "configuration": fn.configuration(),
                                              "imageUri": fn.image_uri})
                return _control_response({"error": "no function %r" % parts[1]}, 404)
            if parts == ["credentials"] and req.method == "POST":
                creds = json.loads(req.body or b"{}")
                check_credentials(creds)
                self.credentials.update(creds)
                return _control_response({"ok": True, "keys": sorted(self.credentials)})
            if len(parts) == 2 and parts[0] == "template" and req.method == "POST":
                self.set_template(parts[1], json.loads(req.body or b"{}"))
                return _control_response({"ok": True})
            if parts == ["iam"] and req.method == "GET":
                return _control_response(self.iam.state())
            if parts == ["iam"] and req.method == "POST":
                opts = json.loads(req.body or b"{}")
                k = opts.get("assumableAfter")
                if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                    raise ValueError('iam needs {"assumableAfter": K >= 0}')
                self.iam.assumable_after = k
                return _control_response({"ok": True})
            if parts == ["lambda"] and req.method == "POST":
                opts = json.loads(req.body or b"{}")
                k = opts.get("pendingPolls")
                if not isinstance(k, int) or isinstance(k, bool) or k < 0:
                    raise ValueError('lambda needs {"pendingPolls": N >= 0}')
                self.lam.settings["pendingPolls"] = k
                return _control_response({"ok": True})
            if parts == ["quota"] and req.method == "POST":
                value = json.loads(req.body or b"{}").get("value")
                if not isinstance(value, int) or value < 0:
                    raise ValueError('quota needs {"value": N >= 0}')
                self.quotas.concurrency = value
                return _control_response({"ok": True})
        except ValueError as e:
            return _control_response({"error": str(e)}, 400)
        return _control_response({"error": "no control operation %s %s" % (req.method, req.raw_path)}, 404)

    def on_error(self, req, exc):
        import traceback
        traceback.print_exception(exc, file=sys.stderr)
        _, fmt, _ = self.classify(req)
        return error_response(fmt, ApiError(500, "ServiceException", "stand-in bug: %r" % exc))


def _load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("endpoint.py: cannot read the %s file %s: %s" % (what, path, e))


async def _watch(pid, stop):
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
            return
        except PermissionError:
            pass
        await asyncio.sleep(0.5)


def _raise_fd_limit():
    """Thousands of connections need more descriptors than a soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def amain(args):
    config = _load_json(args.config, "config") if args.config else DEFAULT_CONFIG
    creds = _load_json(args.credentials, "credentials") if args.credentials else DEFAULT_CREDENTIALS
    try:
        check_credentials(creds)
    except ValueError as e:
        sys.exit("endpoint.py: %s" % e)
    try:
        ep = Endpoint(args, config, creds)
    except ValueError as e:
        sys.exit("endpoint.py: bad config: %s" % e)
    ep.server = Server(ep.handle, max_body=args.max_body, on_error=ep.on_error)
    port = await ep.server.start(args.host, args.port)
    print("PORT %d" % port, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    if args.watch_pid:
        asyncio.ensure_future(_watch(args.watch_pid, stop))
    await stop.wait()
    ep.server.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--config")
    p.add_argument("--credentials")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--registry", help="URL of a registry that holds the ECR repositories")
    p.add_argument("--s3-upstream", help="URL of an S3 server to proxy S3 requests to, after the check")
    p.add_argument("--watch-pid", type=int, help="exit when this process is gone")
    p.add_argument("--keep-requests", type=int, default=10000)
    p.add_argument("--request-log", help="append each request's log entry to FILE as a JSON line")
    p.add_argument("--max-body", type=int, default=256 * 1024 * 1024)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    _raise_fd_limit()
    if not args.host.startswith("127.") and args.host not in ("::1", "localhost"):
        p.error("--host must be a loopback address")
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
