#!/bin/sh
# hypertest provision --emit cloudformation FILE with the aws provider: the
# template holds the repository, the bucket, the role and the function in the
# shape provision gives them (options, platform, tags), each resource valid
# against its type's published CloudFormation schema (cfn-schemas/, checked
# by cfn-validate.py, which also shows it refuses broken resources); no AWS
# call is made (no credentials, an endpoint nobody answers); an unknown
# format and a provider without templates are refused clearly.
. "$(dirname "$0")/preamble.sh"
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
python3 -c 'import jsonschema' 2>/dev/null || { echo "python3-jsonschema not found: skipped"; exit 77; }
tmp=$(mktemp -d /tmp/ht-provision-emit-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

p=$tmp/project
mkdir -p "$p/tests"
printf 'echo ok\n' >"$p/tests/a.sh"
cat >"$p/hypertest.config.json" <<'JSON'
{"imageName": "e2e/emit:v1", "platform": "linux/arm64",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "eu-central-1",
   "functionName": "emit-fn", "bucketName": "emit-bucket", "roleName": "emit-role",
   "memoryMB": 3008, "timeoutSeconds": 600, "ephemeralStorageMB": 4096,
   "reservedConcurrency": 7, "ecrLifecycleKeep": 3, "bucketExpireDays": 14,
   "endpoints": {"lambda": "http://127.0.0.1:9", "s3": "http://127.0.0.1:9",
                 "ecr": "http://127.0.0.1:9", "iam": "http://127.0.0.1:9"}}}}
JSON
# no credentials at all: the template needs none
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
	AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_CONFIG_FILE=/nonexistent \
	"$hypertest" -C "$p" provision --emit cloudformation "$tmp/stack.json" >"$tmp/out" 2>&1 ||
	{ cat "$tmp/out"; fail "provision --emit cloudformation"; }
grep -q "cloudformation template written to $tmp/stack.json" "$tmp/out" || { cat "$tmp/out"; fail "no word of the file"; }
python3 "$tests_src/e2e/cfn-validate.py" --self-test "$tmp/stack.json" "$tests_src/e2e/cfn-schemas" ||
	fail "the template does not validate against the CloudFormation schemas"
python3 - "$tmp/stack.json" <<'PY' || fail "the template's resources are not provision's"
import json, sys
r = json.load(open(sys.argv[1]))["Resources"]
assert sorted(x["Type"] for x in r.values()) == ["AWS::ECR::Repository", "AWS::IAM::Role",
    "AWS::Lambda::Function", "AWS::S3::Bucket"], r
by = {x["Type"]: x["Properties"] for x in r.values()}
tags = [{"Key": "hypertest:project", "Value": "e2e/emit"}, {"Key": "managed-by", "Value": "hypertest"}]
for t, props in by.items():
    assert props["Tags"] == tags, (t, props["Tags"])
repo = by["AWS::ECR::Repository"]
assert repo["RepositoryName"] == "e2e/emit" and repo["ImageScanningConfiguration"] == {"ScanOnPush": False}
rule = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"][0]
assert rule["selection"]["countNumber"] == 3, rule
b = by["AWS::S3::Bucket"]
assert b["BucketName"] == "emit-bucket" and all(b["PublicAccessBlockConfiguration"].values()), b
rules = b["LifecycleConfiguration"]["Rules"]
assert sorted(x["Prefix"] for x in rules) == list("0123456789abcdef"), rules
assert {x["ExpirationInDays"] for x in rules} == {14}, rules
role = by["AWS::IAM::Role"]
assert role["RoleName"] == "emit-role", role
assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
assert role["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
stmt = role["Policies"][0]["PolicyDocument"]["Statement"]
assert stmt == [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                 "Resource": "arn:aws:s3:::emit-bucket/*"}], stmt
f = by["AWS::Lambda::Function"]
assert f["FunctionName"] == "emit-fn" and f["PackageType"] == "Image", f
assert f["Architectures"] == ["arm64"] and f["MemorySize"] == 3008 and f["Timeout"] == 600, f
assert f["EphemeralStorage"] == {"Size": 4096} and f["ReservedConcurrentExecutions"] == 7, f
assert f["Role"] == {"Fn::GetAtt": ["ExecutionRole", "Arn"]} and f["Code"] == {"ImageUri": {"Ref": "ImageUri"}}, f
PY
# to stdout, the same
"$hypertest" -C "$p" -q provision --emit cloudformation - >"$tmp/stdout.json" 2>"$tmp/err" ||
	{ cat "$tmp/err"; fail "--emit to stdout"; }
cmp -s "$tmp/stdout.json" "$tmp/stack.json" || fail "the template on stdout differs from the file"

# 0 turns the lifecycle rules off
sed 's/"ecrLifecycleKeep": 3, "bucketExpireDays": 14/"ecrLifecycleKeep": 0, "bucketExpireDays": 0/' \
	"$p/hypertest.config.json" >"$tmp/off.json"
"$hypertest" -C "$p" --config "$tmp/off.json" -q provision --emit cloudformation - >"$tmp/off.out" 2>&1 ||
	{ cat "$tmp/off.out"; fail "--emit with the lifecycle rules off"; }
python3 - "$tmp/off.out" <<'PY' || fail "lifecycle rules 0: still in the template"
import json, sys
r = {x["Type"]: x["Properties"] for x in json.load(open(sys.argv[1]))["Resources"].values()}
assert "LifecyclePolicy" not in r["AWS::ECR::Repository"], r
assert "LifecycleConfiguration" not in r["AWS::S3::Bucket"], r
PY
# a bad option is named, with where it is
sed 's/"roleName": "emit-role"/"roleName": "emit role!"/' "$p/hypertest.config.json" >"$tmp/badrole.json"
"$hypertest" -C "$p" --config "$tmp/badrole.json" provision --emit cloudformation - >"$tmp/badrole.out" 2>&1 &&
	fail "an invalid roleName must be refused"
grep -q "roleName.*must be 1 to 64 of A-Z a-z 0-9 +=,.@_- (an IAM role name), got 'emit role!'" "$tmp/badrole.out" ||
	{ cat "$tmp/badrole.out"; fail "the roleName error"; }

# an unknown format; a provider without templates; --emit elsewhere
"$hypertest" -C "$p" provision --emit terraform "$tmp/x.tf" >"$tmp/tf" 2>&1 && fail "--emit terraform must fail"
grep -q "cannot write a template in format 'terraform' (known: cloudformation)" "$tmp/tf" || { cat "$tmp/tf"; fail "unknown format message"; }
[ ! -e "$tmp/x.tf" ] || fail "a failed --emit left a file"
sed -i 's/"plugin": "aws", "options": {.*/"plugin": "local", "options": {}}}/; /"functionName\|"memoryMB\|"reservedConcurrency\|"endpoints\|"ecr":/d' "$p/hypertest.config.json"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$p/hypertest.config.json" || { cat "$p/hypertest.config.json"; fail "test config"; }
"$hypertest" -C "$p" provision --emit cloudformation "$tmp/l.json" >"$tmp/local" 2>&1 && fail "--emit with the local provider must fail"
grep -q "provider 'local' writes no templates" "$tmp/local" || { cat "$tmp/local"; fail "local provider message"; }
"$hypertest" -C "$p" provision --emit cloudformation >"$tmp/nofile" 2>&1 && fail "--emit without a file"
grep -q "expected a file after the format" "$tmp/nofile" || { cat "$tmp/nofile"; fail "no file message"; }
echo "provision --emit cloudformation: 4 resources valid against the published schemas"
exit 0
