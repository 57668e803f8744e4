#!/bin/sh
# hypertest init for every runner x provider: without a terminal, with the
# answers from --runner, --provider and --set, and on a real terminal (a
# pseudo-terminal driven by python3's pty module); each written file passes
# hypertest doctor but for the cloud resources that do not exist yet (aws:
# the function, the bucket and the registry, behind a closed loopback port);
# the next steps are printed; bad answers are refused.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-init-XXXXXX) || exit 1
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
started=""
cleanup() {
	[ -n "$started" ] && "$tests_src/services/aws/services.sh" stop "$tmp/svc" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
# aws: the services of tests/services/aws (where the function, the bucket
# and the repository init names do not exist)
providers=local
if [ -z "${HT_AWS_ENDPOINT:-}" ]; then
	if "$tests_src/services/aws/services.sh" start "$tmp/svc" >"$tmp/services.log" 2>&1; then
		started=1
		. "$tmp/svc/env"
	else
		tail -5 "$tmp/services.log"; echo "the aws services did not start: the aws provider skipped"
	fi
fi
if [ -n "${HT_AWS_ENDPOINT:-}" ]; then
	providers="local aws"
	export AWS_ENDPOINT_URL=$HT_AWS_ENDPOINT
	unset AWS_PROFILE AWS_SESSION_TOKEN 2>/dev/null
	# the configurations init writes name regions the endpoint does not
	# serve: their requests are refused, under a key of this test's own so
	# that the tests checking the endpoint's log can tell them apart
	AWS_ACCESS_KEY_ID=AKIDINITE2E AWS_SECRET_ACCESS_KEY=init-e2e-not-a-secret
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
fi

# ---- a project per runner ------------------------------------------------------------------
runners=command
mkdir -p "$tmp/command/tests" && echo "exit 0" >"$tmp/command/tests/a.sh"
python=
for cand in ${HT_PYTHON:-} python3 /usr/bin/python3; do
	if "$cand" -m pytest --version >/dev/null 2>&1; then python=$cand; break; fi
done
if [ -n "$python" ]; then
	cp -R "$tests_src/projects/pytest-project" "$tmp/pytest" && runners="$runners pytest"
else
	echo "no python3 with pytest: the pytest runner skipped"
fi
if command -v cmake >/dev/null 2>&1 && command -v ctest >/dev/null 2>&1; then
	cp -R "$tests_src/projects/ctest-project" "$tmp/ctest"
	if cmake -S "$tmp/ctest" -B "$tmp/ctest/build" >"$tmp/cmake.log" 2>&1; then
		runners="$runners ctest"
	else
		tail -5 "$tmp/cmake.log"; echo "cmake failed: the ctest runner skipped"
	fi
else
	echo "cmake not found: the ctest runner skipped"
fi
if command -v npm >/dev/null 2>&1; then
	mkdir -p "$tmp/playwright"
	(cd "$tests_src/projects/playwright-project" && tar --exclude=node_modules --exclude=test-results -cf - .) |
		(cd "$tmp/playwright" && tar -xf -)
	if (cd "$tmp/playwright" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm.log" 2>&1; then
		runners="$runners playwright"
	else
		tail -5 "$tmp/npm.log"; echo "npm ci failed: the playwright runner skipped"
	fi
else
	echo "npm not found: the playwright runner skipped"
fi

# doctor PROJECT PROVIDER: every failed check is a cloud resource of aws
doctor() {
	"$hypertest" -C "$1" doctor --json >"$tmp/doctor.json" 2>"$tmp/doctor.err"
	python3 - "$tmp/doctor.json" "$2" <<'PY' || { cat "$tmp/doctor.err"; fail "doctor on what init wrote ($1, $2)"; }
import json, sys
checks = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
checks = [c for c in checks if c.get("event") == "doctor_check"]
allowed = {"provider.aws.function", "provider.aws.bucket", "provider.aws.registry"} \
    if sys.argv[2] == "aws" else set()
failed = [c for c in checks if c["status"] == 2 and c["check"] not in allowed]
assert checks and not failed, failed
names = {c["check"] for c in checks}
for need in ("config", "runner", "provider"):
    assert need in names, (need, names)
PY
}

# ---- without a terminal: flags and defaults, each runner x provider --------------------------
for r in $runners; do
	for p in $providers; do
		rm -f "$tmp/$r/hypertest.config.json"
		# the interpreter that has pytest, when it is not the default
		set -- --set concurrency=7
		[ "$r" = pytest ] && [ "$python" != python3 ] && set -- "$@" --set "python=$python"
		"$hypertest" -C "$tmp/$r" init --runner "$r" --provider "$p" "$@" \
			</dev/null >"$tmp/init.out" 2>&1 || { cat "$tmp/init.out"; fail "init --runner $r --provider $p"; }
		grep -q "^Next steps:" "$tmp/init.out" || { cat "$tmp/init.out"; fail "no next steps ($r, $p)"; }
		python3 - "$tmp/$r/hypertest.config.json" "$r" "$p" <<'PY' || fail "init $r $p wrote $(cat "$tmp/$r/hypertest.config.json")"
import json, sys
c = json.load(open(sys.argv[1])); r, p = sys.argv[2], sys.argv[3]
assert c["concurrency"] == 7 and c["testRunner"]["plugin"] == r and c["cloudProvider"]["plugin"] == p, c
o = c["cloudProvider"]["options"]
if p == "aws":
    # the TypeScript hypertest's defaults
    assert o["region"] == "eu-central-1" and o["bucketName"] == "hypertest-artifacts", o
    assert o["functionName"] == "hypertest-" + r, o
    assert "ecrRegistry" not in o, o  # no account: the registry ECR names
else:
    assert o == {}, o
ro = c["testRunner"]["options"]
if r == "playwright":
    assert "testDir" not in ro and ro["config"] == "playwright.config.ts", ro
if r == "pytest":
    assert ro["rootDir"] == "." and ro["testDir"] == "tests", ro
if r == "ctest":
    assert ro["buildDir"] == "build" and ro["testDir"] == ".", ro
PY
		doctor "$tmp/$r" "$p"
		echo "init --runner $r --provider $p: doctor passes"
	done
done

c=$tmp/command
if [ "$providers" = "local aws" ]; then
# --set answers aws's questions; the registry follows region and account
"$hypertest" -C "$c" init --force --provider aws --set region=us-west-2 --set account=123456789012 \
	--set functionName=shop-tests --set bucketName=shop-artifacts </dev/null >"$tmp/init.out" 2>&1 ||
	{ cat "$tmp/init.out"; fail "init with --set"; }
python3 - "$c/hypertest.config.json" <<'PY' || fail "--set answers"
import json, sys
o = json.load(open(sys.argv[1]))["cloudProvider"]["options"]
assert o == {"region": "us-west-2", "ecrRegistry": "123456789012.dkr.ecr.us-west-2.amazonaws.com",
             "baseImage": "debian:bookworm-slim", "functionName": "shop-tests",
             "bucketName": "shop-artifacts"}, o
PY
doctor "$c" aws
fi

# bad answers: nothing written
bad_init() { # EXPECTED ARGS...
	want=$1; shift
	rm -f "$c/hypertest.config.json"
	"$hypertest" -C "$c" init "$@" </dev/null >"$tmp/bad.out" 2>&1 && { cat "$tmp/bad.out"; fail "init $*: accepted"; }
	grep -qF -- "$want" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "init $*: no '$want'"; }
	[ -e "$c/hypertest.config.json" ] && fail "init $*: a file was written"
	return 0
}
bad_init "--set 'bucketName': no such question for runner 'command' and provider 'local'" --set bucketName=x
bad_init "--set 'concurrency': a whole number from 1 to 100000" --set concurrency=0
bad_init "--set 'account': the 12 digits of the AWS account" --provider aws --set account=12
bad_init "option '--from' converts a file" --from x.js --runner command
bad_init "init writes JSON: --config 'hypertest.config.js' names a configuration module" --config hypertest.config.js
[ -e "$c/hypertest.config.js" ] && fail "init wrote hypertest.config.js"
"$hypertest" -C "$c" deploy --runner command >"$tmp/bad.out" 2>&1 && fail "deploy --runner accepted"
grep -q "unknown option '--runner'" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "deploy --runner"; }

# ---- on a terminal ---------------------------------------------------------------------------
if [ "$providers" = "local aws" ]; then
rm -f "$c/hypertest.config.json"
python3 - "$hypertest" "$c" <<'PY' || fail "init on a terminal"
import os, pty, sys, time, select
prog, proj = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(prog, [prog, "-C", proj, "init"])
seen = b""
def expect(text, timeout=60):
    global seen
    end = time.time() + timeout
    while text.encode() not in seen:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            raise SystemExit("timed out waiting for %r; got:\n%s" % (text, seen.decode(errors="replace")))
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            raise SystemExit("ended waiting for %r; got:\n%s" % (text, seen.decode(errors="replace")))
        seen += chunk
    seen = seen[seen.index(text.encode()) + len(text):]
def say(line):
    os.write(fd, (line + "\n").encode())
expect("Test runner plugin (command, pytest, ctest, playwright) [command]: "); say("")
expect("Cloud provider plugin (local, aws) [local]: "); say("aws")
expect("Image name ["); say("")
expect("Concurrency (invocations in flight at most) [30]: "); say("lots")
expect("a whole number from 1 to 100000, please")
expect("Concurrency (invocations in flight at most) [30]: "); say("12")
expect("Test directory [tests]: "); say("")
expect("Command that lists the tests, one per line (no shell) [find tests -type f -name *.sh]: "); say("")
expect("Command that runs one test, {id} being the test (no shell) [sh {id}]: "); say("")
expect("AWS region [eu-central-1]: "); say("eu-west-1")
expect("AWS account ID (empty: the registry ECR names at deploy): "); say("210987654321")
# the registry derived from the region and the account
expect("ECR registry [210987654321.dkr.ecr.eu-west-1.amazonaws.com]: "); say("")
expect("Base image, with your test tool in it (empty: none) [debian:bookworm-slim]: "); say("")
expect("Lambda function name [hypertest-command]: "); say("")
expect("S3 bucket name [hypertest-artifacts]: "); say("my-bucket")
expect("Next steps:")
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
import json
c = json.load(open(os.path.join(proj, "hypertest.config.json")))
assert c["concurrency"] == 12, c
assert c["cloudProvider"]["options"] == {"region": "eu-west-1",
    "ecrRegistry": "210987654321.dkr.ecr.eu-west-1.amazonaws.com", "baseImage": "debian:bookworm-slim",
    "functionName": "hypertest-command", "bucketName": "my-bucket"}, c
PY
doctor "$c" aws
echo "init on a terminal: every question asked, the registry derived, doctor passes"
fi

# a terminal that closes before the answers: nothing written
rm -f "$c/hypertest.config.json"
python3 - "$hypertest" "$c" <<'PY' || fail "init on a terminal closed early"
import os, pty, sys, time
prog, proj = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(prog, [prog, "-C", proj, "init", "--runner", "pytest"])
out = b""
while b"Cloud provider" not in out:
    out += os.read(fd, 4096)
os.write(fd, b"\x04")  # end of input
try:
    while True:
        b = os.read(fd, 4096)
        if not b: break
        out += b
except OSError:
    pass
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 1, (status, out)
assert b"nothing written" in out, out
assert not os.path.exists(os.path.join(proj, "hypertest.config.json"))
PY
echo "init: runners [$runners] x providers [$providers]"
