// One browser test, only when Debian's chromium is installed: it serves a
// page on loopback itself and checks it in /usr/bin/chromium.  Chromium
// runs with the invocation's own TMPDIR, where it puts a Unix socket (a
// socket's path has 107 bytes at most).
import { test, expect, chromium } from '@playwright/test';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const executablePath = '/usr/bin/chromium';

test('chromium renders a loopback page', async () => {
  test.skip(!existsSync(executablePath), `${executablePath} is not installed`);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>hypertest</title><h1 id="h">served on loopback</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect(page).toHaveTitle('hypertest');
    await expect(page.locator('#h')).toHaveText('served on loopback');
  } finally {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  }
});
