#!/usr/bin/env python3
"""cfn-validate.py TEMPLATE SCHEMA_DIR - check a CloudFormation template
(JSON) against the published resource schemas of its resource types
(SCHEMA_DIR/aws-<service>-<resource>.json, see cfn-schemas/README.md):
every resource's Properties valid against its type's schema (JSON Schema
draft 7: types, enums, patterns, ranges, required members, no unknown
members), no read-only property set, every Ref and Fn::GetAtt naming a
parameter or resource of the template.  Intrinsic functions are replaced
by values of the kind CloudFormation would put there before validating.
--self-test also shows that a property the schema does not know, a value
out of range and a missing required member are refused.  Exit 0 when
valid; 1 with every problem on stderr."""

import copy
import json
import os
import sys

import jsonschema

ACCOUNT = "123456789012"


def schema_file(schema_dir, rtype):
    # AWS::S3::Bucket -> aws-s3-bucket.json
    return os.path.join(schema_dir, rtype.lower().replace("::", "-") + ".json")


def resolve(value, template, problems, where):
    """value with Ref and Fn::GetAtt replaced by plausible strings."""
    if isinstance(value, list):
        return [resolve(v, template, problems, where) for v in value]
    if not isinstance(value, dict):
        return value
    if list(value) == ["Ref"]:
        name = value["Ref"]
        if name in template.get("Parameters", {}):
            if name == "ImageUri":
                return "%s.dkr.ecr.us-east-1.amazonaws.com/repo@sha256:%s" % (ACCOUNT, "0" * 64)
            return "parameter-" + name
        if name in template.get("Resources", {}):
            return "ref-" + name
        if name.startswith("AWS::"):
            return {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
                    "AWS::AccountId": ACCOUNT}.get(name, name)
        problems.append("%s: Ref to %r, which the template does not define" % (where, name))
        return ""
    if list(value) == ["Fn::GetAtt"]:
        res, attr = value["Fn::GetAtt"]
        target = template.get("Resources", {}).get(res)
        if target is None:
            problems.append("%s: Fn::GetAtt of %r, which the template does not define" % (where, res))
            return ""
        if target["Type"] == "AWS::IAM::Role" and attr == "Arn":
            return "arn:aws:iam::%s:role/%s" % (ACCOUNT, target["Properties"].get("RoleName", res))
        return "attr-%s-%s" % (res, attr)
    return {k: resolve(v, template, problems, where + "." + k) for k, v in value.items()}


def validate(template, schema_dir):
    problems = []
    if template.get("AWSTemplateFormatVersion") != "2010-09-09":
        problems.append("AWSTemplateFormatVersion is not 2010-09-09")
    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        return problems + ["no Resources"]
    for name, res in resources.items():
        rtype = res.get("Type", "")
        path = schema_file(schema_dir, rtype)
        if not os.path.exists(path):
            problems.append("%s: no schema for type %r (%s)" % (name, rtype, path))
            continue
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        if schema.get("typeName") != rtype:
            problems.append("%s: %s describes %r" % (name, path, schema.get("typeName")))
        unknown = set(res) - {"Type", "Properties", "DependsOn", "DeletionPolicy",
                              "UpdateReplacePolicy", "Condition", "Metadata"}
        if unknown:
            problems.append("%s: unknown resource attributes %s" % (name, sorted(unknown)))
        for attr in ("DeletionPolicy", "UpdateReplacePolicy"):
            if attr in res and res[attr] not in ("Delete", "Retain", "Snapshot", "RetainExceptOnCreate"):
                problems.append("%s: %s %r" % (name, attr, res[attr]))
        props = resolve(res.get("Properties", {}), template, problems, name)
        for ro in schema.get("readOnlyProperties", []):
            key = ro.split("/")[2]
            if ro.count("/") == 2 and key in props:
                problems.append("%s: read-only property %s is set" % (name, key))
        validator = jsonschema.Draft7Validator(schema)
        for e in sorted(validator.iter_errors(props), key=lambda e: list(e.absolute_path)):
            at = "/".join(str(p) for p in e.absolute_path) or "(Properties)"
            problems.append("%s (%s) %s: %s" % (name, rtype, at, e.message))
    return problems


def self_test(template, schema_dir):
    """Each broken copy must be refused."""
    breakages = []
    for name, res in template["Resources"].items():
        t = copy.deepcopy(template)
        t["Resources"][name]["Properties"]["NoSuchProperty"] = 1
        breakages.append(("unknown property in " + name, t))
        t = copy.deepcopy(template)
        req = json.load(open(schema_file(schema_dir, res["Type"]))).get("required", [])
        for r in req:
            t["Resources"][name]["Properties"].pop(r, None)
        if req:
            breakages.append(("required members of %s removed" % name, t))
    t = copy.deepcopy(template)
    for res in t["Resources"].values():
        if res["Type"] == "AWS::Lambda::Function":
            res["Properties"]["EphemeralStorage"] = {"Size": 256}
            res["Properties"]["Architectures"] = ["sparc"]
    breakages.append(("EphemeralStorage 256 MB, architecture sparc", t))
    ok = True
    for what, t in breakages:
        if not validate(t, schema_dir):
            print("self-test: %s was not refused" % what, file=sys.stderr)
            ok = False
    return ok


def main():
    args = [a for a in sys.argv[1:] if a != "--self-test"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        template = json.load(f)
    problems = validate(template, args[1])
    for p in problems:
        print("%s: %s" % (args[0], p), file=sys.stderr)
    if problems:
        return 1
    if "--self-test" in sys.argv and not self_test(template, args[1]):
        return 1
    print("%s: %d resources valid against their schemas" % (args[0], len(template["Resources"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
