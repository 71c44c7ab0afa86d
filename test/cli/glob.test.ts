/** The CLI's own `*` / `?` globbing and input collection (no GPU, no child process). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { componentRegExp, expandGlob, hasGlob } from '../../src/cli/glob';
import { collectInputs } from '../../src/cli/inputs';
import { tempDir } from './helpers';

let dir: string;
let removeDir: () => void;

beforeAll(() => {
  ({ path: dir, remove: removeDir } = tempDir());
  for (const d of ['a', 'b', 'b/deep', 'c.png']) mkdirSync(join(dir, d), { recursive: true });
  for (const f of [
    'a/1.png',
    'a/2.png',
    'a/10.tif',
    'a/x.txt',
    'a/.hidden.png',
    'b/3.png',
    'b/deep/4.png',
    'a/1.denoised.png',
    'a/[x].png',
  ]) {
    writeFileSync(join(dir, f), '');
  }
});

afterAll(() => removeDir?.());

describe('glob', () => {
  it('matches * and ? within one component, other characters literally', () => {
    expect(hasGlob('a/*.png')).toBe(true);
    expect(hasGlob('a/b.png')).toBe(false);
    const re = componentRegExp('img?.(1)+*.png');
    expect(re.test('img1.(1)+.png')).toBe(true);
    expect(re.test('img1.(1)+abc.png')).toBe(true);
    expect(re.test('img12.(1)+.png')).toBe(false);
    expect(re.test('img1x(1)+.png')).toBe(false); // '.' is literal
  });

  it('expands patterns in any component, skipping dot files, sorted', () => {
    expect(expandGlob(join(dir, 'a', '*.png'))).toEqual(['1.denoised.png', '1.png', '2.png', '[x].png'].map((n) => join(dir, 'a', n)));
    expect(expandGlob(join(dir, 'a', '?.png'))).toEqual([join(dir, 'a', '1.png'), join(dir, 'a', '2.png')]);
    expect(expandGlob(join(dir, '*', '3.png'))).toEqual([join(dir, 'b', '3.png')]);
    expect(expandGlob(join(dir, 'a', '.*.png'))).toEqual([join(dir, 'a', '.hidden.png')]);
    // Intermediate components only match folders: c.png is a folder, the final component matches it too.
    expect(expandGlob(join(dir, '*.png'))).toEqual([join(dir, 'c.png')]);
    expect(expandGlob(join(dir, 'nowhere', '*.png'))).toEqual([]);
  });
});

describe('collectInputs', () => {
  it('takes files as given, folders as their images, patterns expanded; skips earlier outputs; dedups', () => {
    const explicit = join(dir, 'a', 'x.txt'); // named explicitly: taken (its content decides later)
    const got = collectInputs([join(dir, 'a'), join(dir, 'b', '*.png'), explicit, join(dir, 'a', '1.png')], (n) => /\.denoised\./.test(n));
    expect(got.files).toEqual([
      ...['1.png', '10.tif', '2.png', '[x].png'].map((n) => join(dir, 'a', n)),
      join(dir, 'b', '3.png'),
      explicit,
    ]);
    expect(got.skipped).toEqual([join(dir, 'a', '1.denoised.png')]);
    expect(got.problems).toEqual([]);
  });

  it('reports folders and patterns that yield nothing', () => {
    const got = collectInputs([join(dir, 'b', 'deep', '*.tif'), join(dir, 'c.png')], () => false);
    expect(got.files).toEqual([]);
    expect(got.problems.map((p) => p.message)).toEqual(['no PNG or TIFF file matches this pattern', 'no PNG or TIFF file in this folder']);
    const onlyOutputs = collectInputs([join(dir, 'a', '1.*.png')], (n) => /\.denoised\./.test(n));
    expect(onlyOutputs.problems[0].message).toMatch(/^only earlier outputs of this command \(1\) in this pattern/);
  });
});
