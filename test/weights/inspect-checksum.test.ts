/** `inspect` says which checkpoint formats carry a checksum: zip a CRC-32 per entry, legacy and safetensors none. */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspectCommand } from '../../src/cli/inspect';
import { FIXTURES } from './helpers';

const path = (name: string) => fileURLToPath(new URL(name, FIXTURES));

/** What inspect prints for `args` (the recognition error, if any, is thrown after printing and ignored here). */
async function inspectOutput(...args: string[]): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void lines.push(parts.join(' ')));
  try {
    await inspectCommand(args);
  } catch {
    // Test fixtures are not networks the registry knows; the summary is printed before that error.
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

describe('inspect: checksums', () => {
  afterEach(() => vi.restoreAllMocks());

  it('names the checksum of each format, in text and JSON', async () => {
    const cases = [
      ['zip_basic.pth', /^checksum: CRC-32 per zip entry/m, 'crc32-per-entry'],
      ['legacy_basic.pth', /^checksum: none in the legacy format \(values no trained network holds/m, 'none'],
      ['st_basic.safetensors', /^checksum: none in safetensors$/m, 'none'],
    ] as const;
    for (const [name, text, kind] of cases) {
      expect(await inspectOutput(path(name)), name).toMatch(text);
      expect(JSON.parse(await inspectOutput(path(name), '--json')).checksum, name).toBe(kind);
    }
  });
});
