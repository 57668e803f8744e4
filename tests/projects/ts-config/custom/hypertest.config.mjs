/*
 * A configuration of one's own: comments, environment references (read by
 * node, and ${VAR} left to hypertest), a results file name without .json.
 */
import { defineConfig } from '@hypertest/hypertest-core'; // the oldest package name

const shop = process.env.SHOP_URL ?? 'http://localhost:8080'; // from .env or the caller

export default defineConfig({
  concurrency: Number(process.env.HT_CONCURRENCY || 4),
  imageName: 'shop/hypertest',
  resultsFileName: 'myresults', // hypertest appends .json
  driftDetectionPolicy: 'error',
  loggerOptions: { level: 'warn', format: undefined, transports: [] },
  testRunner: {
    plugin: 'command',
    options: {
      testDir: 'tests',
      list: ['find', '{testDir}', '-type', 'f', '-name', '*.sh'],
      run: ['sh', '{id}'],
      env: { SHOP_URL: shop, SHOP_USER: '${SHOP_USER:-guest}' },
    },
  },
  cloudProvider: { plugin: 'local', options: {} },
});
