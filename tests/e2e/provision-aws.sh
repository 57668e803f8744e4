#!/bin/sh
# hypertest provision and destroy with the aws provider, against the local
# services of tests/services/aws (endpoint.py checks every signature with
# botocore and every request against botocore's model of its operation,
# and logs each request, mutating or not):
#
#  1. the plan (--dry-run) lists the four resources to create and sends no
#     mutating request;
#  2. provision from nothing creates the repository, the bucket and the role
#     in their shape (read back with botocore); the function waits for the
#     first image, and deploy creates it (through a role IAM has not
#     propagated yet: retried);
#  3. a second provision changes nothing; a function with too little memory
#     is updated; drift (reserved concurrency gone, a tag gone, the inline
#     policy widened) is corrected; a function deleted behind hypertest's
#     back is created again on the deployed image; an AWS error names the
#     operation, the HTTP status and the AWS error code;
#  4. invoke runs end to end on what was provisioned;
#  5. destroy removes exactly what carries the project's tag (an untagged
#     role stays), keeps a bucket holding objects without --force, and
#     --dry-run sends no mutating request.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-provision-aws-XXXXXX) || exit 1
. "$(dirname "$0")/aws-helpers.sh"
trap aws_cleanup EXIT
# services started here run outside us-east-1: the bucket needs a
# LocationConstraint
HT_AWS_ENDPOINT_REGION=eu-west-1
export HT_AWS_ENDPOINT_REGION
aws_services_start
[ -n "${HT_IAM_ENDPOINT:-}" ] || { echo "no IAM: skipped"; exit 77; }
region=${AWS_REGION:-us-east-1}
unset AWS_ENDPOINT_URL_IAM
# aws SERVICE OPERATION JSON-ARGS: a botocore call; its answer as JSON on stdout
aws() {
	"$py" - "$@" <<'PY'
import json, os, sys, botocore.session
from botocore.config import Config
svc, op, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3] if len(sys.argv) > 3 else "{}")
ep = {"iam": os.environ["HT_IAM_ENDPOINT"], "s3": os.environ["HT_S3_CHECKED_ENDPOINT"],
      "ecr": os.environ["HT_AWS_ENDPOINT"], "lambda": os.environ["HT_AWS_ENDPOINT"]}[svc]
c = botocore.session.get_session().create_client(
    svc, endpoint_url=ep, region_name="us-east-1" if svc == "iam" else os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out = getattr(c, op)(**args)
out.pop("ResponseMetadata", None)
print(json.dumps(out, default=str))
PY
}
export AWS_REGION="$region"
# A key of its own: the endpoint is shared with the tests that run at the
# same time, and the checks below look at this test's requests only (by the
# key each request says it is signed with, whether or not it holds)
AWS_ACCESS_KEY_ID="AKIDPROV$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
AWS_SECRET_ACCESS_KEY="prov-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
control POST /credentials "{\"$AWS_ACCESS_KEY_ID\": {\"secret\": \"$AWS_SECRET_ACCESS_KEY\"}}" \
	>/dev/null || fail "cannot give the endpoint the test's key"
# mutating_since SEQ: the mutating requests after SEQ, one "service operation" a line
mutating_since() {
	control GET /requests | "$py" -c 'import json,sys
for r in json.load(sys.stdin)["requests"]:
    if r["seq"] > int(sys.argv[1]) and r.get("mutating") and \
            r.get("claimedKeyId") == sys.argv[2]:
        print(r["service"], r["operation"])' "$1" "$AWS_ACCESS_KEY_ID"
}
# actions FILE: "type=action" of a --json answer, sorted by type
actions() {
	"$py" -c 'import json,sys
for r in sorted(json.load(open(sys.argv[1])), key=lambda r: r["type"]):
    print(r["type"] + "=" + r["action"])' "$1" | tr '\n' ' '
}
expect_actions() { # FILE WANT WHAT
	got=$(actions "$1")
	[ "$got" = "$2" ] || { cat "$1"; fail "$3: got '$got', want '$2'"; }
}

first_seq=$(last_seq)
id=$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')
fn="prov-$id"
bucket="ht-prov-$id"
role="prov-$id-exec"
proj="$tmp/project"
mkdir -p "$proj/tests"
printf 'echo first passed\n' >"$proj/tests/pass1.sh"
printf 'echo "expected 4, got 5" >&2\nexit 1\n' >"$proj/tests/fail.sh"
write_config() { # MEMORY
	cat >"$proj/hypertest.config.json" <<JSON
{"concurrency": 4, "imageName": "e2e/prov-$id",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests",
   "list": ["find", "tests", "-name", "*.sh", "-type", "f"], "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "aws", "options": {"region": "$region",
   "functionName": "$fn", "bucketName": "$bucket", "ecrRegistry": "$HT_ECR_REGISTRY",
   "roleName": "$role", "memoryMB": $1, "timeoutSeconds": 120, "ephemeralStorageMB": 1024,
   "reservedConcurrency": 3, "ecrLifecycleKeep": 5, "bucketExpireDays": 7,
   "lambdaUpdateMaxWaitTime": 30, "roleWaitTime": 30,
   "endpoints": {"lambda": "$HT_LAMBDA_ENDPOINT", "ecr": "$HT_ECR_ENDPOINT",
                 "servicequotas": "$HT_AWS_ENDPOINT", "iam": "$HT_IAM_ENDPOINT",
                 "s3": "$HT_S3_CHECKED_ENDPOINT"}}}}
JSON
}
write_config 1024
ht() { "$hypertest" -C "$proj" "$@"; }

# the function CreateFunction makes runs hypertest-function with the payload on stdin
behaviour=$("$py" - "$HYPERTEST_FUNCTION_PROGRAM" "$proj" "$HYPERTEST_PLUGIN_PATH" <<'PY'
import json, os, sys
prog, proj, plugins = sys.argv[1:4]
env = {"HYPERTEST_FUNCTION_CONFIG": proj + "/hypertest.config.json",
       "HYPERTEST_PLUGIN_PATH": plugins, "AWS_REGION": os.environ["AWS_REGION"],
       "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
       "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]}
print(json.dumps({"mode": "command", "command": [prog], "cwd": proj, "env": env,
                  "timeoutMs": 60000}))
PY
)
control POST "/template/$fn" "$behaviour" >/dev/null || fail "cannot set the function's template"

# ---- 1. the plan ----------------------------------------------------------------------------
seq=$(last_seq)
ht --dry-run --json provision >"$tmp/plan.json" 2>"$tmp/plan.err" || { cat "$tmp/plan.err"; fail "plan"; }
expect_actions "$tmp/plan.json" "bucket=create function=create repository=create role=create " "plan"
m=$(mutating_since "$seq")
[ -z "$m" ] || fail "the plan sent mutating requests: $m"
grep -q "the first \`hypertest deploy\` creates it" "$tmp/plan.json" || fail "the plan says why the function waits"
echo "plan: 4 to create, no mutating request"

# ---- 2. provision from nothing, then deploy --------------------------------------------------
control POST /iam '{"assumableAfter": 2}' >/dev/null || fail "cannot delay the role"
ht --json provision >"$tmp/apply.json" 2>"$tmp/apply.err" || { cat "$tmp/apply.err"; fail "provision"; }
expect_actions "$tmp/apply.json" "bucket=create function=create repository=create role=create " "provision"
grep -q "concurrency quota" "$tmp/apply.err" || { cat "$tmp/apply.err"; fail "provision reports the concurrency quota"; }
grep -q "not created yet (no image yet in the repository): the first \`hypertest deploy\` creates it" "$tmp/apply.json" ||
	{ cat "$tmp/apply.json"; fail "provision says the function waits for deploy"; }
# the repository
aws ecr describe_repositories "{\"repositoryNames\": [\"e2e/prov-$id\"]}" >"$tmp/repo.json" || fail "no repository"
[ "$(json "$tmp/repo.json" 'd["repositories"][0]["imageScanningConfiguration"]["scanOnPush"]')" = False ] ||
	fail "scan on push is on"
aws ecr get_lifecycle_policy "{\"repositoryName\": \"e2e/prov-$id\"}" >"$tmp/life.json" || fail "no lifecycle policy"
"$py" - "$tmp/life.json" <<'PY' || fail "the repository's lifecycle policy"
import json, sys
r = json.loads(json.load(open(sys.argv[1]))["lifecyclePolicyText"])["rules"]
assert len(r) == 1 and r[0]["selection"]["countType"] == "imageCountMoreThan", r
assert r[0]["selection"]["countNumber"] == 5 and r[0]["action"]["type"] == "expire", r
PY
arn=$(json "$tmp/repo.json" 'd["repositories"][0]["repositoryArn"]')
aws ecr list_tags_for_resource "{\"resourceArn\": \"$arn\"}" | grep -q "\"hypertest:project\", \"Value\": \"e2e/prov-$id\"" ||
	fail "the repository is not tagged"
# the bucket
if [ "$region" != us-east-1 ]; then
	aws s3 get_bucket_location "{\"Bucket\": \"$bucket\"}" | grep -q "$region" || fail "the bucket is not in $region"
fi
aws s3 get_public_access_block "{\"Bucket\": \"$bucket\"}" >"$tmp/pab.json" || fail "no public access block"
[ "$(json "$tmp/pab.json" 'all(d["PublicAccessBlockConfiguration"].values())')" = True ] || fail "public access not blocked"
aws s3 get_bucket_encryption "{\"Bucket\": \"$bucket\"}" | grep -q AES256 || fail "no SSE"
aws s3 get_bucket_lifecycle_configuration "{\"Bucket\": \"$bucket\"}" >"$tmp/blife.json" || fail "no bucket lifecycle"
"$py" - "$tmp/blife.json" <<'PY' || fail "the bucket's lifecycle"
import json, sys
rules = json.load(open(sys.argv[1]))["Rules"]
assert sorted(r["Filter"]["Prefix"] for r in rules) == list("0123456789abcdef"), rules
assert all(r["Expiration"]["Days"] == 7 and r["Status"] == "Enabled" for r in rules), rules
PY
aws s3 get_bucket_tagging "{\"Bucket\": \"$bucket\"}" | grep -q "\"Key\": \"hypertest:project\"" || fail "the bucket is not tagged"
# the role
aws iam get_role "{\"RoleName\": \"$role\"}" >"$tmp/role.json" || fail "no role"
"$py" - "$tmp/role.json" "$id" <<'PY' || fail "the role's trust or tags"
import json, sys
r = json.load(open(sys.argv[1]))["Role"]
doc = r["AssumeRolePolicyDocument"]
assert doc["Statement"][0]["Principal"]["Service"] == "lambda.amazonaws.com", doc
assert {"Key": "hypertest:project", "Value": "e2e/prov-" + sys.argv[2]} in r["Tags"], r
PY
aws iam list_attached_role_policies "{\"RoleName\": \"$role\"}" | grep -q "service-role/AWSLambdaBasicExecutionRole" ||
	fail "AWSLambdaBasicExecutionRole is not attached"
aws iam get_role_policy "{\"RoleName\": \"$role\", \"PolicyName\": \"hypertest-bucket-objects\"}" >"$tmp/inline.json" ||
	fail "no inline policy"
"$py" - "$tmp/inline.json" "$bucket" <<'PY' || fail "the inline policy"
import json, sys
s = json.load(open(sys.argv[1]))["PolicyDocument"]["Statement"]
assert len(s) == 1 and sorted(s[0]["Action"]) == ["s3:GetObject", "s3:PutObject"], s
assert s[0]["Resource"] == "arn:aws:s3:::%s/*" % sys.argv[2], s
PY
echo "provision: repository, bucket and role created in shape"

ht deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy creating the function"; }
grep -q "not assumable yet" "$tmp/deploy.out" || { cat "$tmp/deploy.out"; fail "the role's propagation was not waited for"; }
aws lambda get_function "{\"FunctionName\": \"$fn\"}" >"$tmp/fn.json" || fail "deploy did not create the function"
"$py" - "$tmp/fn.json" "$role" <<'PY' || fail "the function's shape"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["Configuration"]
assert c["PackageType"] == "Image" and c["MemorySize"] == 1024 and c["Timeout"] == 120, c
assert c["EphemeralStorage"]["Size"] == 1024 and c["Architectures"] == ["x86_64"], c
assert c["Role"].endswith(":role/" + sys.argv[2]) and c["State"] == "Active", c
assert d["Tags"]["managed-by"] == "hypertest" and d["Concurrency"]["ReservedConcurrentExecutions"] == 3, d
PY
echo "deploy: the function created on the first image, after the role propagated"

# ---- 3. idempotent; corrected ----------------------------------------------------------------
seq=$(last_seq)
ht provision >"$tmp/again.txt" 2>&1 || { cat "$tmp/again.txt"; fail "second provision"; }
grep -q "^Nothing to change: 4 resources as configured." "$tmp/again.txt" ||
	{ cat "$tmp/again.txt"; fail "the second provision must change nothing"; }
m=$(mutating_since "$seq")
[ -z "$m" ] || fail "the second provision sent mutating requests: $m"
aws lambda update_function_configuration "{\"FunctionName\": \"$fn\", \"MemorySize\": 256}" >/dev/null ||
	fail "cannot shrink the function"
ht --json provision >"$tmp/mem.json" 2>"$tmp/mem.err" || { cat "$tmp/mem.err"; fail "provision of a small function"; }
expect_actions "$tmp/mem.json" "bucket=exists function=update repository=exists role=exists " "too little memory"
grep -q "memory 256 MB, want 1024 MB" "$tmp/mem.json" || { cat "$tmp/mem.json"; fail "the update's reason"; }
[ "$(aws lambda get_function_configuration "{\"FunctionName\": \"$fn\"}" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["MemorySize"])')" = 1024 ] ||
	fail "the memory was not corrected"
# drift behind hypertest's back: concurrency, tags, the inline policy
fnarn=$(aws lambda get_function "{\"FunctionName\": \"$fn\"}" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["Configuration"]["FunctionArn"])')
aws lambda delete_function_concurrency "{\"FunctionName\": \"$fn\"}" >/dev/null || fail "cannot remove the concurrency"
aws lambda untag_resource "{\"Resource\": \"$fnarn\", \"TagKeys\": [\"managed-by\"]}" >/dev/null || fail "cannot untag"
wide=$("$py" -c 'import json, sys
doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
print(json.dumps({"RoleName": sys.argv[1], "PolicyName": "hypertest-bucket-objects", "PolicyDocument": json.dumps(doc)}))' "$role")
aws iam put_role_policy "$wide" >/dev/null || fail "cannot widen the inline policy"
ht --json provision >"$tmp/drift.json" 2>"$tmp/drift.err" || { cat "$tmp/drift.err"; fail "provision after drift"; }
expect_actions "$tmp/drift.json" "bucket=exists function=update repository=exists role=update " "drift"
grep -q "no reserved concurrency, want 3" "$tmp/drift.json" || { cat "$tmp/drift.json"; fail "drift: concurrency reason"; }
grep -q "is not exactly s3:PutObject/GetObject" "$tmp/drift.json" || { cat "$tmp/drift.json"; fail "drift: policy reason"; }
aws lambda get_function "{\"FunctionName\": \"$fn\"}" >"$tmp/fn2.json"
[ "$(json "$tmp/fn2.json" 'd["Concurrency"]["ReservedConcurrentExecutions"], d["Tags"]["managed-by"]')" = "(3, 'hypertest')" ] ||
	fail "drift: concurrency or tags not restored"
aws iam get_role_policy "{\"RoleName\": \"$role\", \"PolicyName\": \"hypertest-bucket-objects\"}" | grep -q '"s3:\*"' &&
	fail "drift: the widened policy stayed"
ht provision 2>&1 | grep -q "^Nothing to change: 4 resources as configured." || fail "provision after the drift was corrected"
aws lambda delete_function "{\"FunctionName\": \"$fn\"}" >/dev/null || fail "cannot delete the function"
ht --json provision >"$tmp/recreate.json" 2>"$tmp/recreate.err" || { cat "$tmp/recreate.err"; fail "provision of a deleted function"; }
expect_actions "$tmp/recreate.json" "bucket=exists function=create repository=exists role=exists " "deleted function"
aws lambda get_function "{\"FunctionName\": \"$fn\"}" | grep -q "e2e/prov-$id@sha256:" ||
	fail "the function was not created again on the deployed image"
echo "provision: nothing to change; memory corrected; the function created again on the deployed image"

# an AWS error names the operation, the HTTP status and the AWS error code
sed "s/\"bucketName\": \"$bucket\"/\"bucketName\": \"Not_A_Bucket\"/" "$proj/hypertest.config.json" >"$tmp/bad.json"
ht --config "$tmp/bad.json" provision >"$tmp/bad.out" 2>&1 && fail "provision of an invalid bucket name must fail"
grep -q "S3 CreateBucket s3://Not_A_Bucket/: HTTP 400 InvalidBucketName" "$tmp/bad.out" ||
	{ cat "$tmp/bad.out"; fail "the error names the operation, status and AWS code"; }

# ---- 4. invoke ---------------------------------------------------------------------------------
ht deploy >"$tmp/deploy2.out" 2>&1 || { cat "$tmp/deploy2.out"; fail "deploy after provision"; }
ht invoke >"$tmp/invoke.out" 2>&1
[ $? -eq 1 ] || { cat "$tmp/invoke.out"; fail "invoke with a failing test must exit 1"; }
[ "$(json "$proj/hypertest.results.json" 'd["tests"]["success"], d["tests"]["failed"]')" = "(1, 1)" ] ||
	{ cat "$tmp/invoke.out"; fail "invoke results"; }
echo "invoke: 1 passed, 1 failed, on the provisioned function and bucket"

# ---- 5. destroy ------------------------------------------------------------------------------
# the role loses the project's tag: not ours any more
aws iam untag_role "{\"RoleName\": \"$role\", \"TagKeys\": [\"hypertest:project\"]}" >/dev/null || fail "untag the role"
seq=$(last_seq)
ht --dry-run --json destroy >"$tmp/dry.json" 2>/dev/null || fail "destroy --dry-run"
expect_actions "$tmp/dry.json" "bucket=keep function=delete repository=delete " "destroy --dry-run"
m=$(mutating_since "$seq")
[ -z "$m" ] || fail "destroy --dry-run sent mutating requests: $m"
ht --json destroy --yes </dev/null >"$tmp/destroy.json" 2>"$tmp/destroy.err" &&
	fail "destroy keeping the bucket must exit 1"
expect_actions "$tmp/destroy.json" "bucket=keep function=delete repository=delete " "destroy"
aws lambda get_function "{\"FunctionName\": \"$fn\"}" >/dev/null 2>&1 && fail "the function survived destroy"
aws ecr describe_repositories "{\"repositoryNames\": [\"e2e/prov-$id\"]}" >/dev/null 2>&1 && fail "the repository survived destroy"
aws s3 head_bucket "{\"Bucket\": \"$bucket\"}" >/dev/null || fail "the bucket with objects was removed without --force"
aws iam get_role "{\"RoleName\": \"$role\"}" >/dev/null || fail "the untagged role was removed"
ht --json destroy --yes --force </dev/null >"$tmp/force.json" 2>"$tmp/force.err" ||
	{ cat "$tmp/force.err"; fail "destroy --force"; }
expect_actions "$tmp/force.json" "bucket=delete " "destroy --force"
aws s3 head_bucket "{\"Bucket\": \"$bucket\"}" >/dev/null 2>&1 && fail "the bucket survived destroy --force"
aws iam get_role "{\"RoleName\": \"$role\"}" >/dev/null || fail "the untagged role was removed"
echo "destroy: only what was tagged; the bucket with objects only with --force"

# every request authentic and accepted by the models
authentic_since "$first_seq" "$tmp/requests.json" || fail "a request was not authentic"
grep -qF "$AWS_SECRET_ACCESS_KEY" "$tmp"/*.out "$tmp"/*.err && fail "a secret in the output"
exit 0
