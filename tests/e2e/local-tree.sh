#!/bin/sh
# The local provider's function tree is its own, through the CLI: deploy
# removes only the images it unpacked (a project's own images/ folder with
# "functionDir": "." stays, and deploy says so); an image a running invoke
# uses is not removed under it; a test cannot change the deployed image
# (read-only; root, who may, finds it repaired at the next deploy).
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-local-tree-XXXXXX) || exit 1
cleanup() {
	[ -n "${bg:-}" ] && kill -9 "$bg" 2>/dev/null
	chmod -R u+rwx "$tmp" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
command -v python3 >/dev/null 2>&1 || { echo "python3 not found"; exit 77; }

# project DIR RUN_SCRIPT: tests/t.sh running the script, tests/data.txt
project() {
	mkdir -p "$1/tests"
	printf '%s\n' "$2" >"$1/tests/t.sh"
	printf 'original\n' >"$1/tests/data.txt"
	cat >"$1/hypertest.config.json" <<JSON
{"imageName": "e2e/tree",
 "testRunner": {"plugin": "command", "options": {"testDir": "tests", "tests": ["tests/t.sh"],
                                                   "run": ["sh", "{id}"]}},
 "cloudProvider": {"plugin": "local", "options": {"functionDir": "${3:-.hypertest/function}"}}}
JSON
}
root_of() { # FUNCTION_DIR: the deployed root
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"])' "$1/current"
}

# ---- a project's own images/ with "functionDir": "." ------------------------------
p=$tmp/own
project "$p" 'cat tests/data.txt' .
mkdir -p "$p/images/sub"
echo mine >"$p/images/keep.txt"
echo mine >"$p/images/sub/deep.txt"
"$hypertest" -C "$p" deploy >"$tmp/own.1" 2>&1 || { cat "$tmp/own.1"; fail "deploy own"; }
echo more >>"$p/tests/data.txt" # a new image: the old one goes
"$hypertest" -C "$p" deploy >"$tmp/own.2" 2>&1 || { cat "$tmp/own.2"; fail "deploy own again"; }
[ "$(cat "$p/images/keep.txt" 2>/dev/null)" = mine ] || fail "the project's images/keep.txt was deleted"
[ "$(cat "$p/images/sub/deep.txt" 2>/dev/null)" = mine ] || fail "the project's images/sub was deleted"
grep -q "left .*images/keep.txt alone" "$tmp/own.2" || { cat "$tmp/own.2"; fail "deploy did not say it left images/keep.txt alone"; }
n=$(find "$p/images" -mindepth 1 -maxdepth 1 -name '????????????????*' -type d | wc -l)
[ "$n" -eq 1 ] || { ls -la "$p/images"; fail "$n images kept, expected the deployed one"; }
"$hypertest" -C "$p" --quiet invoke >"$tmp/own.out" 2>&1 || { cat "$tmp/own.out"; fail "invoke own"; }
# an image of the earlier layout (images/<hex> and images/<hex>.complete
# holding the digest) is recognised as ours and removed
old_hex=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
mkdir -p "$p/images/$old_hex/var"
printf 'sha256:%s' "$old_hex" >"$p/images/$old_hex.complete"
"$hypertest" -C "$p" deploy >"$tmp/own.3" 2>&1 || { cat "$tmp/own.3"; fail "deploy own third"; }
[ ! -e "$p/images/$old_hex" ] && [ ! -e "$p/images/$old_hex.complete" ] ||
	fail "the image of the earlier layout was not removed"
[ "$(cat "$p/images/keep.txt" 2>/dev/null)" = mine ] || fail "images/keep.txt went"
echo "own images/ kept ok"

# ---- a test cannot change the image (isolation "none") ---------------------------
w=$tmp/write
project "$w" 'echo changed >tests/data.txt; rm -f tests/t.sh; echo test-ran'
"$hypertest" -C "$w" --quiet deploy >"$tmp/write.1" 2>&1 || { cat "$tmp/write.1"; fail "deploy write"; }
root=$(root_of "$w/.hypertest/function")
"$hypertest" -C "$w" --quiet invoke >"$tmp/write.out" 2>&1
if [ "$(id -u)" -ne 0 ]; then
	[ "$(cat "$root/var/task/tests/data.txt")" = original ] || fail "a test changed the deployed image"
	[ -f "$root/var/task/tests/t.sh" ] || fail "a test removed a file of the deployed image"
fi
# the next deploy (same image) finds any change and unpacks again
"$hypertest" -C "$w" deploy >"$tmp/write.2" 2>&1 || { cat "$tmp/write.2"; fail "deploy write again"; }
[ "$(root_of "$w/.hypertest/function")" = "$root" ] || fail "another image deployed"
[ "$(cat "$root/var/task/tests/data.txt")" = original ] || { cat "$tmp/write.2"; fail "the changed image was not repaired"; }
[ -f "$root/var/task/tests/t.sh" ] || fail "the removed file was not restored"
if [ "$(id -u)" -eq 0 ]; then
	grep -q "changed since it was deployed" "$tmp/write.2" || { cat "$tmp/write.2"; fail "deploy did not say the image changed"; }
fi
# and one left alone is not unpacked again
"$hypertest" -C "$w" deploy >"$tmp/write.3" 2>&1 || fail "deploy write third"
grep -q "unpacking" "$tmp/write.3" && { cat "$tmp/write.3"; fail "an unchanged image unpacked again"; }
echo "image protected ok"

# ---- deploy while an invoke runs the old image -----------------------------------
r=$tmp/busy
export HT_TREE_SIGNAL="$tmp/signal"
mkdir -p "$HT_TREE_SIGNAL"
project "$r" 'touch "$HT_TREE_SIGNAL/started"
i=0
while [ ! -e "$HT_TREE_SIGNAL/go" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
cat tests/data.txt'
"$hypertest" -C "$r" --quiet deploy >"$tmp/busy.1" 2>&1 || { cat "$tmp/busy.1"; fail "deploy busy"; }
old=$(root_of "$r/.hypertest/function")
"$hypertest" -C "$r" --quiet invoke >"$tmp/busy.out" 2>&1 &
bg=$!
i=0
while [ ! -e "$HT_TREE_SIGNAL/started" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
[ -e "$HT_TREE_SIGNAL/started" ] || fail "the test never started"
echo more >>"$r/tests/data.txt"
"$hypertest" -C "$r" deploy >"$tmp/busy.2" 2>&1 || { cat "$tmp/busy.2"; fail "deploy during invoke"; }
[ -d "$old" ] || fail "deploy removed the image a running invoke uses"
grep -q "a running invoke uses it" "$tmp/busy.2" || { cat "$tmp/busy.2"; fail "deploy did not say it kept the busy image"; }
touch "$HT_TREE_SIGNAL/go"
wait "$bg"
st=$?
bg=
[ $st -eq 0 ] || { cat "$tmp/busy.out"; fail "the running invoke failed ($st)"; }
# once it ended, the next deploy removes the old image
"$hypertest" -C "$r" --quiet deploy >"$tmp/busy.3" 2>&1 || { cat "$tmp/busy.3"; fail "deploy after invoke"; }
[ ! -e "$old" ] || fail "the old image was not removed once unused"
echo "busy image kept ok"
