#!/bin/sh
# Playwright with a real Chromium in the local provider's isolation
# "lambda" (Lambda's execution environment on this machine): a function
# image built from a minimal Debian root with chromium, nodejs and
# @playwright/test, deployed with the runtime layer, and tests that open a
# page served on loopback and check its text:
#   - lambda.spec.ts and lambda-again.spec.ts use Playwright's `page`
#     fixture: inside Lambda the playwright runner launches Chromium with
#     Lambda's arguments (through its config wrapper): expected to pass;
#   - without-args.spec.ts launches the same Chromium itself, without those
#     arguments: expected to fail in the sandbox (no user namespace for
#     Chromium's own sandbox: "No usable sandbox!"), which shows that the
#     arguments matter.  It passes `args: []`: Playwright's test runner
#     hands chromium.launch() in a test the config's launchOptions (so the
#     wrapper's arguments) unless the call names its own; without it the
#     "bare" test passed, having been given the Lambda arguments after all.
#
# The root, without debootstrap and without root privileges:
#   - chromium, dash, coreutils, grep, sed, fonts-liberation and what they
#     depend on, as apt-get resolves them for an empty system
#     (apt-get -s -o Dir::State::status=/dev/null install
#     --no-install-recommends ...): each package's .deb from apt's cache,
#     else fetched with `apt-get download`, unpacked with dpkg-deb -x;
#   - nodejs: the host's, installed by apt-get (Playwright needs Node 20 or
#     later; Debian 12's is 18): the files `dpkg -L nodejs` lists, copied;
#     its node binary needs only libc, libstdc++ and libgcc, which
#     chromium's dependencies bring.  Playwright is started as
#     `node node_modules/@playwright/test/cli.js test` (runner option
#     "command"), not through npx: the npm of a host may have been
#     upgraded by npm itself, and then the files dpkg lists are not npm's;
#   - /etc/ld.so.cache made by the host's (static) ldconfig run in the root
#     under bwrap;
#   - @playwright/test in /var/node by npm ci from the lock file of
#     tests/projects/playwright-project (with its .npmrc), /node_modules and
#     /var/task/node_modules links to it.
#
# Not part of `make check`: apt-get may fetch a few hundred MB of Debian
# packages and npm fetches @playwright/test.  Run it by hand, from a build
# tree (no root needed):
#
#   sh /path/to/hypertest/bench/playwright-lambda.sh BUILD_DIR
#   (or HT_TOP_BUILDDIR=BUILD_DIR sh .../bench/playwright-lambda.sh)
#
# BENCH_DEBS=DIR keeps the .debs in DIR for the next run (default: a
# temporary directory).  Needs apt-get, dpkg-deb, dpkg-query, bwrap (user namespaces),
# python3, node, npm, the host's nodejs package and /usr/bin/chromium (for
# the floor).  Exits 0 when the tests with the Lambda arguments passed and
# bare.spec.ts failed.
#
# Figures, each beside its floor:
#   - the cold invocation (the first, which starts the sandbox, its
#     Node.js and its Chromium) and the warm one (the same test in the
#     same sandbox) against the floor: the same spec run by Playwright
#     directly on the host (`npx playwright test`, same Chromium, no
#     sandbox, no hypertest); the duration is Playwright's own for the test
#     in both, so the difference is what the sandbox and Lambda's launch
#     arguments cost;
#   - invoke's wall time for the run (three tests, one at a time) against
#     the wall time of the two passing specs run by `npx playwright test`
#     on the host, one process each, one after the other.
#
# Outcome, Debian 12 on x86_64, 2 cores shared with other work, hypertest
# built with --enable-sanitizers, BENCH_DEBS kept from an earlier run (the
# first run fetched 196 of the 245 packages with apt-get download, 49 were
# in apt's cache; its root took 712 s), exit status 0:
#   root: 245 Debian packages (245 already here, 0 fetched by apt-get
#     download) + nodejs v20.20.2 from the host; 1069 MB; built in 135.8 s
#   [lambda] lambda-again.spec.ts > ... with the Lambda launch arguments success
#   [lambda] lambda.spec.ts > ... with the Lambda launch arguments success
#   [lambda] without-args.spec.ts > ... without the Lambda launch arguments
#     failed Error: browserType.launch: ... Chromium sandboxing failed!
#     (Chromium: "No usable sandbox!")
#   deploy 11.2 s (image built, unpacked); 1 cold start(s) for 3 invocations
#   lambda-again  cold invocation: 0.77 s   floor 0.58 s (the same on the host)   x1.3
#   lambda        warm invocation: 1.09 s   floor 0.36 s (the same on the host)   x3.0
#   invoke wall 8.7 s for 3 tests   floor 4.47 s (the two passing specs on
#     the host, one `npx playwright test` after the other: 2.01 s, 2.46 s)
# The figures move with the machine's load (an earlier run under heavier
# load: warm 1.25 s and 1.22 s against 1.26 s; wall 14.7 s against 16.8 s).
set -u
# the build tree: the first argument (as bench/run-all.sh gives it), else
# HT_TOP_BUILDDIR
HT_TOP_BUILDDIR=${1:-${HT_TOP_BUILDDIR:-}}
: "${HT_TOP_BUILDDIR:?give the build tree as the first argument or in HT_TOP_BUILDDIR}"
HT_TOP_BUILDDIR=$(cd "$HT_TOP_BUILDDIR" && pwd) || exit 1
export HT_TOP_BUILDDIR
here=$(cd "$(dirname "$0")/.." && pwd)
export HT_TESTS_SRCDIR=${HT_TESTS_SRCDIR:-$here/tests}
. "$here/tests/e2e/preamble.sh"
tmp=$(mktemp -d /tmp/ht-pw-lambda-bench-XXXXXX) || exit 1
[ -n "${HT_KEEP:-}" ] || trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
for tool in apt-get dpkg-deb dpkg-query bwrap python3 node npm; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found"; exit 77; }
done
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is not installed (the floor needs it)"; exit 77; }
dpkg-query -W -f='${Status}' nodejs 2>/dev/null | grep -q "install ok installed" ||
	{ echo "nodejs is not installed with apt-get here"; exit 77; }
case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) exit 77 ;; esac
now() { python3 -c 'import time; print("%.3f" % time.time())'; }
root=$tmp/root
debs=${BENCH_DEBS:-$tmp/debs}
mkdir -p "$root" "$debs"

# ---- the root from Debian packages ---------------------------------------------------------------
t0=$(now)
apt-get -s -o Dir::State::status=/dev/null install --no-install-recommends \
	chromium dash coreutils grep sed fonts-liberation >"$tmp/resolve.log" 2>&1 ||
	{ tail -20 "$tmp/resolve.log"; fail "apt-get cannot resolve chromium for an empty root"; }
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*/\1 \2 \3/p' "$tmp/resolve.log" >"$tmp/packages"
[ -s "$tmp/packages" ] || { cat "$tmp/resolve.log"; fail "no package to install"; }
fetched=0 cached=0
while read -r pkg ver parch; do
	file=${pkg}_$(printf %s "$ver" | sed 's/:/%3a/')_$parch.deb
	if [ -f "$debs/$file" ]; then
		cached=$((cached + 1))
	elif [ -f "/var/cache/apt/archives/$file" ]; then
		cp "/var/cache/apt/archives/$file" "$debs/" || fail "copy $file"
		cached=$((cached + 1))
	else
		(cd "$debs" && apt-get download "$pkg=$ver") >>"$tmp/download.log" 2>&1 ||
			{ tail -5 "$tmp/download.log"; fail "apt-get download $pkg=$ver"; }
		fetched=$((fetched + 1))
	fi
	echo "$debs/$file" >>"$tmp/debs.list"
done <"$tmp/packages"
while read -r deb; do
	dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x $deb"
done <"$tmp/debs.list"
# nodejs: the host's package, its files as dpkg lists them
dpkg -L nodejs | while read -r f; do [ -f "$f" ] || [ -L "$f" ] && printf '%s\n' "${f#/}"; done \
	>"$tmp/nodejs.files"
tar -C / -cf - -T "$tmp/nodejs.files" | tar -C "$root" -xf - || fail "copy the nodejs package"
mkdir -p "$root/etc" "$root/tmp"
bwrap --unshare-user --bind "$root" / --ro-bind /sbin/ldconfig /.ldconfig --dev /dev \
	/.ldconfig 2>"$tmp/ldconfig.log" || { cat "$tmp/ldconfig.log"; fail "ldconfig in the root"; }
rm -f "$root/.ldconfig"
mkdir -p "$root/var/node"
(cd "$tests_src/projects/playwright-project" && cp .npmrc package.json package-lock.json "$root/var/node/") ||
	fail "copy the Playwright project's packages"
(cd "$root/var/node" && npm ci --no-audit --no-fund --ignore-scripts) >"$tmp/npm.log" 2>&1 ||
	{ tail -20 "$tmp/npm.log"; fail "npm ci in the root"; }
ln -s /var/node/node_modules "$root/node_modules"
mkdir -p "$root/var/task" && ln -s /var/node/node_modules "$root/var/task/node_modules"
python3 "$tests_src/projects/runtime/make-layout.py" "$root" "$tmp/base" "$arch" \
	/usr/local/bin:/usr/bin:/bin || fail "base layout"
t1=$(now)
root_mb=$(du -sm "$root" | cut -f1)
npk=$(wc -l <"$tmp/packages")
echo "root: $npk Debian packages ($cached already here, $fetched fetched by apt-get download) + nodejs $(node --version) from the host; $root_mb MB; built in $(python3 -c "print('%.1f' % ($t1 - $t0))") s"

# ---- the project ------------------------------------------------------------------------------
p=$tmp/project
mkdir -p "$p/specs"
(cd "$tests_src/projects/playwright-project" && cp .npmrc package.json package-lock.json "$p/") ||
	fail "copy the Playwright project's packages"
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
for spec in lambda lambda-again; do
	cat >"$p/specs/$spec.spec.ts" <<TS
import { test, expect } from '@playwright/test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
test('$spec: page with the Lambda launch arguments', async ({ page }) => {$page_check
});
TS
done
cat >"$p/specs/without-args.spec.ts" <<TS
import { test, expect, chromium } from '@playwright/test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
test('bare: page without the Lambda launch arguments', async () => {
  // args: [] because Playwright's test runner gives chromium.launch() in a
  // test the config's launchOptions (the wrapper's Lambda arguments among
  // them) unless the call names its own
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', chromiumSandbox: true, args: [] });
  const page = await browser.newPage();
  try {$page_check
  } finally {
    await browser.close();
  }
});
TS

# ---- the floor: the same passing specs, Playwright alone on the host ----------------------------
# (one Playwright process per spec, as each invocation runs one)
: >"$tmp/floor.wall"
for spec in lambda lambda-again; do
	f0=$(now)
	(cd "$p" && HOME=$tmp/home npx playwright test --reporter=json "specs/$spec.spec.ts") \
		>"$tmp/floor-$spec.json" 2>"$tmp/floor.err" ||
		{ tail -20 "$tmp/floor.err"; fail "the floor: Playwright on the host"; }
	echo "$spec $f0 $(now)" >>"$tmp/floor.wall"
done

# ---- deploy and invoke in isolation "lambda" ----------------------------------------------------
cat >"$p/hypertest.config.json" <<JSON
{"concurrency": 1, "imageName": "bench/playwright-lambda",
 "testRunner": {"plugin": "playwright",
   "options": {"command": ["node", "node_modules/@playwright/test/cli.js", "test"]}},
 "cloudProvider": {"plugin": "local", "options": {"baseImage": "oci:$tmp/base",
   "isolation": "lambda", "timeout": 120, "ephemeralStorageMB": 2048}}}
JSON
t0=$(now)
"$hypertest" -C "$p" deploy >"$tmp/deploy.out" 2>&1 || { cat "$tmp/deploy.out"; fail "deploy"; }
t1=$(now)
"$hypertest" -C "$p" --verbose invoke >"$tmp/invoke.out" 2>&1
t2=$(now)
python3 - "$p/hypertest.results.json" "$tmp" "$tmp/invoke.out" "$t0" "$t1" "$t2" <<'PY' ||
import json, re, sys
d = json.load(open(sys.argv[1]))
tmp = sys.argv[2]
out = open(sys.argv[3]).read()
t0, t1, t2 = map(float, sys.argv[4:7])
by = {t["name"]: t for t in d["testResults"]}
for n, t in sorted(by.items()):
    print("  %-62s %s %s" % (n, t["status"], (t.get("error") or {}).get("message", "")[:400]))
ok = [t for n, t in by.items() if "with the Lambda" in n]
bare = [t for n, t in by.items() if "without the Lambda" in n]
assert len(ok) == 2 and all(t["status"] == "success" for t in ok), ok
assert bare and bare[0]["status"] == "failed", bare
# the floor: Playwright's durations of the same tests on the host
floor = {}
def walk(suite):
    for s in suite.get("suites", []):
        walk(s)
    for spec in suite.get("specs", []):
        for t in spec["tests"]:
            for r in t["results"]:
                floor[spec["title"].split(":")[0]] = r["duration"] / 1000.0
wall = {}
for line in open(tmp + "/floor.wall"):
    spec, a, b = line.split()
    wall[spec] = float(b) - float(a)
    for s in json.load(open("%s/floor-%s.json" % (tmp, spec)))["suites"]:
        walk(s)
assert len(floor) == 2, floor
# start order: the first invocation of the run started the sandbox (cold)
order = re.findall(r"test started #\d+ .*\[([0-9a-f-]{36})\]", out)
cold = len(re.findall(r"cold start: sandbox", out))
print("deploy %.1f s (image built, unpacked); %d cold start(s) for %d invocations (concurrency 1)"
      % (t1 - t0, cold, len(d["testResults"])))
for t in sorted(ok, key=lambda t: order.index(t["testId"])):
    key = t["filePath"].split("/")[-1][:-len(".spec.ts")]
    print("  %-13s %s invocation: %.2f s (Playwright's test duration in the sandbox)   "
          "floor %.2f s (the same on the host)   x%.1f"
          % (key, "cold" if order[0] == t["testId"] else "warm", t["duration"] / 1000.0,
             floor[key], t["duration"] / 1000.0 / floor[key]))
print("invoke wall %.1f s for %d tests   floor %.2f s (the two passing specs on the host, one "
      "`npx playwright test` after the other: %s)" % (t2 - t1, len(d["testResults"]),
      sum(wall.values()), ", ".join("%s %.2f s" % kv for kv in sorted(wall.items()))))
PY
	{ tail -60 "$tmp/invoke.out"; fail "outcome"; }
echo "ok: Chromium works in the Lambda sandbox with the runner's launch arguments, not without"
