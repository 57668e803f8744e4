"""test_endpoint.py - self-test of the AWS stand-in endpoint.py.

Runs endpoint.py in a subprocess on 127.0.0.1 and talks to it with requests
signed by botocore (and, where curl is on PATH, by curl's own --aws-sigv4
signer): valid requests must pass, each kind of bad request must be refused
with AWS's code, status and format, and the Lambda behaviours (delays,
throttling, server errors, limits, update state machine) must do what the
config says.

    python3 -m unittest tests/services/aws/test_endpoint.py
"""

import asyncio
import concurrent.futures
import datetime
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import http.client

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDS = Credentials("AKIDEXAMPLE", SECRET)
TEMP_CREDS = Credentials("ASIATEMPEXAMPLE", "tempsecret/EXAMPLE", "session-token-EXAMPLE")
ACCOUNT = "123456789012"
ECR_HOST = ACCOUNT + ".dkr.ecr.us-east-1.amazonaws.com"
DIGEST = "sha256:" + "ab" * 32
ECR_T = "AmazonEC2ContainerRegistry_V20150921."
SQ_T = "ServiceQuotasV20190624."
JSON11 = "application/x-amz-json-1.1"

CONFIG = {
    "functions": {
        "hypertest-test": {"mode": "success"},
        "echo": {"mode": "echo"},
        "slow": {"mode": "success", "delayMs": 1000},
        "failing": {"mode": "functionError", "errorMessage": "it broke", "errorType": "TypeError"},
        "upper": {"mode": "command", "command": [sys.executable, "-c",
                  "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('log line')"]},
        "big": {"mode": "command", "command": [sys.executable, "-c",
                "import sys; sys.stdout.write('\"' + 'x' * 6291600 + '\"')"]},
        "sleepy": {"mode": "command", "timeoutMs": 300,
                   "command": [sys.executable, "-c", "import time; time.sleep(30)"]},
        "crash": {"mode": "command", "command": [sys.executable, "-c", "raise SystemExit(3)"]},
        "deploy": {"mode": "success", "updateDelayMs": 2000},
        "deploy-fail": {"mode": "success", "updateDelayMs": 300,
                        "updateFailure": {"reason": "image pull failed", "reasonCode": "ImageNotFound"}},
    },
    "ecr": {"token": "tok-EXAMPLE", "proxyEndpoint": "http://127.0.0.1:5999",
            "repositories": {"hypertest/app": [{"digest": DIGEST, "tags": ["v1", "latest"],
                                                "manifest": "{\"schemaVersion\": 2}"}]}},
}


def sign(method, port, path, service, body=b"", headers=None, creds=CREDS,
         region="us-east-1", when=None):
    """Headers for a request signed by botocore's SigV4Auth; when: a datetime to sign at."""
    req = AWSRequest(method=method, url="http://127.0.0.1:%d%s" % (port, path),
                     data=body, headers=headers or {})
    auth = SigV4Auth(creds, service, region)
    if when is None:
        auth.add_auth(req)
    else:   # add_auth's steps with a chosen clock, all of them botocore's own
        req.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        auth._modify_request_before_signing(req)
        sig = auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)
        auth._inject_signature_to_request(req, sig)
    return dict(req.headers.items())


class Reply:
    def __init__(self, r):
        self.status = r.status
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.raw = r.read()

    def json(self):
        return json.loads(self.raw)


def send(port, method, path, body=b"", headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, body=body, headers=headers or {})
        return Reply(c.getresponse())
    finally:
        if conn is None:
            c.close()


class EndpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ht-aws-endpoint-")
        cfg = os.path.join(cls.tmp, "config.json")
        creds = os.path.join(cls.tmp, "credentials.json")
        with open(cfg, "w") as f:
            json.dump(CONFIG, f)
        with open(creds, "w") as f:
            json.dump({"AKIDEXAMPLE": {"secret": SECRET},
                       "ASIATEMPEXAMPLE": {"secret": TEMP_CREDS.secret_key,
                                           "sessionToken": TEMP_CREDS.token}}, f)
        with open(os.path.join(cls.tmp, "stderr"), "w") as err:
            cls.proc = subprocess.Popen(
                [sys.executable, "-B", os.path.join(HERE, "endpoint.py"), "--port", "0", "--config", cfg,
                 "--credentials", creds, "--watch-pid", str(os.getpid())],
                stdout=subprocess.PIPE, stderr=err)
        ready, _, _ = select.select([cls.proc.stdout], [], [], 30)
        line = cls.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            cls.proc.kill()
            raise RuntimeError("endpoint.py did not start: %r %s" % (
                line, open(os.path.join(cls.tmp, "stderr")).read()))
        cls.port = int(line.split()[1])

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.proc.stdout.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.control("POST", "reset", {"functions": True})

    # ---- helpers -------------------------------------------------------------
    def control(self, method, what, obj=None):
        rep = send(self.port, method, "/_control/" + what,
                   json.dumps(obj).encode() if obj is not None else b"")
        self.assertLess(rep.status, 300, rep.raw)
        return rep.json()

    def call(self, method, path, service="lambda", body=b"", headers=None, **kw):
        return send(self.port, method, path, body,
                    sign(method, self.port, path, service, body, headers, **kw))

    def invoke(self, name, payload=None, headers=None, **kw):
        body = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
        return self.call("POST", "/2015-03-31/functions/%s/invocations" % name, "lambda", body,
                         headers, **kw)

    def json11(self, target, body, service=None, **kw):
        svc = service or ("ecr" if target.startswith(ECR_T) else "servicequotas")
        return self.call("POST", "/", svc, json.dumps(body).encode(),
                         {"X-Amz-Target": target, "Content-Type": JSON11}, **kw)

    def assertLambdaError(self, rep, status, code, message=None):
        self.assertEqual(rep.status, status, rep.raw)
        self.assertEqual(rep.headers.get("x-amzn-errortype"), code, rep.raw)
        body = rep.json()
        self.assertEqual(body["Type"], "Service" if status >= 500 else "User")
        if message is not None:
            self.assertIn(message, body["message"])
        return body

    def assertJson11Error(self, rep, status, code, message=None):
        self.assertEqual(rep.status, status, rep.raw)
        body = rep.json()
        self.assertEqual(body["__type"], code, rep.raw)
        if message is not None:
            self.assertIn(message, body["message"])
        return body

    def last_request(self):
        return self.control("GET", "requests?last=1")["requests"][0]

    # ---- signatures ----------------------------------------------------------
    def test_valid_requests_pass_for_each_service(self):
        rep = self.invoke("hypertest-test", {"runId": "r", "testId": "t",
                                             "context": {"name": "Suite > a", "filePath": "a.spec.ts"}})
        self.assertEqual(rep.status, 200, rep.raw)
        self.assertEqual(rep.json(), {"success": True, "name": "Suite > a", "filePath": "a.spec.ts",
                                      "duration": 0})
        self.assertEqual(rep.headers["x-amz-executed-version"], "$LATEST")
        rep = self.json11(ECR_T + "GetAuthorizationToken", {})
        self.assertEqual(rep.status, 200, rep.raw)
        rep = self.json11(SQ_T + "GetServiceQuota", {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"})
        self.assertEqual(rep.status, 200, rep.raw)
        self.assertEqual(rep.json()["Quota"]["Value"], 1000)
        log = self.control("GET", "requests")["requests"]
        self.assertEqual([r["auth"] for r in log], ["ok"] * 3)
        self.assertEqual([r["operation"] for r in log], ["Invoke", "GetAuthorizationToken", "GetServiceQuota"])

    def test_missing_authentication(self):
        rep = send(self.port, "GET", "/2015-03-31/functions/hypertest-test")
        self.assertLambdaError(rep, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        rep = send(self.port, "POST", "/", b"{}", {"X-Amz-Target": ECR_T + "GetAuthorizationToken",
                                                   "Content-Type": JSON11})
        self.assertJson11Error(rep, 403, "MissingAuthenticationTokenException")
        self.assertEqual(self.last_request()["auth"], "MissingAuthenticationTokenException")

    def test_unknown_access_key(self):
        rep = self.invoke("hypertest-test", creds=Credentials("AKIDUNKNOWN", SECRET))
        self.assertLambdaError(rep, 403, "UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        rep = self.json11(SQ_T + "GetServiceQuota", {}, creds=Credentials("AKIDUNKNOWN", SECRET))
        self.assertJson11Error(rep, 403, "UnrecognizedClientException")

    def test_wrong_secret(self):
        rep = self.invoke("hypertest-test", creds=Credentials("AKIDEXAMPLE", "not-the-secret"))
        body = self.assertLambdaError(rep, 403, "InvalidSignatureException",
                                      "The request signature we calculated does not match")
        self.assertIn("The Canonical String for this request should have been", body["message"])
        self.assertNotIn(SECRET, rep.raw.decode())

    def test_tampered_body_header_and_query(self):
        path = "/2015-03-31/functions/echo/invocations"
        hdrs = sign("POST", self.port, path, "lambda", b'{"a": 1}')
        rep = send(self.port, "POST", path, b'{"a": 2}', hdrs)
        self.assertLambdaError(rep, 403, "InvalidSignatureException", "does not match")
        hdrs = sign("POST", self.port, "/", "ecr", b"{}",
                    {"X-Amz-Target": ECR_T + "DescribeImages", "Content-Type": JSON11})
        hdrs["X-Amz-Target"] = ECR_T + "GetAuthorizationToken"
        self.assertJson11Error(send(self.port, "POST", "/", b"{}", hdrs), 403, "InvalidSignatureException")
        hdrs = sign("GET", self.port, "/2015-03-31/functions/echo?Qualifier=%24LATEST", "lambda")
        rep = send(self.port, "GET", "/2015-03-31/functions/echo?Qualifier=1", b"", hdrs)
        self.assertLambdaError(rep, 403, "InvalidSignatureException")

    def test_query_and_encoded_path_are_canonicalised_like_aws(self):
        rep = self.call("GET", "/2015-03-31/functions/echo?Qualifier=%24LATEST")
        self.assertEqual(rep.status, 200, rep.raw)
        arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A" + ACCOUNT + "%3Afunction%3Aecho"
        rep = self.call("GET", "/2015-03-31/functions/%s/configuration" % arn)
        self.assertEqual(rep.status, 200, rep.raw)
        self.assertEqual(rep.json()["FunctionName"], "echo")

    def test_content_sha256_must_match_body(self):
        path = "/2015-03-31/functions/echo/invocations"
        good = sign("POST", self.port, path, "lambda", b"{}",
                    {"X-Amz-Content-SHA256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"})
        self.assertEqual(send(self.port, "POST", path, b"{}", good).status, 200)
        bad = sign("POST", self.port, path, "lambda", b"{}", {"X-Amz-Content-SHA256": "0" * 64})
        self.assertLambdaError(send(self.port, "POST", path, b"{}", bad), 403,
                               "InvalidSignatureException", "x-amz-content-sha256")

    def test_clock_skew(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        for minutes in (-4, 4):
            rep = self.invoke("hypertest-test", when=now + datetime.timedelta(minutes=minutes))
            self.assertEqual(rep.status, 200, rep.raw)
        rep = self.invoke("hypertest-test", when=now - datetime.timedelta(minutes=6))
        self.assertLambdaError(rep, 403, "InvalidSignatureException", "Signature expired")
        rep = self.invoke("hypertest-test", when=now + datetime.timedelta(minutes=6))
        self.assertLambdaError(rep, 403, "InvalidSignatureException", "Signature not yet current")

    def test_scope_service_and_region(self):
        path = "/2015-03-31/functions/hypertest-test"
        rep = send(self.port, "GET", path, b"", sign("GET", self.port, path, "ecr"))
        self.assertLambdaError(rep, 403, "InvalidSignatureException",
                               "Credential should be scoped to correct service: 'lambda'")
        rep = self.json11(ECR_T + "GetAuthorizationToken", {}, service="lambda")
        self.assertJson11Error(rep, 403, "InvalidSignatureException", "'ecr'")
        rep = send(self.port, "GET", path, b"", sign("GET", self.port, path, "lambda", region="eu-west-1"))
        self.assertLambdaError(rep, 403, "InvalidSignatureException", "valid region")

    def test_session_token(self):
        self.assertEqual(self.invoke("hypertest-test", creds=TEMP_CREDS).status, 200)
        rep = self.invoke("hypertest-test", creds=Credentials(TEMP_CREDS.access_key, TEMP_CREDS.secret_key))
        self.assertLambdaError(rep, 403, "UnrecognizedClientException")
        rep = self.invoke("hypertest-test", creds=Credentials(TEMP_CREDS.access_key,
                                                              TEMP_CREDS.secret_key, "other-token"))
        self.assertLambdaError(rep, 403, "UnrecognizedClientException")
        rep = self.invoke("hypertest-test", creds=Credentials("AKIDEXAMPLE", SECRET, "unexpected"))
        self.assertLambdaError(rep, 403, "UnrecognizedClientException")

    def test_malformed_authorization(self):
        path = "/2015-03-31/functions/hypertest-test"
        hdrs = sign("GET", self.port, path, "lambda")
        for bad, code in [
                (hdrs["Authorization"].replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "IncompleteSignatureException"),
                (hdrs["Authorization"].split(", Signature=")[0], "IncompleteSignatureException"),
                (hdrs["Authorization"].replace("SignedHeaders=host;", "SignedHeaders="), "InvalidSignatureException"),
                (hdrs["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=content-type;host;"),
                 "InvalidSignatureException")]:
            rep = send(self.port, "GET", path, b"", dict(hdrs, Authorization=bad))
            self.assertLambdaError(rep, 403, code)
        no_date = {k: v for k, v in hdrs.items() if k != "X-Amz-Date"}
        self.assertLambdaError(send(self.port, "GET", path, b"", no_date), 403, "IncompleteSignatureException")

    @unittest.skipUnless(shutil.which("curl"), "curl not on PATH")
    def test_curl_aws_sigv4_signer_is_accepted(self):
        out = subprocess.run(
            ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:lambda",
             "--user", "AKIDEXAMPLE:" + SECRET, "-H", "Content-Type: application/json",
             "-d", '{"context": {"id": "curl"}}',
             "http://127.0.0.1:%d/2015-03-31/functions/hypertest-test/invocations" % self.port],
            capture_output=True, text=True, timeout=30, check=True).stdout
        body, code = out.rsplit("\n", 1)
        self.assertEqual(code, "200", body)
        self.assertEqual(json.loads(body)["name"], "curl")

    def test_unsupported_paths_and_targets(self):
        rep = self.call("GET", "/2015-03-31/layers")
        self.assertLambdaError(rep, 404, "UnknownOperationException")
        rep = self.call("DELETE", "/2015-03-31/functions/hypertest-test")
        self.assertLambdaError(rep, 404, "UnknownOperationException")
        rep = self.json11(ECR_T + "DeleteRepository", {"repositoryName": "x"})
        self.assertJson11Error(rep, 400, "UnknownOperationException")
        rep = self.json11(SQ_T + "ListServices", {})
        self.assertJson11Error(rep, 400, "UnknownOperationException")
        rep = self.call("POST", "/", "ecr", b"{}", {"X-Amz-Target": ECR_T + "GetAuthorizationToken",
                                                    "Content-Type": "application/json"})
        self.assertJson11Error(rep, 400, "SerializationException")
        self.assertEqual(self.last_request()["auth"], "ok")

    # ---- HTTP ----------------------------------------------------------------
    def test_keep_alive_chunked_and_expect_continue(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        path = "/2015-03-31/functions/echo/invocations"
        for i in range(3):
            body = json.dumps({"n": i}).encode()
            rep = send(self.port, "POST", path, body, sign("POST", self.port, path, "lambda", body), conn)
            self.assertEqual(rep.json(), {"n": i})
        body = json.dumps({"chunked": "x" * 100000}).encode()
        hdrs = sign("POST", self.port, path, "lambda", body)
        hdrs["Transfer-Encoding"] = "chunked"
        conn.request("POST", path, body=iter([body[:4000], body[4000:]]), headers=hdrs, encode_chunked=True)
        self.assertEqual(Reply(conn.getresponse()).raw, body)
        hdrs = sign("POST", self.port, path, "lambda", body)
        hdrs["Expect"] = "100-continue"
        self.assertEqual(send(self.port, "POST", path, body, hdrs, conn).raw, body)
        conn.close()

    # ---- Lambda Invoke -----------------------------------------------------
    def test_unknown_function_and_bad_qualifier(self):
        self.assertLambdaError(self.invoke("nope"), 404, "ResourceNotFoundException",
                               "Function not found: arn:aws:lambda:us-east-1:%s:function:nope" % ACCOUNT)
        rep = self.call("POST", "/2015-03-31/functions/echo/invocations?Qualifier=7", body=b"{}")
        self.assertLambdaError(rep, 404, "ResourceNotFoundException")

    def test_invocation_type_and_payload_limits(self):
        rep = self.invoke("echo", {}, {"X-Amz-Invocation-Type": "Event"})
        self.assertLambdaError(rep, 400, "InvalidParameterValueException")
        self.assertLambdaError(self.invoke("echo", b"{not json"), 400, "InvalidRequestContentException")
        big = json.dumps({"p": "x" * 6291456}).encode()
        self.assertLambdaError(self.invoke("echo", big), 413, "RequestTooLargeException",
                               "Request must be smaller than 6291456 bytes")
        just = json.dumps("x" * (6291456 - 2)).encode()
        rep = self.invoke("echo", just)
        self.assertEqual((rep.status, len(rep.raw)), (200, 6291456))

    def test_modes(self):
        self.assertEqual(self.invoke("echo", {"a": [1, 2]}).json(), {"a": [1, 2]})
        rep = self.invoke("failing")
        self.assertEqual(rep.status, 200)
        self.assertEqual(rep.headers["x-amz-function-error"], "Unhandled")
        self.assertEqual(rep.json(), {"errorMessage": "it broke", "errorType": "TypeError"})
        rep = self.invoke("upper", {"k": "v"}, {"X-Amz-Log-Type": "Tail"})
        self.assertEqual(rep.json(), {"K": "V"})
        import base64
        self.assertIn(b"log line", base64.b64decode(rep.headers["x-amz-log-result"]))
        rep = self.invoke("crash")
        self.assertEqual(rep.headers["x-amz-function-error"], "Unhandled")
        self.assertEqual(rep.json()["errorType"], "Runtime.ExitError")
        self.assertIn("exit status 3", rep.json()["errorMessage"])
        t0 = time.monotonic()
        rep = self.invoke("sleepy")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(rep.headers["x-amz-function-error"], "Unhandled")
        self.assertIn("Task timed out after 0.30 seconds", rep.json()["errorMessage"])

    def test_response_over_6mb_is_a_function_error(self):
        rep = self.invoke("big")
        self.assertEqual(rep.status, 200)
        self.assertEqual(rep.headers["x-amz-function-error"], "Unhandled")
        self.assertEqual(rep.json()["errorType"], "Function.ResponseSizeTooLarge")

    def test_500_concurrent_invocations_of_one_second(self):
        n = 500
        path = "/2015-03-31/functions/slow/invocations"
        reqs = []
        for i in range(n):
            body = json.dumps({"context": {"id": "t%d" % i}}).encode()
            hdrs = sign("POST", self.port, path, "lambda", body)
            head = "".join("%s: %s\r\n" % kv for kv in hdrs.items())
            reqs.append(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n%s\r\n"
                         % (path, self.port, len(body), head)).encode() + body)

        async def one(data, conns):
            reader, writer = conns
            writer.write(data)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line == b"\r\n":
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = json.loads(await reader.readexactly(length))
            writer.close()
            return status, body

        async def run():
            conns = [await asyncio.open_connection("127.0.0.1", self.port) for _ in range(n)]
            t0 = time.monotonic()
            out = await asyncio.gather(*(one(d, c) for d, c in zip(reqs, conns)))
            return time.monotonic() - t0, out

        wall, out = asyncio.run(run())
        self.assertEqual(sorted(b["name"] for s, b in out), sorted("t%d" % i for i in range(n)))
        self.assertEqual({s for s, b in out}, {200})
        self.assertLess(wall, 3.0)
        self.assertGreaterEqual(wall, 1.0)
        stats = self.control("GET", "stats")["lambda"]["functions"]["slow"]
        self.assertEqual((stats["invocations"], stats["maxInFlight"], stats["statuses"]),
                         (n, n, {"200": n}))
        sys.stderr.write("[500 concurrent 1 s invocations: %.2f s] " % wall)

    def test_throttle_every_m(self):
        self.control("POST", "function/echo", {"mode": "echo", "throttle": {"burst": 2, "every": 5},
                                              "retryAfter": 3})
        statuses = []
        for i in range(10):
            rep = self.invoke("echo", {"i": i})
            statuses.append(rep.status)
            if rep.status == 429:
                self.assertEqual(rep.headers["retry-after"], "3")
                self.assertLambdaError(rep, 429, "TooManyRequestsException", "Rate Exceeded.")
        self.assertEqual(statuses, [429, 429, 200, 200, 200, 429, 429, 200, 200, 200])
        st = self.control("GET", "stats")["lambda"]["functions"]["echo"]
        self.assertEqual(st["statuses"], {"200": 6, "429": 4})
        self.assertEqual(st["invocations"], 10)

    def test_server_errors(self):
        self.control("POST", "function/echo", {"mode": "echo",
                                              "serverErrors": {"burst": 1, "every": 3, "status": [500, 502, 503]}})
        statuses = [self.invoke("echo").status for _ in range(9)]
        self.assertEqual(statuses, [500, 200, 200, 502, 200, 200, 503, 200, 200])
        self.assertLambdaError(self.invoke("echo"), 500, "ServiceException")

    def test_faults(self):
        """Each kind of injected fault as a client sees it, counted, listed by testId."""
        def only(kind):
            self.control("POST", "function/echo", {"mode": "success", "faults": {
                "rate": 1, "seed": 2, "kinds": {kind: 1}, "slowMs": 40, "retryAfter": 0}})
        payload = {"testId": "t-1", "context": {"id": "a"}}
        only("throttle")
        self.assertLambdaError(self.invoke("echo", payload), 429, "TooManyRequestsException")
        only("server503")
        self.assertLambdaError(self.invoke("echo", payload), 503, "ServiceException")
        only("functionError")
        rep = self.invoke("echo", payload)
        self.assertEqual((rep.status, rep.headers.get("x-amz-function-error")), (200, "Unhandled"))
        self.assertEqual(rep.json()["errorType"], "InjectedFault")
        only("garbage")
        rep = self.invoke("echo", payload)
        self.assertEqual(rep.status, 200)
        self.assertRaises(ValueError, rep.json)
        only("slow")
        rep = self.invoke("echo", payload)
        self.assertEqual((rep.status, rep.json()["name"]), (200, "a"))
        only("truncated")
        self.assertRaises(http.client.IncompleteRead, self.invoke, "echo", payload)
        only("reset")
        self.assertRaises((ConnectionError, http.client.RemoteDisconnected), self.invoke, "echo",
                          payload)
        stats = self.control("GET", "function/echo")["stats"]
        self.assertEqual((stats["faults"], stats["outcomes"]), ({"reset": 1}, {"t-1": ["reset"]}))
        # a seeded mix: the same seed, the same faults for the same invocation numbers
        runs = []
        for _ in range(2):
            self.control("POST", "function/echo", {"mode": "success", "faults": {
                "rate": 0.5, "seed": 9, "kinds": {"throttle": 1, "server500": 1, "garbage": 1}}})
            for i in range(20):
                self.invoke("echo", {"testId": "t%d" % i})
            runs.append(self.control("GET", "function/echo")["stats"])
        self.assertEqual(runs[0]["outcomes"], runs[1]["outcomes"])
        kinds = [o[0] for o in runs[0]["outcomes"].values()]
        self.assertTrue(0 < kinds.count("ok") < 20, kinds)
        self.assertEqual(runs[0]["faults"], {k: kinds.count(k) for k in set(kinds) - {"ok"}})
        for bad in ({"rate": 2}, {"rate": 0.1, "kinds": {"nope": 1}}, {"rate": 0.1, "extra": 1},
                    {"rate": 0.1, "kinds": {"reset": 0}}):
            rep = send(self.port, "POST", "/_control/function/echo",
                       json.dumps({"mode": "success", "faults": bad}).encode())
            self.assertEqual(rep.status, 400, (bad, rep.raw))

    def _concurrent(self, name, n):
        path = "/2015-03-31/functions/%s/invocations" % name

        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(lambda _: self.call("POST", path, body=b"{}"), range(n)))

    def test_concurrency_limits(self):
        self.control("POST", "function/echo", {"mode": "echo", "delayMs": 2000, "concurrencyLimit": 3})
        reps = self._concurrent("echo", 6)
        self.assertEqual(sorted(r.status for r in reps), [200] * 3 + [429] * 3)
        reasons = {r.json().get("Reason") for r in reps if r.status == 429}
        self.assertEqual(reasons, {"ReservedFunctionConcurrentInvocationLimitExceeded"})
        self.control("POST", "function/echo", {"mode": "echo", "delayMs": 2000})
        self.control("POST", "quota", {"value": 2})
        try:
            reps = self._concurrent("echo", 5)
            rep = self.json11(SQ_T + "GetServiceQuota", {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"})
            self.assertEqual(rep.json()["Quota"]["Value"], 2)
        finally:
            self.control("POST", "quota", {"value": 1000})
        self.assertEqual(sorted(r.status for r in reps), [200] * 2 + [429] * 3)
        self.assertEqual({r.json().get("Reason") for r in reps if r.status == 429},
                         {"ConcurrentInvocationLimitExceeded"})

    # ---- Lambda UpdateFunctionCode ------------------------------------------
    def config_of(self, name):
        rep = self.call("GET", "/2015-03-31/functions/%s/configuration" % name)
        self.assertEqual(rep.status, 200, rep.raw)
        return rep.json()

    def update(self, name, body):
        return self.call("PUT", "/2015-03-31/functions/%s/code" % name, body=json.dumps(body).encode())

    def test_update_function_code_goes_in_progress_then_successful(self):
        uri = ECR_HOST + "/hypertest/app:v1"
        before = self.config_of("deploy")
        self.assertEqual((before["State"], before["LastUpdateStatus"], before["PackageType"]),
                         ("Active", "Successful", "Image"))
        rep = self.update("deploy", {"ImageUri": uri})
        self.assertEqual(rep.status, 200, rep.raw)
        self.assertEqual(rep.json()["LastUpdateStatus"], "InProgress")
        self.assertEqual(rep.json()["CodeSha256"], DIGEST[7:])
        self.assertLambdaError(self.update("deploy", {"ImageUri": uri}), 409, "ResourceConflictException")
        self.assertEqual(self.config_of("deploy")["LastUpdateStatus"], "InProgress")
        time.sleep(2.2)
        after = self.config_of("deploy")
        self.assertEqual((after["State"], after["LastUpdateStatus"]), ("Active", "Successful"))
        self.assertNotEqual(after["RevisionId"], before["RevisionId"])
        code = self.call("GET", "/2015-03-31/functions/deploy").json()["Code"]
        self.assertEqual(code["ImageUri"], uri)
        self.assertEqual(code["ResolvedImageUri"], ECR_HOST + "/hypertest/app@" + DIGEST)
        rep = self.update("deploy", {"ImageUri": uri, "RevisionId": before["RevisionId"]})
        self.assertLambdaError(rep, 412, "PreconditionFailedException")

    def test_update_function_code_failure(self):
        old = self.call("GET", "/2015-03-31/functions/deploy-fail").json()["Code"]["ImageUri"]
        rep = self.update("deploy-fail", {"ImageUri": ECR_HOST + "/hypertest/app@" + DIGEST})
        self.assertEqual(rep.status, 200, rep.raw)
        time.sleep(0.5)
        cfg = self.config_of("deploy-fail")
        self.assertEqual((cfg["LastUpdateStatus"], cfg["LastUpdateStatusReason"],
                          cfg["LastUpdateStatusReasonCode"]), ("Failed", "image pull failed", "ImageNotFound"))
        self.assertEqual(self.call("GET", "/2015-03-31/functions/deploy-fail").json()["Code"]["ImageUri"], old)

    def test_update_function_code_validation(self):
        for body, message in [
                ({"ImageUri": ECR_HOST + "/hypertest/app"}, "is not valid"),
                ({"ImageUri": "docker.io/library/busybox:latest"}, "is not valid"),
                ({"ImageUri": ACCOUNT + ".dkr.ecr.eu-west-1.amazonaws.com/hypertest/app:v1"}, "same region"),
                ({"ImageUri": ECR_HOST + "/hypertest/app:v9"}, "does not exist"),
                ({"ZipFile": "UEsDBA=="}, "ZipFile"),
                ({}, "Please provide ImageUri")]:
            self.assertLambdaError(self.update("deploy", body), 400, "InvalidParameterValueException", message)
        self.assertEqual(self.config_of("deploy")["LastUpdateStatus"], "Successful")

    # ---- ECR and Service Quotas --------------------------------------------
    def test_ecr_authorization_token(self):
        data = self.json11(ECR_T + "GetAuthorizationToken", {}).json()["authorizationData"][0]
        import base64
        self.assertEqual(base64.b64decode(data["authorizationToken"]), b"AWS:tok-EXAMPLE")
        self.assertEqual(data["proxyEndpoint"], "http://127.0.0.1:5999")
        self.assertGreater(data["expiresAt"], time.time() + 3600)

    def test_ecr_images(self):
        rep = self.json11(ECR_T + "BatchGetImage", {"repositoryName": "hypertest/app",
                                                    "imageIds": [{"imageTag": "latest"}, {"imageTag": "nope"}]})
        body = rep.json()
        self.assertEqual([i["imageId"] for i in body["images"]], [{"imageDigest": DIGEST, "imageTag": "latest"}])
        self.assertEqual(body["images"][0]["imageManifest"], "{\"schemaVersion\": 2}")
        self.assertEqual([(f["imageId"], f["failureCode"]) for f in body["failures"]],
                         [({"imageTag": "nope"}, "ImageNotFound")])
        rep = self.json11(ECR_T + "DescribeImages", {"repositoryName": "hypertest/app",
                                                     "imageIds": [{"imageDigest": DIGEST}]})
        self.assertEqual(rep.json()["imageDetails"][0]["imageTags"], ["v1", "latest"])
        rep = self.json11(ECR_T + "DescribeImages", {"repositoryName": "hypertest/app",
                                                     "imageIds": [{"imageTag": "v2"}]})
        self.assertJson11Error(rep, 400, "ImageNotFoundException")
        rep = self.json11(ECR_T + "BatchGetImage", {"repositoryName": "other",
                                                    "imageIds": [{"imageTag": "latest"}]})
        self.assertJson11Error(rep, 400, "RepositoryNotFoundException")
        rep = self.json11(ECR_T + "BatchGetImage", {"repositoryName": "Bad Name", "imageIds": []})
        self.assertJson11Error(rep, 400, "InvalidParameterException")

    # ---- botocore's service model ---------------------------------------------
    def test_requests_are_checked_against_the_service_model(self):
        rep = self.json11(ECR_T + "DescribeImages", {"imageIds": [{"imageTag": "v1"}]})
        self.assertJson11Error(rep, 400, "InvalidParameterException",
                               "Value null at 'repositoryName' failed to satisfy constraint")
        rep = self.json11(ECR_T + "BatchGetImage", {"repositoryName": "hypertest/app",
                                                    "imageIds": [{"imageTag": "latest"}], "force": True})
        self.assertJson11Error(rep, 400, "InvalidParameterException", "Member 'force'")
        rep = self.json11(ECR_T + "BatchGetImage", {"repositoryName": "hypertest/app",
                                                    "imageIds": [{"imageTag": 7}]})
        self.assertJson11Error(rep, 400, "InvalidParameterException", "must be a string")
        rep = self.json11(SQ_T + "GetServiceQuota", {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384",
                                                     "Region": "eu-west-1"})
        self.assertJson11Error(rep, 400, "IllegalArgumentException", "Member 'Region'")
        image = ECR_HOST + "/hypertest/app:v1"
        for body, message in [({"ImageUri": image, "Architectures": ["sparc"]}, "enum value set: [x86_64, arm64]"),
                              ({"ImageUri": image, "Publish": "yes"}, "must be a boolean"),
                              ({"ImageUri": image, "Handler": "x"}, "Member 'Handler'")]:
            self.assertLambdaError(self.update("deploy", body), 400, "ValidationException", message)
        # nothing was changed by a refused request
        self.assertEqual(self.config_of("deploy")["LastUpdateStatus"], "Successful")

    def test_model_check_ranges_maps_and_uri_members(self):
        import modelcheck
        op = modelcheck.operation("lambda", "UpdateFunctionConfiguration")
        with self.assertRaisesRegex(modelcheck.ModelError, "greater than or equal to 128"):
            modelcheck.validate(op, {"FunctionName": "f", "MemorySize": 64})
        with self.assertRaisesRegex(modelcheck.ModelError, "must be a string"):
            modelcheck.validate(op, {"FunctionName": "f", "Environment": {"Variables": {"A": 1}}})
        modelcheck.validate(op, {"FunctionName": "f", "MemorySize": 2048, "Timeout": 300,
                                 "EphemeralStorage": {"Size": 2048},
                                 "Environment": {"Variables": {"A": "1"}}})
        op = modelcheck.operation("lambda", "PutFunctionConcurrency")

        class Req:
            raw_path = "/2017-10-31/functions/my%2Dfn/concurrency"
            raw_query = ""
            body = b'{"ReservedConcurrentExecutions": 5}'

            def header(self, name, default=None):
                return default
        params = modelcheck.params_rest_json(op, Req(), json.loads(Req.body))
        self.assertEqual(params, {"FunctionName": "my-fn", "ReservedConcurrentExecutions": 5})
        modelcheck.validate(op, params)
        self.assertIsNone(modelcheck.operation("lambda", "NoSuchOperation"))

    def test_service_quota(self):
        rep = self.json11(SQ_T + "GetServiceQuota", {"ServiceCode": "lambda", "QuotaCode": "L-9FEE3D26"})
        self.assertJson11Error(rep, 400, "NoSuchResourceException")
        rep = self.json11(SQ_T + "GetServiceQuota", {"ServiceCode": "lambda"})
        self.assertJson11Error(rep, 400, "IllegalArgumentException")

    # ---- control API ---------------------------------------------------------
    def test_control_requests_and_reset(self):
        self.invoke("echo")
        send(self.port, "GET", "/2015-03-31/functions/echo")
        log = self.control("GET", "requests")["requests"]
        self.assertEqual([(r["method"], r["auth"], r["status"]) for r in log],
                         [("POST", "ok", 200), ("GET", "MissingAuthenticationTokenException", 403)])
        stats = self.control("GET", "stats")
        self.assertEqual(stats["requests"], 2)
        self.assertEqual(stats["auth"], {"ok": 1, "MissingAuthenticationTokenException": 1})
        self.control("POST", "reset")
        self.assertEqual(self.control("GET", "requests")["requests"], [])
        self.assertEqual(self.control("GET", "stats")["lambda"]["invocations"], 0)
        rep = send(self.port, "POST", "/_control/function/x", b'{"mode": "nonsense"}')
        self.assertEqual(rep.status, 400)


if __name__ == "__main__":
    unittest.main()
