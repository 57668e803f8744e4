#!/bin/sh
# Redeploys that cost nothing: with the fixture plugins and an OCI layout as
# the target (with the runtime layer), a redeploy with no change builds no
# layer and adds no blob to the target; a change of one file's content, mode
# or name rebuilds the test layer alone; a change of the layer writer's
# version (HYPERTEST_LAYER_WRITER_SALT) rebuilds both.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-e2e-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/plugins" "$tmp/project/tests/sub"
ln -s "$tests_build/abi/.libs/fixture-good.so" "$tmp/plugins/fixture-good.so"
export HYPERTEST_PLUGIN_PATH="$tmp/plugins:$top_build/plugins/.libs"
printf 'test a\n' >"$tmp/project/tests/a.test"
printf 'test b\n' >"$tmp/project/tests/sub/b.test"
cat >"$tmp/project/hypertest.config.json" <<JSON
{
  "imageName": "e2e/hypertest",
  "testRunner": {"plugin": "fixture", "options": {"count": 2}},
  "cloudProvider": {"plugin": "fixture",
    "options": {"target": {"layout": "$tmp/image", "runtimeLayer": "1"}}}
}
JSON

n=0
# deploy BUILT UNCHANGED: one deploy, whose build step must report that many
deploy() {
	n=$((n + 1))
	"$hypertest" -C "$tmp/project" deploy >"$tmp/deploy$n.out" 2>&1 ||
		{ cat "$tmp/deploy$n.out"; fail "deploy $n"; }
	grep -q "layers: $1 built, $2 unchanged" "$tmp/deploy$n.out" ||
		{ cat "$tmp/deploy$n.out"; fail "deploy $n: expected $1 layers built, $2 unchanged"; }
	grep -o 'image sha256:[0-9a-f]*' "$tmp/deploy$n.out" | head -1 >"$tmp/digest$n"
}
blobs() { ls -i "$tmp/image/blobs/sha256" | sort; }
# a key is recorded only for inputs older than a second
settle() { sleep 1.2; }

settle
deploy 2 0
blobs >"$tmp/blobs1"
deploy 0 2
blobs >"$tmp/blobs2"
cmp -s "$tmp/blobs1" "$tmp/blobs2" || { diff "$tmp/blobs1" "$tmp/blobs2"; fail "a redeploy with no change wrote blobs"; }
cmp -s "$tmp/digest1" "$tmp/digest2" || fail "a redeploy with no change has another digest"
test -s "$tmp/project/.hypertest/build/layer-cache.json" || fail "no layer cache under .hypertest/build"

# content (same size), mode, name: the test layer alone, recorded again
printf 'test c\n' >"$tmp/project/tests/a.test"
settle
deploy 1 1
cmp -s "$tmp/digest2" "$tmp/digest3" && fail "a content change kept the image digest"
deploy 0 2
chmod +x "$tmp/project/tests/sub/b.test"
settle
deploy 1 1
deploy 0 2
mv "$tmp/project/tests/sub/b.test" "$tmp/project/tests/sub/c.test"
settle
deploy 1 1
deploy 0 2
# a change just made is never recorded: built again on the next deploy
printf 'test d\n' >"$tmp/project/tests/a.test"
deploy 1 1
deploy 1 1
# back to the first content: the digest of the first deploy again
printf 'test a\n' >"$tmp/project/tests/a.test"
chmod -x "$tmp/project/tests/sub/c.test"
mv "$tmp/project/tests/sub/c.test" "$tmp/project/tests/sub/b.test"
settle
deploy 1 1
cmp -s "$tmp/digest1" "$tmp/digest$n" || fail "the same content gave another digest"

# another layer writer: nothing from the cache
HYPERTEST_LAYER_WRITER_SALT=e2e deploy 2 0
HYPERTEST_LAYER_WRITER_SALT=e2e deploy 0 2
deploy 2 0

# the blob gone from where deploy keeps them: rebuilt
deploy 0 2
rm -f "$tmp/project/.hypertest/build/blobs/sha256/"*
deploy 2 0
echo "ok"
