import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/errors';
import { networkFromStateDict } from '../../src/models/load';
import { recogniseStateDict } from '../../src/models/registry';
import { readCheckpoint } from '../../src/weights/checkpoint';
import { REPO, readBytes } from '../helpers/fixtures';

/** Which registry entry each fixture family's `architecture` label belongs to. */
const EXPECTED: Record<string, string> = {
  'DnCNN-cszn': 'DnCNNVariant',
  'DnCNN-SaoYan': 'DnCNNVariant',
  'SINSR-CBAM': 'SINSR',
};

interface FixtureMeta {
  architecture?: string;
  manifest?: { key: string; shape: number[] }[];
  checkpoint?: string;
  weights?: string;
}

/** Every network fixture written by the PyTorch scripts: its keys and shapes, from the manifest or the .pth. */
function networkFixtures(): { name: string; label: string; keys: Map<string, { shape: number[] }> }[] {
  const out = [];
  for (const dir of readdirSync(new URL('test/fixtures/', REPO))) {
    const base = new URL(`test/fixtures/${dir}/`, REPO);
    for (const file of readdirSync(base).filter((f) => f.endsWith('.json'))) {
      const meta = JSON.parse(readFileSync(new URL(file, base), 'utf8')) as FixtureMeta;
      const label = meta.architecture ?? (dir === 'dncnn' && meta.weights ? 'DnCNN' : undefined);
      const file2 = meta.checkpoint ?? meta.weights;
      if (!label || (!meta.manifest && !file2)) continue;
      const keys = meta.manifest
        ? new Map(meta.manifest.map((e) => [e.key, { shape: e.shape }]))
        : readCheckpoint(readBytes(new URL(file2!, base)), { name: file2 });
      out.push({ name: `${dir}/${file}`, label, keys });
    }
  }
  return out;
}

describe('recognising every fixture network from its keys alone', () => {
  const fixtures = networkFixtures();
  it('finds fixtures of every architecture', () => {
    const archs = new Set(fixtures.map((f) => EXPECTED[f.label] ?? f.label));
    expect([...archs].sort()).toEqual([
      'DnCNN',
      'DnCNNVariant',
      'MSRResNet',
      'N2VUNet',
      'RRDBNet',
      'ResNet34UNet',
      'SCUNet',
      'SINSR',
      'SRResNet',
      'UNet',
    ]);
  });
  for (const f of fixtures) {
    it(f.name, () => {
      expect(recogniseStateDict(f.keys, f.name).architecture.name).toBe(EXPECTED[f.label] ?? f.label);
    });
  }

  it('the real KAIR DnCNN σ25 release is DnCNN-17 R', () => {
    const sd = readCheckpoint(readBytes(new URL('../shared/data/weights/dncnn_25.pth', REPO)));
    const { architecture, config } = recogniseStateDict(sd);
    expect(architecture.name).toBe('DnCNN');
    expect(config).toEqual({ inChannels: 1, outChannels: 1, nc: 64, nb: 17, actMode: 'R' });
  });

  it('an unknown layout is rejected with a summary of what the file holds', () => {
    const keys = new Map([
      ['encoder.stem.weight', { shape: [32, 3, 3, 3] }],
      ['encoder.stem.bias', { shape: [32] }],
      ['head.fc.weight', { shape: [10, 32] }],
    ]);
    expect(() => recogniseStateDict(keys, 'mystery.pth')).toThrow(InvalidInputError);
    expect(() => recogniseStateDict(keys, 'mystery.pth')).toThrow(
      /mystery\.pth: not a network we know.*3 tensors in encoder \(2\), head \(1\); e\.g\. encoder\.stem\.weight \[32, 3, 3, 3\]/,
    );
  });

  it('an explicit architecture that does not fit the keys names both', () => {
    const sd = readCheckpoint(readBytes(new URL('test/fixtures/msrresnet/tiny_x2.pth', REPO)));
    expect(() => networkFromStateDict(sd, { architecture: 'SCUNet' }, 'tiny_x2.pth')).toThrow(
      /tiny_x2\.pth: the keys do not look like SCUNet/,
    );
    expect(() => networkFromStateDict(sd, { architecture: 'NoSuchNet' })).toThrow(/unknown architecture 'NoSuchNet'/);
  });
});
