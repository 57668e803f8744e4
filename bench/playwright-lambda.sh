#!/bin/sh
# Playwright with a real Chromium in the local provider's isolation
# "lambda" (Lambda's execution environment on this machine): a function
# image built from a minimal Debian root with chromium, nodejs and
# @playwright/test, deployed with the runtime layer, two tests that open a
# page served on loopback and check its text:
#   - lambda.spec.ts uses Playwright's `page` fixture: inside Lambda the
#     playwright runner launches Chromium with Lambda's arguments (through
#     its config wrapper): expected to pass;
#   - bare.spec.ts launches the same Chromium itself, without those
#     arguments: expected to fail in the sandbox (no user namespace for
#     Chromium's sandbox, /dev/shm read-only), which shows that the
#     arguments matter.
# Not part of `make check`: debootstrap and apt fetch a few hundred MB from
# the Debian mirror and npm fetches @playwright/test.  Run it by hand, as
# root (debootstrap), from a build tree:
#
#   HT_TOP_BUILDDIR=$PWD HT_TESTS_SRCDIR=/path/to/hypertest/tests \
#       sh /path/to/hypertest/bench/playwright-lambda.sh [SUITE] [MIRROR]
#
# SUITE defaults to bookworm.  Needs debootstrap, chroot, bwrap, python3.
# It prints each test's status and exits 0 when lambda.spec.ts passed and
# bare.spec.ts failed.
#
# Outcome: not run yet where it was written (a machine without access to
# a Debian mirror); tests/playwright-lambda-e2e.sh shows the runner's part
# (the wrapper, the launch arguments, HOME) with the host's Chromium.
set -u
top_build=${HT_TOP_BUILDDIR:?}
tests_src=${HT_TESTS_SRCDIR:?}
suite=${1:-bookworm}
hypertest="$top_build/cli/hypertest"
tmp=$(mktemp -d /tmp/ht-pw-lambda-bench-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for tool in debootstrap chroot bwrap python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root"; exit 77; }
. "$tests_src/local-env.sh"
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) exit 77 ;; esac

echo "debootstrap --variant=minbase --include=chromium,nodejs,npm,fonts-liberation $suite"
debootstrap --variant=minbase --include=chromium,nodejs,npm,fonts-liberation,ca-certificates \
	"$suite" "$tmp/root" ${2:+"$2"} >"$tmp/debootstrap.log" 2>&1 ||
	{ tail -20 "$tmp/debootstrap.log"; fail "debootstrap"; }
# @playwright/test in the image, from the test project's lock file
mkdir -p "$tmp/root/var/node"
cp "$tests_src/runners/playwright-project/package.json" \
	"$tests_src/runners/playwright-project/package-lock.json" \
	"$tests_src/runners/playwright-project/.npmrc" "$tmp/root/var/node/"
chroot "$tmp/root" sh -c 'cd /var/node && npm ci --no-audit --no-fund --ignore-scripts' \
	>"$tmp/npm.log" 2>&1 || { tail -20 "$tmp/npm.log"; fail "npm ci in the root"; }
ln -s /var/node/node_modules "$tmp/root/node_modules"
python3 "$tests_src/runtime/make-layout.py" "$tmp/root" "$tmp/base" "$arch" || fail "base layout"

p=$tmp/project
mkdir -p "$p/specs"
# the listing at deploy runs Playwright here: the project's own node_modules
cp "$tests_src/runners/playwright-project/package.json" \
	"$tests_src/runners/playwright-project/package-lock.json" \
	"$tests_src/runners/playwright-project/.npmrc" "$p/"
(cd "$p" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm-host.log" 2>&1 ||
	{ tail -20 "$tmp/npm-host.log"; fail "npm ci in the project"; }
cat >"$p/playwright.config.ts" <<'TS'
import { defineConfig } from '@playwright/test';
export default defineConfig({
  testDir: 'specs', retries: 0, workers: 1, timeout: 60000,
  projects: [{ name: 'lambda', use: { launchOptions: { executablePath: '/usr/bin/chromium' } } }],
});
TS
page_check='
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>hypertest</title><h1 id=\"h\">served on loopback</h1>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect(page.locator("#h")).toHaveText("served on loopback");
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }'
cat >"$p/specs/lambda.spec.ts" <<TS
import { test, expect } from '@playwright/test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
test('page with the Lambda launch arguments', async ({ page }) => {$page_check
});
TS
cat >"$p/specs/bare.spec.ts" <<TS
import { test, expect, chromium } from '@playwright/test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
test('page without the Lambda launch arguments', async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', chromiumSandbox: true });
  const page = await browser.newPage();
  try {$page_check
  } finally {
    await browser.close();
  }
});
TS
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 2, "imageName": "bench/playwright-lambda",
 "testRunner": {"plugin": "playwright"},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "lambda", "timeout": 120, "ephemeralStorageMB": 2048}}}
JSON
"$hypertest" -C "$p" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
"$hypertest" -C "$p" --verbose invoke >"$tmp/invoke.out" 2>&1
python3 - "$p/hypertest.results.json" <<'PY' || { tail -40 "$tmp/invoke.out"; fail "outcome"; }
import json, sys
d = json.load(open(sys.argv[1]))
by = {t["name"]: t for t in d["testResults"]}
for n, t in sorted(by.items()):
    print("%-60s %s %s" % (n, t["status"], (t.get("error") or {}).get("message", "")[:300]))
ok = [t for n, t in by.items() if "with the Lambda" in n]
bare = [t for n, t in by.items() if "without the Lambda" in n]
assert ok and ok[0]["status"] == "success", ok
assert bare and bare[0]["status"] == "failed", bare
PY
echo "ok: Chromium works in the Lambda sandbox with the runner's launch arguments, not without"
