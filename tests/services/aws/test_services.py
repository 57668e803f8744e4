"""test_services.py - services.sh and the real components behind it.

Starts s3rver, docker-registry and endpoint.py with services.sh and checks
them with botocore's own S3 client, the registry HTTP API (basic auth
AWS:<token>, as ECR's registry), ECR calls answered from that registry, the
Lambda Runtime API served by @vercel/fun to a shell bootstrap (fun-smoke.js),
and that everything dies with its owner.  A component that services.sh
skipped (no npm, no docker-registry) skips its tests.

    python3 -m unittest tests/services/aws/test_services.py
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import botocore.exceptions
import botocore.session
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_endpoint import ECR_T, JSON11, send, sign  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = os.path.join(HERE, "services.sh")


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if line.startswith("export "):
                k, _, v = line[7:].strip().partition("=")
                env[k] = v.strip("'")
    return env


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours is gone for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def pids(d):
    found = {}
    for f in os.listdir(d):
        if f.endswith(".pid"):
            with open(os.path.join(d, f)) as fh:
                found[f] = int(fh.read())
    return found


class ServicesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ht-aws-services-")
        env = dict(os.environ, HT_SERVICES_OWNER=str(os.getpid()))
        subprocess.run([SERVICES, "start", cls.dir], env=env, check=True, timeout=300)
        cls.env = read_env(os.path.join(cls.dir, "env"))
        cls.port = int(cls.env["HT_AWS_ENDPOINT"].rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        subprocess.run([SERVICES, "stop", cls.dir], check=True, timeout=60)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def need(self, var):
        if var not in self.env:
            self.skipTest("services.sh did not start what gives %s" % var)
        return self.env[var]

    def s3(self, endpoint, secret=None):
        return botocore.session.get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secret or self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def test_env_file(self):
        for k in ("HT_AWS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                  "HT_IAM_ENDPOINT", "HT_ECR_ENDPOINT", "HT_LAMBDA_ENDPOINT", "HT_AWS_REQUEST_LOG"):
            self.assertIn(k, self.env)
        self.assertEqual(self.env["AWS_REGION"], "us-east-1")
        for v in self.env.values():
            if v.startswith("http"):
                self.assertTrue(v.startswith("http://127.0.0.1:"), v)

    def test_s3rver_direct_and_through_the_signature_check(self):
        direct = self.s3(self.need("HT_S3_ENDPOINT"))
        bucket = self.env["HT_S3_BUCKET"]
        direct.put_object(Bucket=bucket, Key="run 1/t+1/log.txt", Body=b"a" * 5000)
        checked = self.s3(self.env["HT_S3_CHECKED_ENDPOINT"])
        self.assertEqual(checked.get_object(Bucket=bucket, Key="run 1/t+1/log.txt")["Body"].read(),
                         b"a" * 5000)
        checked.put_object(Bucket=bucket, Key="hypertest.manifest.json", Body=b"{}")
        keys = [o["Key"] for o in direct.list_objects_v2(Bucket=bucket)["Contents"]]
        self.assertEqual(sorted(keys), ["hypertest.manifest.json", "run 1/t+1/log.txt"])
        # s3rver itself takes any secret; the checked endpoint does not.
        self.s3(self.env["HT_S3_ENDPOINT"], "wrong").list_objects_v2(Bucket=bucket)
        with self.assertRaises(Exception) as cm:
            self.s3(self.env["HT_S3_CHECKED_ENDPOINT"], "wrong").list_objects_v2(Bucket=bucket)
        self.assertIn("SignatureDoesNotMatch", str(cm.exception))

    def registry(self, method, path, body=None, ctype=None, auth=True):
        req = urllib.request.Request(self.need("HT_ECR_REGISTRY") + path, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        if auth:
            cred = "%s:%s" % (self.env["HT_ECR_USER"], self.env["HT_ECR_PASSWORD"])
            req.add_header("Authorization", "Basic " + base64.b64encode(cred.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def push(self, repo, tag):
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
        status, headers, _ = self.registry("POST", "/v2/%s/blobs/uploads/" % repo)
        self.assertEqual(status, 202)
        loc = headers["Location"]
        loc = loc if loc.startswith("http") else self.env["HT_ECR_REGISTRY"] + loc
        req_path = loc[len(self.env["HT_ECR_REGISTRY"]):] + "&digest=" + cdigest
        self.assertEqual(self.registry("PUT", req_path, config, "application/octet-stream")[0], 201)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cdigest, "size": len(config)}, "layers": []}).encode()
        status, headers, _ = self.registry("PUT", "/v2/%s/manifests/%s" % (repo, tag), manifest,
                                           "application/vnd.oci.image.manifest.v1+json")
        self.assertEqual(status, 201)
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def test_registry_basic_auth_and_ecr_answers_from_it(self):
        self.assertEqual(self.registry("GET", "/v2/", auth=False)[0], 401)
        digest = self.push("hypertest/app", "v1")
        body = json.dumps({"repositoryName": "hypertest/app", "imageIds": [{"imageTag": "v1"}]}).encode()
        hdrs = sign("POST", self.port, "/", "ecr", body, {"X-Amz-Target": ECR_T + "BatchGetImage",
                                                         "Content-Type": JSON11})
        rep = send(self.port, "POST", "/", body, hdrs).json()
        self.assertEqual(rep["images"][0]["imageId"]["imageDigest"], digest)
        body = b"{}"
        hdrs = sign("POST", self.port, "/", "ecr", body, {"X-Amz-Target": ECR_T + "GetAuthorizationToken",
                                                         "Content-Type": JSON11})
        data = send(self.port, "POST", "/", body, hdrs).json()["authorizationData"][0]
        self.assertEqual(data["proxyEndpoint"], self.env["HT_ECR_REGISTRY"])
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        self.assertEqual((user, password), ("AWS", self.env["HT_ECR_PASSWORD"]))
        uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/hypertest/app:v1"
        body = json.dumps({"ImageUri": uri}).encode()
        path = "/2015-03-31/functions/hypertest-test/code"
        rep = send(self.port, "PUT", path, body, sign("PUT", self.port, path, "lambda", body))
        self.assertEqual(rep.status, 200, rep.raw)
        self.assertEqual(rep.json()["CodeSha256"], digest[7:])

    def request_log(self):
        with open(self.env["HT_AWS_REQUEST_LOG"]) as f:
            return [json.loads(line) for line in f]

    def client(self, service, env_var):
        return botocore.session.get_session().create_client(
            service, region_name="us-east-1", endpoint_url=self.need(env_var),
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def test_bucket_configuration_in_front_of_s3rver(self):
        s3 = self.client("s3", "HT_S3_CHECKED_ENDPOINT")
        self.need("HT_S3_ENDPOINT")
        s3.create_bucket(Bucket="prov-bucket")
        s3.put_public_access_block(Bucket="prov-bucket", PublicAccessBlockConfiguration=dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True))
        s3.put_bucket_tagging(Bucket="prov-bucket", Tagging={"TagSet": [{"Key": "hypertest", "Value": "p"}]})
        s3.put_bucket_lifecycle_configuration(Bucket="prov-bucket", LifecycleConfiguration={"Rules": [
            {"ID": "runs", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 14}}]})
        # objects of the same bucket live in s3rver, through the same endpoint
        s3.put_object(Bucket="prov-bucket", Key="run/a.txt", Body=b"a")
        s3.put_object(Bucket="prov-bucket", Key="run/b.txt", Body=b"b")
        self.assertEqual(s3.get_object(Bucket="prov-bucket", Key="run/a.txt")["Body"].read(), b"a")
        direct = self.s3(self.env["HT_S3_ENDPOINT"])
        self.assertEqual(direct.get_object(Bucket="prov-bucket", Key="run/b.txt")["Body"].read(), b"b")
        self.assertEqual(s3.get_bucket_tagging(Bucket="prov-bucket")["TagSet"], [{"Key": "hypertest", "Value": "p"}])
        # a checksum header is verified on what goes on to s3rver too
        body = b"checked"
        path = "/prov-bucket/sum.txt"
        hdrs = {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
                "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(b"other").digest()).decode()}
        rep = send(self.port, "PUT", path, body, sign("PUT", self.port, path, "s3", body, hdrs))
        self.assertEqual(rep.status, 400, rep.raw)
        self.assertIn(b"<Code>BadDigest</Code>", rep.raw)
        hdrs["x-amz-checksum-sha256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        rep = send(self.port, "PUT", path, body, sign("PUT", self.port, path, "s3", body, hdrs))
        self.assertEqual(rep.status, 200, rep.raw)
        err = None
        try:
            s3.delete_bucket(Bucket="prov-bucket")
        except botocore.exceptions.ClientError as e:
            err = e.response["Error"]["Code"]
        self.assertEqual(err, "BucketNotEmpty")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="prov-bucket")["Contents"]]
        self.assertEqual(keys, ["run/a.txt", "run/b.txt", "sum.txt"])
        out = s3.delete_objects(Bucket="prov-bucket", Delete={"Objects": [{"Key": k} for k in keys]})
        self.assertEqual(sorted(d["Key"] for d in out["Deleted"]), keys)
        s3.delete_bucket(Bucket="prov-bucket")
        with self.assertRaises(botocore.exceptions.ClientError):
            direct.head_bucket(Bucket="prov-bucket")
        # the bucket services.sh made exists for the configuration calls too
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            s3.get_public_access_block(Bucket=self.env["HT_S3_BUCKET"])
        self.assertEqual(cm.exception.response["Error"]["Code"], "NoSuchPublicAccessBlockConfiguration")
        log = self.request_log()
        ops = [r["operation"] for r in log if r["service"] == "s3"]
        for op in ("CreateBucket", "PutPublicAccessBlock", "PutObject", "GetObject", "ListObjectsV2",
                   "DeleteObjects", "DeleteBucket"):
            self.assertIn(op, ops)

    def test_provisioned_function_deploys_and_invokes(self):
        """role, repository and an image in the registry, CreateFunction on it, then
        UpdateFunctionCode and Invoke as for the config's functions."""
        iam = self.client("iam", "HT_IAM_ENDPOINT")
        ecr = self.client("ecr", "HT_ECR_ENDPOINT")
        lam = self.client("lambda", "HT_LAMBDA_ENDPOINT")
        self.need("HT_ECR_REGISTRY")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role = iam.create_role(RoleName="prov-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        repo = ecr.create_repository(repositoryName="prov/app")["repository"]
        first = self.push("prov/app", "v1")
        behaviour = {"mode": "command", "command": [sys.executable, "-c",
                     "import sys, json; print(json.dumps({'got': json.load(sys.stdin)}))"],
                     "updateDelayMs": 100}
        rep = send(self.port, "POST", "/_control/template/prov-fn", json.dumps(behaviour).encode())
        self.assertEqual(rep.status, 200, rep.raw)
        made = lam.create_function(FunctionName="prov-fn", PackageType="Image", Role=role["Arn"],
                                   Code={"ImageUri": repo["repositoryUri"] + ":v1"}, MemorySize=2048,
                                   Timeout=300, EphemeralStorage={"Size": 2048})
        self.assertEqual(made["CodeSha256"], first[7:])
        for _ in range(50):
            if lam.get_function(FunctionName="prov-fn")["Configuration"]["State"] == "Active":
                break
        second = self.push("prov/app", "v2")
        lam.update_function_code(FunctionName="prov-fn", ImageUri=repo["repositoryUri"] + "@" + second)
        for _ in range(100):
            cfg = lam.get_function_configuration(FunctionName="prov-fn")
            if cfg["LastUpdateStatus"] != "InProgress":
                break
            time.sleep(0.05)
        self.assertEqual((cfg["LastUpdateStatus"], cfg["CodeSha256"]), ("Successful", second[7:]))
        out = lam.invoke(FunctionName="prov-fn", Payload=json.dumps({"testId": "t1"}))
        self.assertEqual(json.loads(out["Payload"].read()), {"got": {"testId": "t1"}})
        # DeleteRepository with force empties the registry's repository
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            ecr.delete_repository(repositoryName="prov/app")
        self.assertEqual(cm.exception.response["Error"]["Code"], "RepositoryNotEmptyException")
        # the image's platform is read from its config in the registry
        lam.create_function(FunctionName="prov-arm", PackageType="Image", Role=role["Arn"],
                            Code={"ImageUri": repo["repositoryUri"] + ":v1"}, Architectures=["arm64"])
        lam.get_function(FunctionName="prov-arm")
        out = lam.invoke(FunctionName="prov-arm", Payload=b"{}")
        self.assertEqual((out.get("FunctionError"), json.loads(out["Payload"].read())["errorType"]),
                         ("Unhandled", "Runtime.InvalidEntrypoint"))
        ecr.delete_repository(repositoryName="prov/app", force=True)
        self.assertEqual(self.registry("GET", "/v2/prov/app/manifests/" + second)[0], 404)
        log = self.request_log()
        mine = [(r["operation"], r["mutating"]) for r in log if r["operation"] in
                ("CreateRole", "CreateRepository", "CreateFunction", "GetFunction", "Invoke")]
        self.assertIn(("CreateFunction", True), mine)
        self.assertIn(("GetFunction", False), mine)
        self.assertEqual([r for r in log if r["service"] in ("iam", "ecr", "lambda") and r["auth"] != "ok"],
                         [])

    def test_fun_serves_the_runtime_api_to_a_bootstrap(self):
        mods = self.need("HT_FUN_DIR")
        tmp = tempfile.mkdtemp(prefix="ht-fun-")
        try:
            files = []
            for i, payload in enumerate([{"runId": "r", "testId": "t1", "context": {"id": "a"}},
                                         {"n": 2}, {"fail": True}]):
                files.append(os.path.join(tmp, "p%d.json" % i))
                with open(files[-1], "w") as f:
                    json.dump(payload, f)
            out = os.path.join(tmp, "out")
            subprocess.run(["node", self.env["HT_FUN_SMOKE"], "--out", out, "--env", "HT_MARK=1",
                            os.path.join(HERE, "fun-bootstrap")] + files,
                           env=dict(os.environ, NODE_PATH=mods), check=True, timeout=120,
                           stdout=subprocess.DEVNULL)
            with open(out) as f:
                res = [json.loads(line) for line in f]
        finally:
            shutil.rmtree(tmp)
        first, second, failed = res
        self.assertEqual((first["StatusCode"], first["FunctionError"]), (200, None))
        self.assertEqual(first["Payload"]["payload"], {"runId": "r", "testId": "t1", "context": {"id": "a"}})
        self.assertEqual(second["Payload"]["payload"], {"n": 2})
        # one runtime process serves both, each with its own request id
        self.assertEqual((first["Payload"]["count"], second["Payload"]["count"]), (1, 2))
        self.assertEqual(first["Payload"]["pid"], second["Payload"]["pid"])
        self.assertNotEqual(first["Payload"]["requestId"], second["Payload"]["requestId"])
        self.assertIn("Lambda-Runtime-Aws-Request-Id: " + first["Payload"]["requestId"],
                      first["Payload"]["headers"])
        env = dict(line.split("=", 1) for line in first["Payload"]["env"].splitlines() if "=" in line)
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(env["HT_MARK"], "1")
        self.assertEqual(env["LAMBDA_TASK_ROOT"], os.path.join(HERE, "fun-bootstrap"))
        self.assertEqual(failed["FunctionError"], "Handled")
        self.assertEqual(failed["Payload"], {"errorMessage": "asked to fail", "errorType": "SmokeError"})

    def test_services_die_with_their_owner(self):
        d = tempfile.mkdtemp(prefix="ht-aws-owner-")
        owner = subprocess.Popen(["sleep", "300"])
        try:
            subprocess.run([SERVICES, "start", d], env=dict(os.environ, HT_SERVICES_OWNER=str(owner.pid)),
                           check=True, timeout=300)
            started = pids(d)
            self.assertIn("endpoint.pid", started)
            self.assertTrue(all(alive(p) for p in started.values()))
            owner.kill()
            owner.wait()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(alive(p) for p in started.values()):
                time.sleep(0.2)
            self.assertEqual([f for f, p in started.items() if alive(p)], [])
        finally:
            if owner.poll() is None:
                owner.kill()
                owner.wait()
            subprocess.run([SERVICES, "stop", d], timeout=60)
            shutil.rmtree(d, ignore_errors=True)

    def test_stop_ends_everything(self):
        d = tempfile.mkdtemp(prefix="ht-aws-stop-")
        try:
            subprocess.run([SERVICES, "start", d], env=dict(os.environ, HT_SERVICES_OWNER=str(os.getpid())),
                           check=True, timeout=300)
            started = pids(d)
            subprocess.run([SERVICES, "stop", d], check=True, timeout=60)
            self.assertEqual([f for f, p in started.items() if alive(p)], [])
            self.assertFalse(os.path.exists(os.path.join(d, "env")))
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
