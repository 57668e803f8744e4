// Plain tests, describe blocks, nested describes, a loop, a failure, a
// timeout and a skip.
import { test, expect } from '@playwright/test';

test('top level passes', () => {
  expect(1 + 1).toBe(2);
});

test.describe('outer', () => {
  test('inside outer', () => {
    expect('abc').toContain('b');
  });

  test.describe('inner', () => {
    test('deep test', () => {
      expect([1, 2, 3]).toHaveLength(3);
    });
  });
});

for (const n of [1, 2, 3]) {
  test(`loop case ${n}`, () => {
    expect(n * 2).toBe(n + n);
  });
}

test('fails on purpose', () => {
  expect(1, 'one is not two').toBe(2);
});

test('times out on purpose', async () => {
  test.setTimeout(300);
  await new Promise((resolve) => setTimeout(resolve, 3000));
});

test.skip('skipped on purpose', () => {
  expect(true).toBe(false);
});
