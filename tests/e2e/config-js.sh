#!/bin/sh
# Configuration modules of the TypeScript hypertest (tests/projects/ts-config):
# 'init --from' converts its init template (Playwright + AWS), its
# playground's configuration, an ES module with comments, environment
# references and a custom results name, and a CommonJS module; every
# command reads a module when there is no hypertest.config.json (deploy and
# invoke run from one); a module that throws, exports nothing, never
# settles, loops forever or prints on stdout, and a missing node, give a
# clear error and write nothing.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-configjs-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
command -v node >/dev/null 2>&1 || { echo "node not found"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }
src=$tests_src/projects/ts-config

convert() { # FIXTURE MODULE: init --from into $tmp/FIXTURE
	rm -rf "$tmp/$1"
	cp -R "$src/$1" "$tmp/$1"
	"$hypertest" -C "$tmp/$1" init --from "$2" >"$tmp/$1.out" 2>&1 ||
		{ cat "$tmp/$1.out"; fail "init --from $1/$2"; }
}
expect_json() { # FILE PYTHON-DICT
	python3 - "$1" "$2" <<'PY' || fail "$1: not the expected configuration"
import ast, json, sys
got = json.load(open(sys.argv[1]))
want = ast.literal_eval(sys.argv[2])
if got != want:
    print("got ", json.dumps(got, sort_keys=True)); print("want", json.dumps(want, sort_keys=True))
    sys.exit(1)
PY
}

# ---- the TypeScript hypertest's init template: Playwright + AWS ----------------------------
convert init-template hypertest.config.js
expect_json "$tmp/init-template/hypertest.config.json" "{
 'concurrency': 30, 'imageName': 'my-app/hypertest-playwright',
 'localImageName': 'hypertest-playwright', 'localBaseImageName': 'hypertest-playwright-base',
 'testRunner': {'plugin': 'playwright', 'options': {}},
 'cloudProvider': {'plugin': 'aws', 'options': {
   'baseImage': '123456789.dkr.ecr.eu-central-1.amazonaws.com/hypertest/base-playwright:latest',
   'region': 'eu-central-1', 'ecrRegistry': '123456789.dkr.ecr.eu-central-1.amazonaws.com',
   'functionName': 'hypertest-playwright', 'bucketName': 'hypertest-artifacts'}}}"
# the plugins take what was converted
"$hypertest" -C "$tmp/init-template" doctor >"$tmp/doctor" 2>&1
grep -q "unknown option\|is required" "$tmp/doctor" && { cat "$tmp/doctor"; fail "a plugin refused the converted options"; }
grep -q "✔ provider\|ok.*provider\|provider.*ok" "$tmp/doctor" || grep -q "provider - 'aws'" "$tmp/doctor" ||
	{ cat "$tmp/doctor"; fail "the aws provider was not created from the converted options"; }
# a second --from does not overwrite; --force does
"$hypertest" -C "$tmp/init-template" init --from hypertest.config.js >"$tmp/again" 2>&1 &&
	fail "init --from over an existing hypertest.config.json"
grep -q "already exists" "$tmp/again" || { cat "$tmp/again"; fail "no 'already exists'"; }
"$hypertest" -C "$tmp/init-template" init --force --from hypertest.config.js >/dev/null 2>&1 ||
	fail "init --force --from"

# ---- its playground: loggerOptions, driftDetectionPolicy ----------------------------------
convert playground hypertest.config.js
expect_json "$tmp/playground/hypertest.config.json" "{
 'concurrency': 30, 'imageName': 'hypertest/playground-playwright',
 'localImageName': 'hypertest/playground-playwright',
 'localBaseImageName': 'hypertest/local-base-playwright', 'driftDetectionPolicy': 'warning',
 'testRunner': {'plugin': 'playwright', 'options': {}}, 'logLevel': 'debug',
 'cloudProvider': {'plugin': 'aws', 'options': {
   'baseImage': '491085409730.dkr.ecr.eu-central-1.amazonaws.com/hypertest/base-playwright:latest',
   'region': 'eu-central-1', 'ecrRegistry': '491085409730.dkr.ecr.eu-central-1.amazonaws.com',
   'functionName': 'hypertest-playground-playwright',
   'bucketName': 'hypertest-playground-playwright-artifacts'}}}"
grep -q 'loggerOptions.level "verbose" is logLevel "debug"' "$tmp/playground.out" ||
	{ cat "$tmp/playground.out"; fail "no note on loggerOptions.level"; }

# ---- CommonJS, the first package names, no concurrency (the original's default 1) ---------
convert cjs hypertest.config.cjs
expect_json "$tmp/cjs/hypertest.config.json" "{
 'imageName': 'cjs/hypertest', 'buildManifestFileName': 'manifest',
 'testRunner': {'plugin': 'playwright', 'options': {'projects': 'all'}},
 'cloudProvider': {'plugin': 'aws', 'options': {'region': 'us-east-1', 'functionName': 'f',
   'bucketName': 'b', 'lambdaUpdateMaxWaitTime': 120}}, 'concurrency': 1}"
grep -q "concurrency is not set: 1" "$tmp/cjs.out" || { cat "$tmp/cjs.out"; fail "no note on concurrency"; }

# ---- comments, environment references, a custom results name: read by deploy and invoke ----
c=$tmp/custom
rm -rf "$c"; cp -R "$src/custom" "$c"
printf 'SHOP_URL=http://shop.test\nHT_CONCURRENCY=3\n' >"$c/.env"
"$hypertest" -C "$c" deploy >"$tmp/deploy" 2>&1 || { cat "$tmp/deploy"; fail "deploy from hypertest.config.mjs"; }
"$hypertest" -C "$c" invoke >"$tmp/invoke" 2>&1 || { cat "$tmp/invoke"; fail "invoke from hypertest.config.mjs"; }
[ -f "$c/myresults.json" ] || fail "no myresults.json"
[ -f "$c/hypertest.config.json" ] && fail "reading a module wrote hypertest.config.json"
grep -q "loggerOptions.transports is not used" "$tmp/deploy" || { cat "$tmp/deploy"; fail "no note on transports"; }
python3 - "$c/myresults.json" <<'PY' || fail "the results of the .mjs configuration"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tests"]["total"] == 1 and r["tests"]["success"] == 1, r["tests"]
assert r["concurrency"] == 3, r["concurrency"]
PY
"$hypertest" -C "$c" doctor >"$tmp/doctor" 2>&1 || { cat "$tmp/doctor"; fail "doctor with hypertest.config.mjs"; }
grep -q "config - $c/hypertest.config.mjs (converted to JSON) (concurrency 3)" "$tmp/doctor" ||
	{ cat "$tmp/doctor"; fail "doctor does not name the module"; }
"$hypertest" -C "$c" init --from hypertest.config.mjs >"$tmp/custom.out" 2>&1 || { cat "$tmp/custom.out"; fail "init --from .mjs"; }
expect_json "$c/hypertest.config.json" "{
 'concurrency': 3, 'imageName': 'shop/hypertest', 'resultsFileName': 'myresults',
 'driftDetectionPolicy': 'error', 'logLevel': 'warning',
 'testRunner': {'plugin': 'command', 'options': {'testDir': 'tests',
   'list': ['find', '{testDir}', '-type', 'f', '-name', '*.sh'], 'run': ['sh', '{id}'],
   'env': {'SHOP_URL': 'http://shop.test', 'SHOP_USER': '\${SHOP_USER:-guest}'}}},
 'cloudProvider': {'plugin': 'local', 'options': {}}}"
# logLevel "warning": the converted file's invoke prints no info line
"$hypertest" -C "$c" invoke >"$tmp/invoke2" 2>&1 || { cat "$tmp/invoke2"; fail "invoke from the converted file"; }

# ---- bad modules: a clear error with node's message, nothing written ------------------------
b=$tmp/bad
bad_module() { # FILE-NAME TEXT EXPECTED...
	name=$1 text=$2; shift 2
	rm -rf "$b"; mkdir -p "$b"; printf '%s\n' "$text" >"$b/$name"
	HYPERTEST_NODE_TIMEOUT=${node_timeout:-60} "$hypertest" -C "$b" init --from "$name" >"$tmp/bad.out" 2>&1 &&
		{ cat "$tmp/bad.out"; fail "init --from accepted: $text"; }
	[ -e "$b/hypertest.config.json" ] && fail "init --from wrote a file for: $text"
	ls "$b" | grep -q '^hypertest.config.json\.' && fail "a temporary file was left for: $text"
	HYPERTEST_NODE_TIMEOUT=${node_timeout:-60} "$hypertest" -C "$b" doctor >"$tmp/bad2.out" 2>&1 &&
		{ cat "$tmp/bad2.out"; fail "doctor accepted: $text"; }
	for want in "$@"; do
		grep -qF -- "$want" "$tmp/bad.out" || { cat "$tmp/bad.out"; fail "no '$want' for: $text"; }
		grep -qF -- "$want" "$tmp/bad2.out" || { cat "$tmp/bad2.out"; fail "doctor: no '$want' for: $text"; }
	done
	return 0
}
bad_module hypertest.config.mjs "const x = 1;
throw new Error('no bucket configured');" \
	"$b/hypertest.config.mjs: node could not evaluate it" "Error: no bucket configured" \
	"hypertest.config.mjs:2"
bad_module hypertest.config.mjs "export const concurrency = 3;" "it exports no configuration"
bad_module hypertest.config.cjs "const x = 1;" "it exports no configuration"
bad_module hypertest.config.mjs "await new Promise(() => {}); export default {};" \
	"an await that never settles"
# (only the module that never ends gets a short limit: a loaded machine may
# take seconds to start node)
node_timeout=3
bad_module hypertest.config.mjs "for (;;) {}" "did not finish evaluating it within 3 s"
node_timeout=
bad_module hypertest.config.mjs "console.log('loading'); export default {concurrency: 2};" \
	"printed to standard output" '"loading"'
bad_module hypertest.config.mjs "export default {imageName: 'x', testRunner: {plugin: 'command', options: {run: () => 1}}};" \
	"key 'testRunner.options.run': a function cannot be written as JSON"
bad_module hypertest.config.mjs "export default {concurrency: 2, loggerOptions: {level: 'loud'}};" \
	"key 'loggerOptions.level'"
bad_module hypertest.config.mjs "export default {concurency: 2};" \
	"(converted to JSON)" "unknown key 'concurency'"
bad_module hypertest.config.js "export default defineConfig({" "SyntaxError"

# ---- no node on PATH ----------------------------------------------------------------------
mkdir -p "$tmp/nonode"
PATH=$tmp/nonode "$hypertest" -C "$tmp/playground" doctor >"$tmp/nonode.out" 2>&1
rm -f "$tmp/playground/hypertest.config.json"
PATH=$tmp/nonode "$hypertest" -C "$tmp/playground" doctor >"$tmp/nonode.out" 2>&1 &&
	fail "doctor without node"
grep -q "reading it needs Node.js.*no node on PATH" "$tmp/nonode.out" || { cat "$tmp/nonode.out"; fail "no node: $(cat "$tmp/nonode.out")"; }
PATH=$tmp/nonode "$hypertest" -C "$tmp/playground" init --from hypertest.config.js >"$tmp/nonode.out" 2>&1 &&
	fail "init --from without node"
[ -e "$tmp/playground/hypertest.config.json" ] && fail "init --from without node wrote a file"

# ---- TypeScript: node's own type stripping or the project's typescript package, else said ----
t=$tmp/ts; mkdir -p "$t"
cat >"$t/hypertest.config.ts" <<'TS'
import { defineConfig } from '@hypertest-cloud/core';
import aws from '@hypertest-cloud/provider-cloud-aws';
const region: string = 'eu-west-1';
export default defineConfig({ concurrency: 5, imageName: 'ts/hypertest',
  testRunner: { plugin: 'command', options: { tests: ['a'], run: ['true'] } },
  cloudProvider: aws({ region, functionName: 'f', bucketName: 'b' }) });
TS
if "$hypertest" -C "$t" init --from hypertest.config.ts >"$tmp/ts.out" 2>&1; then
	expect_json "$t/hypertest.config.json" "{'concurrency': 5, 'imageName': 'ts/hypertest',
	 'testRunner': {'plugin': 'command', 'options': {'tests': ['a'], 'run': ['true']}},
	 'cloudProvider': {'plugin': 'aws', 'options': {'region': 'eu-west-1', 'functionName': 'f', 'bucketName': 'b'}}}"
	echo "hypertest.config.ts converted"
else
	grep -q "cannot read TypeScript by itself" "$tmp/ts.out" || { cat "$tmp/ts.out"; fail "hypertest.config.ts"; }
	[ -e "$t/hypertest.config.json" ] && fail "a failed .ts conversion wrote a file"
	echo "hypertest.config.ts: no TypeScript in this node nor the project (said clearly)"
fi
# with the project's typescript package (npm ci in a copy of ts-config/typescript)
if command -v npm >/dev/null 2>&1; then
	rm -rf "$tmp/typescript"; cp -R "$src/typescript" "$tmp/typescript"
	if (cd "$tmp/typescript" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm.log" 2>&1; then
		"$hypertest" -C "$tmp/typescript" init --from hypertest.config.ts >"$tmp/typescript.out" 2>&1 ||
			{ cat "$tmp/typescript.out"; fail "init --from hypertest.config.ts with typescript"; }
		expect_json "$tmp/typescript/hypertest.config.json" "{'concurrency': 5, 'imageName': 'ts/hypertest',
		 'testRunner': {'plugin': 'playwright', 'options': {}}, 'logLevel': 'info',
		 'cloudProvider': {'plugin': 'aws', 'options': {'region': 'eu-west-1',
		   'ecrRegistry': '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
		   'functionName': 'ts-hypertest', 'bucketName': 'ts-hypertest-artifacts'}}}"
		echo "hypertest.config.ts converted with the project's typescript"
	else
		tail -3 "$tmp/npm.log"; echo "npm ci failed: hypertest.config.ts with typescript not tried"
	fi
else
	echo "npm not found: hypertest.config.ts with typescript not tried"
fi
echo "configuration modules: converted, read, refused clearly"
