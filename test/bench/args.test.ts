import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * Every bench script answers `--help` with its usage (exit 0) and an unknown option with the error and the
 * usage (exit 2), before it touches the GPU. Runs the built scripts (`npm test` builds first).
 */
const SCRIPTS = ['browser', 'conv2d-variants', 'dncnn', 'kernels', 'large-image', 'models', 'peers', 'profile', 'roofline', 'train'];

function run(script: string, args: string[]) {
  return spawnSync(process.execPath, [`dist/bench/${script}.js`, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('bench command lines', () => {
  for (const script of SCRIPTS) {
    it(`${script}: --help prints the usage, an unknown option fails with it`, () => {
      expect(existsSync(`dist/bench/${script}.js`), 'dist/ is built by npm test before vitest').toBe(true);
      const help = run(script, ['--help']);
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(/node dist\/bench\/[\w-]+\.js|npm run bench:\w+/);
      const bad = run(script, ['--no-such-option']);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/no-such-option/);
      expect(bad.stderr).toContain(help.stdout.trim().split('\n')[0]);
    });
  }
});
