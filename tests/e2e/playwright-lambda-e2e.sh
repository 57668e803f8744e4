#!/bin/sh
# The playwright runner inside Lambda (AWS_LAMBDA_FUNCTION_NAME set): the
# function side runs Playwright through a generated config wrapper that
# imports the user's config (never edited) and adds the Chromium launch
# arguments Lambda needs; HOME is the writable temporary directory.  A
# real Chromium (/usr/bin/chromium) opens a page served on loopback and
# the test looks at its own browser's command line.  Without
# AWS_LAMBDA_FUNCTION_NAME the same test fails: the arguments come from
# the wrapper and from nothing else.
. "$(dirname "$0")/preamble.sh"
tmp=$(mktemp -d /tmp/ht-pw-lambda-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
for tool in node npm python3; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: skipped"; exit 77; }
done
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is not installed: skipped"; exit 77; }


p=$tmp/project
mkdir -p "$p/specs"
(cd "$tests_src/projects/playwright-project" && cp .npmrc package.json package-lock.json "$p/") ||
	fail "cannot copy the Playwright project's packages"
(cd "$p" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm.log" 2>&1 ||
	{ tail -5 "$tmp/npm.log"; echo "npm ci failed: skipped"; exit 77; }
cat >"$p/playwright.config.ts" <<'TS'
import { defineConfig } from '@playwright/test';
export default defineConfig({
  testDir: 'specs',
  retries: 0,
  workers: 1,
  timeout: 60000,
  projects: [{ name: 'lambda', use: { launchOptions: { executablePath: '/usr/bin/chromium' } } }],
});
TS
cp "$p/playwright.config.ts" "$tmp/config.orig"
cat >"$p/specs/lambda.spec.ts" <<'TS'
import { test, expect } from '@playwright/test';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';

test('chromium with the Lambda launch arguments', async ({ page }) => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>hypertest</title><h1 id="h">served on loopback</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect(page.locator('#h')).toHaveText('served on loopback');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  // this test's browser: its profile is in this process's temporary directory
  const mine = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => { try { return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch { return []; } })
    .filter((a) => a.some((x) => x.startsWith(`--user-data-dir=${tmpdir()}`)));
  expect(mine.length, 'the browser of this test').toBeGreaterThan(0);
  for (const arg of ['--no-sandbox', '--disable-dev-shm-usage', '--no-zygote', '--use-angle=swiftshader'])
    expect(mine[0], arg).toContain(arg);
  expect(process.env.HOME).toBe(tmpdir());
});
TS
cat >"$p/hypertest.config.json" <<'JSON'
{"concurrency": 1, "imageName": "e2e/playwright-lambda",
 "testRunner": {"plugin": "playwright", "options": {"include": ["node_modules"]}},
 "cloudProvider": {"plugin": "local", "options": {"timeout": 300}}}
JSON
"$hypertest" -C "$p" --quiet deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }

status() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["testResults"][0]; print(t["status"]); print((t.get("error") or {}).get("message","")[:2000], file=sys.stderr)' "$p/hypertest.results.json"; }

AWS_LAMBDA_FUNCTION_NAME=e2e "$hypertest" -C "$p" --quiet invoke >"$tmp/invoke1.out" 2>&1
[ "$(status 2>"$tmp/msg1")" = success ] || { cat "$tmp/invoke1.out" "$tmp/msg1"; fail "inside Lambda the test must pass"; }
cmp -s "$p/playwright.config.ts" "$tmp/config.orig" || fail "the user's config was changed"
echo "inside Lambda: Chromium ran with the Lambda launch arguments"

env -u AWS_LAMBDA_FUNCTION_NAME "$hypertest" -C "$p" --quiet invoke >"$tmp/invoke2.out" 2>&1
[ "$(status 2>"$tmp/msg2")" = failed ] || { cat "$tmp/invoke2.out" "$tmp/msg2"; fail "outside Lambda the arguments must be missing"; }
grep -q -- "--no-sandbox\|--disable-dev-shm-usage\|--no-zygote\|swiftshader\|HOME\|toBe" "$tmp/msg2" ||
	{ cat "$tmp/msg2"; fail "outside Lambda the test failed for another reason"; }
echo "outside Lambda: no wrapper, the same test fails"
