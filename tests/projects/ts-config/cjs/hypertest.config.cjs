// CommonJS, with the package names of the TypeScript hypertest's first releases
const { defineConfig } = require('@hypertest-cloud/hypertest-core');
const playwright = require('@hypertest-cloud/hypertest-plugin-playwright');
const aws = require('@hypertest-cloud/hypertest-provider-cloud-aws');

module.exports = defineConfig({
  imageName: 'cjs/hypertest',
  buildManifestFileName: 'manifest',
  testRunner: playwright({ projects: 'all' }),
  cloudProvider: aws({ region: 'us-east-1', functionName: 'f', bucketName: 'b', lambdaUpdateMaxWaitTime: 120 }),
});
