// Titles full of regular-expression characters: each must be run alone.
import { test, expect } from '@playwright/test';

test.describe('group [x]', () => {
  test('choice (a|b)', () => {
    expect('a').toMatch(/^(a|b)$/);
  });

  test('dotted a.b', () => {
    expect('a.b').toContain('.');
  });
});

test('dash x-y', () => {
  expect('x-y'.split('-')).toEqual(['x', 'y']);
});

test('dollar $1 and caret ^ and star * and plus + and question ?', () => {
  expect('$1').toHaveLength(2);
});

test('braces {n} and back\\slash', () => {
  expect('back\\slash').toHaveLength(10);
});

test('unicode ünïcødé ✓', () => {
  expect('✓').toHaveLength(1);
});

// a test whose title is a prefix of another: grep must tell them apart
test('dash x', () => {
  expect(true).toBe(true);
});
