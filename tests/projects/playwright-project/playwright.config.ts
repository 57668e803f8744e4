// The Playwright project of hypertest's playwright runner tests: two
// projects over the same specs, no browser needed by default.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: 'specs',
  // no retries, one worker: each result is that of one single attempt
  retries: 0,
  workers: 1,
  timeout: 30000,
  projects: [{ name: 'alpha' }, { name: 'beta' }],
});
