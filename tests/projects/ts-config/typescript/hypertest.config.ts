// A configuration in TypeScript: types, an interface, an enum-free union
import { defineConfig } from '@hypertest-cloud/core';
import playwright from '@hypertest-cloud/plugin-playwright';
import aws from '@hypertest-cloud/provider-cloud-aws';

interface Target {
  region: string;
  account: string;
}
type Level = 'warn' | 'info';

const target: Target = { region: 'eu-west-1', account: '123456789012' };
const level: Level = 'info';

export default defineConfig({
  concurrency: 5 as number,
  imageName: 'ts/hypertest',
  testRunner: playwright({}),
  loggerOptions: { level },
  cloudProvider: aws({
    region: target.region,
    ecrRegistry: `${target.account}.dkr.ecr.${target.region}.amazonaws.com`,
    functionName: 'ts-hypertest',
    bucketName: 'ts-hypertest-artifacts',
  }),
});
