"""ecr_api.py - the ECR and Service Quotas stand-ins (JSON 1.1 protocol).

ECR: GetAuthorizationToken, BatchGetImage, DescribeImages, and the
repositories themselves: CreateRepository, DescribeRepositories,
DeleteRepository (force), PutLifecyclePolicy, GetLifecyclePolicy,
DeleteLifecyclePolicy, PutImageScanningConfiguration, TagResource,
UntagResource, ListTagsForResource.  Images come from
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
        self.load(repositories)

    def load(self, repositories):
        """The fixed images (the config's), as at start."""
        self.repositories = {}
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
                "architecture": img.get("architecture"),
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

    def _delete(self, repo, digests):
        for d in digests:
            req = urllib.request.Request("%s/v2/%s/manifests/%s" % (self.registry, repo, d),
                                         method="DELETE")
            if self.password is not None:
                cred = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
                req.add_header("Authorization", "Basic " + cred)
            try:
                urllib.request.urlopen(req, timeout=30).read()
            except urllib.error.HTTPError:
                pass

    def _config_architecture(self, repo, manifest):
        try:
            digest = json.loads(manifest)["config"]["digest"]
        except (ValueError, KeyError, TypeError):
            return None
        status, _, body = self._get("/v2/%s/blobs/%s" % (repo, digest))
        if status != 200:
            return None
        try:
            return json.loads(body).get("architecture")
        except (ValueError, AttributeError):
            return None

    async def architecture(self, repo, image):
        """The image config's architecture (amd64, arm64), when a registry holds it."""
        if repo in self.repositories or self.registry is None:
            return image.get("architecture")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._config_architecture, repo, image["manifest"])

    async def delete_all(self, repo, imgs):
        """Forget repo's images (DeleteRepository with force)."""
        if repo in self.repositories:
            self.repositories[repo] = []
        elif self.registry is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._delete, repo, [i["digest"] for i in imgs])

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


# ---- repositories -------------------------------------------------------------------

def _policy_error(message):
    return _bad("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                "'Lifecycle policy validation failure: %s'" % message, "InvalidParameterException")


def check_lifecycle_policy(text):
    """ECR's checks of a lifecycle policy document (the parts a client writes)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _policy_error("Could not map policyString into LifecyclePolicy.") from None
    rules = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(rules, list) or not rules:
        raise _policy_error("object has missing required properties ([\"rules\"])")
    seen = set()
    for r in rules:
        if not isinstance(r, dict):
            raise _policy_error("rule is not an object")
        prio = r.get("rulePriority")
        if not isinstance(prio, int) or isinstance(prio, bool) or prio < 1:
            raise _policy_error("rulePriority must be an integer >= 1")
        if prio in seen:
            raise _policy_error("The rule priority %d is not unique." % prio)
        seen.add(prio)
        sel = r.get("selection")
        if not isinstance(sel, dict):
            raise _policy_error("object has missing required properties ([\"selection\"])")
        status = sel.get("tagStatus")
        if status not in ("tagged", "untagged", "any"):
            raise _policy_error("instance value (%s) not found in enum (possible values: "
                                "[\"tagged\",\"untagged\",\"any\"])" % json.dumps(status))
        if status == "tagged" and not (sel.get("tagPrefixList") or sel.get("tagPatternList")):
            raise _policy_error("tagPrefixList or tagPatternList is required for tagStatus tagged.")
        ctype = sel.get("countType")
        if ctype not in ("imageCountMoreThan", "sinceImagePushed"):
            raise _policy_error("instance value (%s) not found in enum (possible values: "
                                "[\"imageCountMoreThan\",\"sinceImagePushed\"])" % json.dumps(ctype))
        if ctype == "sinceImagePushed" and sel.get("countUnit") != "days":
            raise _policy_error("countUnit days is required for countType sinceImagePushed.")
        if ctype == "imageCountMoreThan" and "countUnit" in sel:
            raise _policy_error("countUnit is not allowed for countType imageCountMoreThan.")
        n = sel.get("countNumber")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _policy_error("countNumber must be an integer >= 1")
        action = r.get("action")
        if not isinstance(action, dict) or action.get("type") != "expire":
            raise _policy_error("action.type must be \"expire\"")
    return doc


class RepositoryOps:
    """EcrService's repository operations (apart from the image reads)."""


    def _known(self, body):
        repo = self._repo(body)
        r = self.repos.get(repo)
        if r is None:
            raise self.images._missing_repo(repo)
        return r

    def _public(self, r):
        return {k: r[k] for k in ("repositoryArn", "registryId", "repositoryName", "repositoryUri",
                                  "createdAt", "imageTagMutability", "imageScanningConfiguration",
                                  "encryptionConfiguration")}

    async def _CreateRepository(self, body):
        repo = self._repo(body)
        if repo in self.repos:
            raise ApiError(400, "RepositoryAlreadyExistsException",
                           "The repository with name '%s' already exists in the registry with id '%s'"
                           % (repo, self.account))
        r = {"repositoryArn": "arn:aws:ecr:%s:%s:repository/%s" % (self.region, self.account, repo),
             "registryId": self.account, "repositoryName": repo,
             "repositoryUri": "%s.dkr.ecr.%s.amazonaws.com/%s" % (self.account, self.region, repo),
             "createdAt": time.time(),
             "imageTagMutability": body.get("imageTagMutability", "MUTABLE"),
             "imageScanningConfiguration": {"scanOnPush": bool(
                 (body.get("imageScanningConfiguration") or {}).get("scanOnPush", False))},
             "encryptionConfiguration": body.get("encryptionConfiguration") or {"encryptionType": "AES256"},
             "tags": {}, "lifecyclePolicy": None}
        for t in body.get("tags") or []:
            r["tags"][t["Key"]] = t["Value"]
        self.repos[repo] = r
        return _ok({"repository": self._public(r)})

    async def _DescribeRepositories(self, body):
        if body.get("registryId", self.account) != self.account:
            raise ApiError(400, "RepositoryNotFoundException", "The registry with id '%s' has no "
                           "repositories" % body["registryId"])
        names = body.get("repositoryNames")
        if names is None:
            return _ok({"repositories": [self._public(r) for _, r in sorted(self.repos.items())]})
        out = []
        for n in names:
            r = self.repos.get(n)
            if r is None:
                raise self.images._missing_repo(n)
            out.append(self._public(r))
        return _ok({"repositories": out})

    async def _DeleteRepository(self, body):
        r = self._known(body)
        repo = r["repositoryName"]
        imgs = []
        if self.images.knows(repo):
            try:
                imgs = await self.images.images(repo)
            except ApiError:
                imgs = []
        if imgs and not body.get("force"):
            raise ApiError(400, "RepositoryNotEmptyException",
                           "The repository with name '%s' in registry with id '%s' cannot be deleted "
                           "because it still contains images" % (repo, self.account))
        if imgs:
            await self.images.delete_all(repo, imgs)
        del self.repos[repo]
        return _ok({"repository": self._public(r)})

    async def _PutLifecyclePolicy(self, body):
        r = self._known(body)
        check_lifecycle_policy(body["lifecyclePolicyText"])
        r["lifecyclePolicy"] = body["lifecyclePolicyText"]
        r["lifecycleEvaluated"] = time.time()
        return _ok({"registryId": self.account, "repositoryName": r["repositoryName"],
                    "lifecyclePolicyText": body["lifecyclePolicyText"]})

    async def _GetLifecyclePolicy(self, body):
        r = self._known(body)
        if r["lifecyclePolicy"] is None:
            raise ApiError(400, "LifecyclePolicyNotFoundException",
                           "Lifecycle policy does not exist for the repository with name '%s' in the "
                           "registry with id '%s'" % (r["repositoryName"], self.account))
        return _ok({"registryId": self.account, "repositoryName": r["repositoryName"],
                    "lifecyclePolicyText": r["lifecyclePolicy"],
                    "lastEvaluatedAt": r["lifecycleEvaluated"]})

    async def _DeleteLifecyclePolicy(self, body):
        out = json.loads((await self._GetLifecyclePolicy(body)).body)
        self._known(body)["lifecyclePolicy"] = None
        return _ok(out)

    async def _PutImageScanningConfiguration(self, body):
        r = self._known(body)
        r["imageScanningConfiguration"] = {"scanOnPush": bool(
            body["imageScanningConfiguration"].get("scanOnPush", False))}
        return _ok({"registryId": self.account, "repositoryName": r["repositoryName"],
                    "imageScanningConfiguration": r["imageScanningConfiguration"]})

    def _by_arn(self, body):
        arn = body["resourceArn"]
        prefix = "arn:aws:ecr:%s:%s:repository/" % (self.region, self.account)
        r = self.repos.get(arn[len(prefix):]) if arn.startswith(prefix) else None
        if r is None:
            raise ApiError(400, "InvalidParameterException",
                           "Invalid parameter at 'resourceArn' failed to satisfy constraint: "
                           "'Invalid ARN %s'" % arn if not arn.startswith("arn:aws:ecr:")
                           else "The repository with ARN '%s' does not exist" % arn)
        return r

    async def _TagResource(self, body):
        r = self._by_arn(body)
        for t in body["tags"]:
            r["tags"][t["Key"]] = t["Value"]
        if len(r["tags"]) > 50:
            raise ApiError(400, "TooManyTagsException", "A maximum of 50 tags is allowed")
        return _ok({})

    async def _UntagResource(self, body):
        r = self._by_arn(body)
        for k in body["tagKeys"]:
            r["tags"].pop(k, None)
        return _ok({})

    async def _ListTagsForResource(self, body):
        r = self._by_arn(body)
        return _ok({"tags": [{"Key": k, "Value": v} for k, v in r["tags"].items()]})


class EcrService(RepositoryOps):
    def __init__(self, account, region, images, token, proxy_endpoint):
        self.repos = {}           # repositories CreateRepository made
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
    OPERATIONS = ("GetAuthorizationToken", "BatchGetImage", "DescribeImages", "CreateRepository",
                  "DescribeRepositories", "DeleteRepository", "PutLifecyclePolicy",
                  "GetLifecyclePolicy", "DeleteLifecyclePolicy", "PutImageScanningConfiguration",
                  "TagResource", "UntagResource", "ListTagsForResource")

    async def handle(self, op, body):
        if op in self.OPERATIONS[3:]:
            return await getattr(self, "_" + op)(body)
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
