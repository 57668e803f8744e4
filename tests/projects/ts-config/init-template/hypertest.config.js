
// @ts-check
import { defineConfig } from '@hypertest-cloud/core';
import playwright from '@hypertest-cloud/plugin-playwright';
import aws from '@hypertest-cloud/provider-cloud-aws';

// biome-ignore lint/style/noDefaultExport: <explanation>
export default defineConfig({
  concurrency: 30,
  imageName: 'my-app/hypertest-playwright',
  localImageName: 'hypertest-playwright',
  localBaseImageName: 'hypertest-playwright-base',
  testRunner: playwright({}),
  cloudProvider: aws({
    baseImage:
      '123456789.dkr.ecr.eu-central-1.amazonaws.com/hypertest/base-playwright:latest',
    region: 'eu-central-1',
    ecrRegistry: '123456789.dkr.ecr.eu-central-1.amazonaws.com',
    functionName: 'hypertest-playwright',
    bucketName: 'hypertest-artifacts',
  }),
});
