/**
 * What a context prints on stderr. On lavapipe, Dawn writes two lines ("maxDynamicUniformBuffersPerPipelineLayout
 * artificially reduced from 1000000 to 16 …", and the same for storage buffers) straight to file descriptor 2
 * when it discovers the adapter: requestAdapter() alone prints them, before any device or limit is requested,
 * and JavaScript cannot intercept them. This pins that down, and that creating a context (device, the limits
 * we request) adds nothing to them. Child processes on the built dist, as the CLI runs.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../cli/helpers';

const NODE_ENTRY = join(ROOT, 'dist', 'node.js');
const DAWN_LIMIT_WARNING = /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced/;

/** Runs an ES module body in a fresh Node process that imported the built Node entry as `lib`. */
function runScript(body: string): Promise<{ code: number | null; stderr: string }> {
  const source = `import * as lib from ${JSON.stringify(NODE_ENTRY)};\n${body}\nlib.releaseNodeGPU();\nprocess.exit(0);\n`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', source], { cwd: ROOT, timeout: 60_000 }, (error, _stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr });
    });
  });
}

function lines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '');
}

beforeAll(() => {
  if (!existsSync(NODE_ENTRY)) throw new Error(`${NODE_ENTRY} is missing: build first (npm run build)`);
});

describe('stderr of a new context', () => {
  it("creating a context prints nothing beyond Dawn's adapter-discovery lines", async () => {
    const adapterOnly = await runScript('await (await lib.nodeGPU()).requestAdapter();');
    const context = await runScript('const ctx = await lib.createNodeContext();\nctx.dispose();');
    expect(adapterOnly.code, adapterOnly.stderr).toBe(0);
    expect(context.code, context.stderr).toBe(0);
    // Whatever Dawn prints while finding the adapter (two lines on lavapipe, none on most GPUs) …
    const discovery = lines(adapterOnly.stderr);
    expect(
      discovery.every((l) => DAWN_LIMIT_WARNING.test(l)),
      discovery.join('\n'),
    ).toBe(true);
    // … is all a context prints: requesting the device and its limits adds no warning of any kind.
    expect(lines(context.stderr)).toEqual(discovery);
  });
});
