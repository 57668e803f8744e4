"""ecr_api.py - the ECR and Service Quotas stand-ins (JSON 1.1 protocol).

ECR: GetAuthorizationToken, BatchGetImage, DescribeImages.  Images come from
the config's "ecr": {"repositories": ...} map or, when a registry URL is
given, from that registry's HTTP API (/v2/<repo>/manifests/<ref>,
/v2/<repo>/tags/list) with basic auth AWS:<token>, as ECR's own registry
works.  Service Quotas: GetServiceQuota and GetAWSDefaultServiceQuota for
Lambda's concurrent executions (L-B99A9384).
"""

import asyncio
import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.request

from awsfmt import ApiError, json_response

ECR_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
SQ_PREFIX = "ServiceQuotasV20190624."
REPO_RE = re.compile(r"^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
CONCURRENCY_QUOTA = "L-B99A9384"


def _ok(obj):
    return json_response(obj, content_type="application/x-amz-json-1.1")


def _bad(message, code="InvalidParameterException"):
    return ApiError(400, code, message)


def _manifest_size(text):
    try:
        m = json.loads(text)
        return sum(int(x.get("size", 0)) for x in [m.get("config") or {}] + list(m.get("layers") or []))
    except (ValueError, AttributeError, TypeError):
        return len(text)


class ImageSource:
    """Images by repository: from a fixed map, or asked of a registry."""

    def __init__(self, account, repositories=None, registry=None, user="AWS", password=None):
        self.account = account
        self.repositories = {}
        self.registry = registry.rstrip("/") if registry else None
        self.user = user
        self.password = password
        for name, images in (repositories or {}).items():
            self.repositories[name] = [self._normalise(name, i) for i in images]

    @staticmethod
    def _normalise(repo, img):
        manifest = img.get("manifest")
        digest = img.get("digest")
        if digest is None and manifest is None:
            raise ValueError("ecr image in %r needs a digest or a manifest" % repo)
        if manifest is None:
            manifest = json.dumps({"schemaVersion": 2, "note": "stand-in manifest for " + digest})
        if digest is None:
            digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        return {"digest": digest, "tags": list(img.get("tags", [])), "manifest": manifest,
                "mediaType": img.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
                "size": img.get("size", _manifest_size(manifest)),
                "pushedAt": img.get("pushedAt", time.time())}

    def knows(self, repo):
        return self.registry is not None or repo in self.repositories

    def _missing_repo(self, repo):
        return ApiError(400, "RepositoryNotFoundException",
                        "The repository with name '%s' does not exist in the registry with id '%s'"
                        % (repo, self.account))

    # -- registry client (blocking; run in a thread) --
    def _get(self, path, accept=None):
        req = urllib.request.Request(self.registry + path)
        if accept:
            req.add_header("Accept", accept)
        if self.password is not None:
            cred = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _registry_images(self, repo, refs):
        status, _, body = self._get("/v2/%s/tags/list" % repo)
        if status == 404:
            raise self._missing_repo(repo)
        if status != 200:
            raise ApiError(500, "ServerException", "registry answered %d for tags of %s" % (status, repo))
        tags = json.loads(body).get("tags") or []
        found = {}
        for ref in (refs if refs is not None else tags):
            status, headers, body = self._get("/v2/%s/manifests/%s" % (repo, ref), MANIFEST_TYPES)
            if status != 200:
                continue
            digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest") \
                or "sha256:" + hashlib.sha256(body).hexdigest()
            img = found.setdefault(digest, {
                "digest": digest, "tags": [], "manifest": body.decode(),
                "mediaType": headers.get("Content-Type", "").split(";")[0],
                "size": _manifest_size(body.decode()), "pushedAt": time.time()})
            for t in tags:
                if t == ref and t not in img["tags"]:
                    img["tags"].append(t)
        return list(found.values())

    async def images(self, repo, refs=None):
        """Images of repo (only those named by refs, tags or digests, if given)."""
        if repo in self.repositories:
            imgs = self.repositories[repo]
            if refs is None:
                return imgs
            return [i for i in imgs if i["digest"] in refs or set(i["tags"]) & set(refs)]
        if self.registry is None:
            raise self._missing_repo(repo)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._registry_images, repo, refs)

    async def lookup(self, repo, tag=None, digest=None, missing_ok=False):
        try:
            imgs = await self.images(repo, [r for r in (tag, digest) if r])
        except ApiError:
            if missing_ok:
                return None
            raise
        for i in imgs:
            if (digest is None or i["digest"] == digest) and (tag is None or tag in i["tags"]):
                return i
        return None


class EcrService:
    def __init__(self, account, region, images, token, proxy_endpoint):
        self.account = account
        self.region = region
        self.images = images
        self.token = token
        self.proxy_endpoint = proxy_endpoint or \
            "https://%s.dkr.ecr.%s.amazonaws.com" % (account, region)

    def _repo(self, body):
        repo = body.get("repositoryName")
        if not isinstance(repo, str) or not REPO_RE.match(repo):
            raise _bad("Invalid parameter at 'repositoryName' failed to satisfy constraint: "
                       "'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*"
                       "[a-z0-9]+(?:[._-][a-z0-9]+)*''")
        if body.get("registryId", self.account) != self.account:
            raise self.images._missing_repo(repo)
        return repo

    # the operations served (checked against botocore's model first)
    OPERATIONS = ("GetAuthorizationToken", "BatchGetImage", "DescribeImages")

    async def handle(self, op, body):
        if op == "GetAuthorizationToken":
            ids = body.get("registryIds") or [self.account]
            tok = base64.b64encode(("AWS:" + self.token).encode()).decode()
            return _ok({"authorizationData": [
                {"authorizationToken": tok, "expiresAt": time.time() + 12 * 3600,
                 "proxyEndpoint": self.proxy_endpoint} for _ in ids]})
        if op == "BatchGetImage":
            return await self._batch_get(body)
        if op == "DescribeImages":
            return await self._describe(body)
        raise ApiError(400, "UnknownOperationException", "Unknown operation %s%s" % (ECR_PREFIX, op))

    async def _batch_get(self, body):
        repo = self._repo(body)
        ids = body.get("imageIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("Invalid parameter at 'imageIds' failed to satisfy constraint: "
                       "'Member must have length between 1 and 100'")
        refs = [r for i in ids if isinstance(i, dict) for r in (i.get("imageTag"), i.get("imageDigest")) if r]
        imgs = await self.images.images(repo, refs)
        images, failures = [], []
        for iid in ids:
            tag, digest = (iid.get("imageTag"), iid.get("imageDigest")) if isinstance(iid, dict) else (None, None)
            if not tag and not digest:
                failures.append({"imageId": iid, "failureCode": "MissingDigestAndTag",
                                 "failureReason": "Invalid request parameters: both tag and digest cannot be null"})
                continue
            hit = next((i for i in imgs if (not digest or i["digest"] == digest)
                        and (not tag or tag in i["tags"])), None)
            if hit is None:
                code = "ImageTagDoesNotMatchDigest" if tag and digest and any(
                    i["digest"] == digest for i in imgs) else "ImageNotFound"
                failures.append({"imageId": iid, "failureCode": code,
                                 "failureReason": "Requested image not found"})
                continue
            images.append({"registryId": self.account, "repositoryName": repo,
                           "imageId": {"imageDigest": hit["digest"], **({"imageTag": tag} if tag else {})},
                           "imageManifest": hit["manifest"],
                           "imageManifestMediaType": hit["mediaType"]})
        return _ok({"images": images, "failures": failures})

    async def _describe(self, body):
        repo = self._repo(body)
        ids = body.get("imageIds")
        refs = None
        if ids is not None:
            if not isinstance(ids, list) or not ids:
                raise _bad("Invalid parameter at 'imageIds': must be a non-empty list")
            refs = [r for i in ids if isinstance(i, dict) for r in (i.get("imageTag"), i.get("imageDigest")) if r]
        imgs = await self.images.images(repo, refs)
        for iid in ids or []:
            tag, digest = iid.get("imageTag"), iid.get("imageDigest")
            if not any((not digest or i["digest"] == digest) and (not tag or tag in i["tags"]) for i in imgs):
                raise ApiError(400, "ImageNotFoundException",
                               "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist "
                               "within the repository with name '%s' in the registry with id '%s'"
                               % (digest or "null", tag or "null", repo, self.account))
        details = [{"registryId": self.account, "repositoryName": repo, "imageDigest": i["digest"],
                    **({"imageTags": i["tags"]} if i["tags"] else {}),
                    "imageSizeInBytes": i["size"], "imagePushedAt": i["pushedAt"],
                    "imageManifestMediaType": i["mediaType"]} for i in imgs]
        return _ok({"imageDetails": details})


class QuotaService:
    def __init__(self, account, region, concurrency=1000):
        self.account = account
        self.region = region
        self.concurrency = concurrency

    OPERATIONS = ("GetServiceQuota", "GetAWSDefaultServiceQuota")

    async def handle(self, op, body):
        if op not in self.OPERATIONS:
            raise ApiError(400, "UnknownOperationException", "Unknown operation %s%s" % (SQ_PREFIX, op))
        svc, code = body.get("ServiceCode"), body.get("QuotaCode")
        if not isinstance(svc, str) or not isinstance(code, str):
            raise ApiError(400, "IllegalArgumentException", "ServiceCode and QuotaCode are required.")
        if (svc, code) != ("lambda", CONCURRENCY_QUOTA):
            raise ApiError(400, "NoSuchResourceException",
                           "The request failed because the specified service or quota does not "
                           "exist: %s/%s." % (svc, code))
        value = 1000 if op == "GetAWSDefaultServiceQuota" else self.concurrency
        return _ok({"Quota": {
            "ServiceCode": "lambda", "ServiceName": "AWS Lambda",
            "QuotaArn": "arn:aws:servicequotas:%s:%s:lambda/%s" % (self.region, self.account, code),
            "QuotaCode": code, "QuotaName": "Concurrent executions", "Value": float(value),
            "Unit": "None", "Adjustable": True, "GlobalQuota": False}})
