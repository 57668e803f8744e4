"""iam_api.py - the IAM stand-in (query protocol, XML answers): execution roles.

Operations: CreateRole, GetRole, DeleteRole, UpdateAssumeRolePolicy,
TagRole, UntagRole, ListRoleTags, AttachRolePolicy, DetachRolePolicy,
ListAttachedRolePolicies, PutRolePolicy, GetRolePolicy, DeleteRolePolicy,
ListRolePolicies.  Policy documents are checked as IAM checks them (JSON,
Version, Statement, Effect, Action, Resource / Principal as the kind of
policy needs) and come back URL-encoded, as IAM sends them.

IAM's eventual consistency: a new role cannot be assumed by Lambda for the
first `assumableAfter` CreateFunction attempts naming it (config "iam":
{"assumableAfter": K}, or POST /_control/iam); lambda_api asks assumable().
"""

import json
import random
import string
import time
import urllib.parse

import xmlshape
from awsfmt import IAM_NS as NS
from awsfmt import ApiError, request_id
from httpserv import Response

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
MANAGED = (BASIC_EXECUTION,
           "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
           "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
           "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
           "arn:aws:iam::aws:policy/AmazonS3FullAccess")
OPERATIONS = ("CreateRole", "GetRole", "DeleteRole", "UpdateAssumeRolePolicy", "TagRole",
              "UntagRole", "ListRoleTags", "AttachRolePolicy", "DetachRolePolicy",
              "ListAttachedRolePolicies", "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy",
              "ListRolePolicies")
STATUS = {"NoSuchEntity": 404, "EntityAlreadyExists": 409, "DeleteConflict": 409,
          "LimitExceeded": 409, "ServiceFailure": 500}
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."


def _err(code, message):
    return ApiError(STATUS.get(code, 400), code, message)


def _malformed(message):
    return _err("MalformedPolicyDocument", message)


def check_policy(text, trust):
    """Raise MalformedPolicyDocument as IAM does for a trust policy (trust)
    or an identity policy; returns the parsed document."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _malformed("This policy contains invalid Json") from None
    if not isinstance(doc, dict):
        raise _malformed("This policy contains invalid Json")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise _malformed("Policy document contains unknown fields: %s" % ", ".join(sorted(unknown)))
    if doc.get("Version") not in ("2012-10-17", "2008-10-17"):
        raise _malformed("The policy failed legacy parsing" if "Version" in doc
                         else "Policy document must contain a Version of 2012-10-17")
    stmts = doc.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise _malformed("Syntax errors in policy.")
    for s in stmts:
        if not isinstance(s, dict):
            raise _malformed("Syntax errors in policy.")
        if s.get("Effect") not in ("Allow", "Deny"):
            raise _malformed("Invalid effect: %s" % s.get("Effect"))
        if "Action" not in s and "NotAction" not in s:
            raise _malformed("Policy statement must contain actions.")
        actions = s.get("Action", s.get("NotAction"))
        for a in actions if isinstance(actions, list) else [actions]:
            if not isinstance(a, str) or (a != "*" and ":" not in a):
                raise _malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, "
                                 "sdb, ec2, etc.")
        if trust:
            if "Resource" in s or "NotResource" in s:
                raise _malformed("Has prohibited field Resource")
            if "Principal" not in s and "NotPrincipal" not in s:
                raise _malformed("AssumeRolepolicy contained an invalid principal: Principal must "
                                 "be given.")
            if any(isinstance(a, str) and not a.startswith("sts:") and a != "*"
                   for a in (actions if isinstance(actions, list) else [actions])):
                raise _malformed("AssumeRole policy may only specify STS AssumeRole actions.")
        else:
            if "Principal" in s or "NotPrincipal" in s:
                raise _malformed("Policy document should not specify a principal.")
            if "Resource" not in s and "NotResource" not in s:
                raise _malformed("Policy statement must contain resources.")
    return doc


def trusts_lambda(doc):
    for s in doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]:
        if s.get("Effect") != "Allow":
            continue
        actions = s.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        svc = (s.get("Principal") or {})
        svc = svc.get("Service", []) if isinstance(svc, dict) else []
        svc = svc if isinstance(svc, list) else [svc]
        if ("sts:AssumeRole" in actions or "sts:*" in actions or "*" in actions) \
                and "lambda.amazonaws.com" in svc:
            return True
    return False


def _role_id():
    rng = random.SystemRandom()
    return "AROA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(17))


class IamService:
    def __init__(self, account, model, config=None):
        self.account = account
        self.model = model            # botocore ServiceModel of iam
        self.roles = {}
        config = config or {}
        self.assumable_after = int(config.get("assumableAfter", 0))
        self.managed = set(config.get("managedPolicies", MANAGED))

    def reset(self, config=None):
        self.__init__(self.account, self.model, config)

    def _role(self, name):
        r = self.roles.get(name)
        if r is None:
            raise _err("NoSuchEntity", "The role with name %s cannot be found." % name)
        return r

    def _public(self, r):
        out = {k: r[k] for k in ("Path", "RoleName", "RoleId", "Arn", "CreateDate",
                                 "MaxSessionDuration")}
        out["AssumeRolePolicyDocument"] = urllib.parse.quote(r["AssumeRolePolicyDocument"], safe="")
        if r.get("Description"):
            out["Description"] = r["Description"]
        if r["Tags"]:
            out["Tags"] = [{"Key": k, "Value": v} for k, v in r["Tags"].items()]
        return out

    @staticmethod
    def _tags(tags, into):
        for t in tags or []:
            into[t["Key"]] = t.get("Value", "")
        if len(into) > 50:
            raise _err("LimitExceeded", "Cannot exceed quota for TagsPerRole: 50")

    def role_by_arn(self, arn):
        """The role an ARN names (None if none, or not in this account)."""
        prefix = "arn:aws:iam::%s:role/" % self.account
        if not isinstance(arn, str) or not arn.startswith(prefix):
            return None
        name = arn[len(prefix):].rsplit("/", 1)[-1]
        r = self.roles.get(name)
        return r if r is not None and r["Arn"] == arn else None

    def assumable(self, arn):
        """Whether Lambda may assume the role now; counts one attempt."""
        r = self.role_by_arn(arn)
        if r is None or not trusts_lambda(json.loads(r["AssumeRolePolicyDocument"])):
            return False
        if r["pendingAttempts"] > 0:
            r["pendingAttempts"] -= 1
            return False
        return True

    def response(self, op, result):
        op_model = self.model.operation_model(op)
        out = op_model.output_shape
        body = xmlshape.to_xml(out, result, out.serialization["resultWrapper"]) if out else ""
        rid = request_id()
        xml = ('<%sResponse xmlns="%s">%s<ResponseMetadata><RequestId>%s</RequestId>'
               '</ResponseMetadata></%sResponse>' % (op, NS, body, rid, op))
        return Response(200, xml, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)])

    def handle(self, op, p):
        if op not in OPERATIONS:
            raise _err("InvalidAction", "Could not find operation %s for version 2010-05-08" % op)
        return self.response(op, getattr(self, "_" + op)(p))

    # ---- roles -----------------------------------------------------------------
    def _CreateRole(self, p):
        name = p["RoleName"]
        if name.lower() in (n.lower() for n in self.roles):
            raise _err("EntityAlreadyExists", "Role with name %s already exists." % name)
        path = p.get("Path", "/")
        if not (path.startswith("/") and path.endswith("/")):
            raise _err("ValidationError", "The specified value for path is invalid. It must begin "
                       "and end with / and contain only alphanumeric characters and/or / characters.")
        check_policy(p["AssumeRolePolicyDocument"], trust=True)
        r = {"Path": path, "RoleName": name, "RoleId": _role_id(),
             "Arn": "arn:aws:iam::%s:role%s%s" % (self.account, path, name),
             "CreateDate": time.time(), "MaxSessionDuration": p.get("MaxSessionDuration", 3600),
             "AssumeRolePolicyDocument": p["AssumeRolePolicyDocument"],
             "Description": p.get("Description", ""), "Tags": {}, "attached": [], "inline": {},
             "pendingAttempts": self.assumable_after}
        self._tags(p.get("Tags"), r["Tags"])
        self.roles[name] = r
        return {"Role": self._public(r)}

    def _GetRole(self, p):
        return {"Role": self._public(self._role(p["RoleName"]))}

    def _DeleteRole(self, p):
        r = self._role(p["RoleName"])
        if r["attached"]:
            raise _err("DeleteConflict", "Cannot delete entity, must detach all policies first.")
        if r["inline"]:
            raise _err("DeleteConflict", "Cannot delete entity, must delete policies first.")
        del self.roles[r["RoleName"]]
        return {}

    def _UpdateAssumeRolePolicy(self, p):
        r = self._role(p["RoleName"])
        check_policy(p["PolicyDocument"], trust=True)
        r["AssumeRolePolicyDocument"] = p["PolicyDocument"]
        return {}

    def _TagRole(self, p):
        self._tags(p["Tags"], self._role(p["RoleName"])["Tags"])
        return {}

    def _UntagRole(self, p):
        r = self._role(p["RoleName"])
        for k in p["TagKeys"]:
            r["Tags"].pop(k, None)
        return {}

    def _ListRoleTags(self, p):
        r = self._role(p["RoleName"])
        return {"Tags": [{"Key": k, "Value": v} for k, v in r["Tags"].items()], "IsTruncated": False}

    # ---- managed policies ------------------------------------------------------------
    def _AttachRolePolicy(self, p):
        r = self._role(p["RoleName"])
        arn = p["PolicyArn"]
        if not arn.startswith("arn:aws:iam::"):
            raise _err("InvalidInput", "ARN %s is not valid." % arn)
        if arn not in self.managed:
            raise _err("NoSuchEntity", "Policy %s does not exist or is not attachable." % arn)
        if arn not in r["attached"]:
            r["attached"].append(arn)
        return {}

    def _DetachRolePolicy(self, p):
        r = self._role(p["RoleName"])
        if p["PolicyArn"] not in r["attached"]:
            raise _err("NoSuchEntity", "Policy %s was not found." % p["PolicyArn"])
        r["attached"].remove(p["PolicyArn"])
        return {}

    def _ListAttachedRolePolicies(self, p):
        r = self._role(p["RoleName"])
        return {"AttachedPolicies": [{"PolicyName": a.rsplit("/", 1)[-1], "PolicyArn": a}
                                     for a in r["attached"]], "IsTruncated": False}

    # ---- inline policies -------------------------------------------------------------
    def _PutRolePolicy(self, p):
        r = self._role(p["RoleName"])
        check_policy(p["PolicyDocument"], trust=False)
        r["inline"][p["PolicyName"]] = p["PolicyDocument"]
        return {}

    def _GetRolePolicy(self, p):
        r = self._role(p["RoleName"])
        doc = r["inline"].get(p["PolicyName"])
        if doc is None:
            raise _err("NoSuchEntity", "The role policy with name %s cannot be found."
                       % p["PolicyName"])
        return {"RoleName": r["RoleName"], "PolicyName": p["PolicyName"],
                "PolicyDocument": urllib.parse.quote(doc, safe="")}

    def _DeleteRolePolicy(self, p):
        r = self._role(p["RoleName"])
        if p["PolicyName"] not in r["inline"]:
            raise _err("NoSuchEntity", "The role policy with name %s cannot be found."
                       % p["PolicyName"])
        del r["inline"][p["PolicyName"]]
        return {}

    def _ListRolePolicies(self, p):
        r = self._role(p["RoleName"])
        return {"PolicyNames": sorted(r["inline"]), "IsTruncated": False}

    def state(self):
        """The roles, for /_control/iam."""
        return {"assumableAfter": self.assumable_after,
                "roles": {n: {k: v for k, v in r.items()} for n, r in self.roles.items()}}
