#!/bin/sh
# "testDir": "." through the CLI with the local provider and the command
# runner listing its tests with `find .`: hypertest's own files in the
# project (.hypertest/, the results file, the manifest) are neither in the
# test-directory hash nor in the image, so an invoke right after a deploy
# reports no drift, a second deploy builds the same image, and the listing
# finds each test once.  The local provider runs with its default
# functionDir, in the user's cache: neither the unpacked image nor an
# invocation's scratch directory is where `find .` looks.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-testdir-dot-XXXXXX) || exit 1
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

p=$tmp/project
mkdir -p "$p/tests/sub"
printf 'exit 0\n' >"$p/tests/a.test.sh"
printf 'exit 0\n' >"$p/tests/sub/b.test.sh"
cat >"$p/hypertest.config.json" <<JSON
{"imageName": "e2e/dot",
 "resultsFileName": "myresults",
 "testRunner": {"plugin": "command",
                "options": {"testDir": ".", "list": ["find", ".", "-name", "*.test.sh"],
                            "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {}}}
JSON
manifest() { # FIELD
	python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(json.dumps(m[sys.argv[2]], sort_keys=True))' \
		"$p/.hypertest/bucket/hypertest.manifest.json" "$1"
}

"$hypertest" -C "$p" deploy >"$tmp/deploy.1" 2>&1 || { cat "$tmp/deploy.1"; fail "first deploy"; }
digest1=$(manifest imageDigest)
hash1=$(manifest testDirHash)
"$hypertest" -C "$p" invoke >"$tmp/invoke.1" 2>&1 || { cat "$tmp/invoke.1"; fail "first invoke"; }
grep -q drift "$tmp/invoke.1" && { cat "$tmp/invoke.1"; fail "drift reported right after a deploy"; }
[ -f "$p/myresults.json" ] || fail "the results file is not myresults.json"
# .hypertest/ and the results file now exist in the test directory
"$hypertest" -C "$p" deploy >"$tmp/deploy.2" 2>&1 || { cat "$tmp/deploy.2"; fail "second deploy"; }
[ "$(manifest imageDigest)" = "$digest1" ] || fail "the second deploy built another image ($digest1, then $(manifest imageDigest))"
[ "$(manifest testDirHash)" = "$hash1" ] || fail "the test-directory hash changed between deploys"
ids=$(manifest invokePayloadContexts)
[ "$ids" = '[{"id": "./tests/a.test.sh"}, {"id": "./tests/sub/b.test.sh"}]' ] ||
	[ "$ids" = '[{"id": "./tests/sub/b.test.sh"}, {"id": "./tests/a.test.sh"}]' ] ||
	fail "the listing found: $ids"
# the function tree is in the cache (XDG_CACHE_HOME, set by preamble.sh), not in the project
ls "$XDG_CACHE_HOME"/hypertest/local/project-*/function/current >/dev/null 2>&1 ||
	fail "no function tree under $XDG_CACHE_HOME/hypertest/local"
[ -e "$p/.hypertest/function" ] && fail "the function tree is in the project"
"$hypertest" -C "$p" invoke >"$tmp/invoke.2" 2>&1 || { cat "$tmp/invoke.2"; fail "second invoke"; }
# after two deploys and two invokes, `find .` in the project finds each test once
found=$(cd "$p" && find . -name '*.test.sh' | sort | tr '\n' ' ')
[ "$found" = "./tests/a.test.sh ./tests/sub/b.test.sh " ] || fail "find . lists: $found"
grep -q drift "$tmp/invoke.2" && { cat "$tmp/invoke.2"; fail "drift reported after the second deploy"; }
# a change to a test is still drift
echo 'exit 0 # changed' >"$p/tests/a.test.sh"
"$hypertest" -C "$p" invoke >"$tmp/invoke.3" 2>&1 || { cat "$tmp/invoke.3"; fail "third invoke"; }
grep -q "drift" "$tmp/invoke.3" || { cat "$tmp/invoke.3"; fail "a changed test was not reported as drift"; }
echo "testDir . ok"
