/** The real KAIR DnCNN-25 checkpoint (legacy pre-1.6 torch.save format despite its .pth name). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkFinite, checkNoUnexpected, numel, readPth, sniffCheckpoint, takeTensor } from '../../src/weights';
import { createHash } from 'node:crypto';
import { DNCNN_URL, expectCheckpointError } from './helpers';

function expectedShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  shapes.set('model.0.weight', [64, 1, 3, 3]);
  shapes.set('model.0.bias', [64]);
  for (let i = 2; i <= 30; i += 2) {
    shapes.set(`model.${i}.weight`, [64, 64, 3, 3]);
    shapes.set(`model.${i}.bias`, [64]);
  }
  shapes.set('model.32.weight', [1, 64, 3, 3]);
  shapes.set('model.32.bias', [1]);
  return shapes;
}

describe('dncnn_25.pth (KAIR)', () => {
  const bytes = new Uint8Array(readFileSync(fileURLToPath(DNCNN_URL)));

  it('is the published file (sha256 from shared/README.md)', () => {
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(sha.startsWith('0451a70d') && sha.endsWith('5b0')).toBe(true);
    expect(bytes.byteLength).toBe(2224903);
  });

  it('reads 34 float32 tensors with the DnCNN shapes and 555,137 parameters', () => {
    expect(sniffCheckpoint(bytes).kind).toBe('torch-legacy');
    const sd = readPth(bytes, { name: 'dncnn_25.pth' });
    const shapes = expectedShapes();
    expect(sd.size).toBe(34);
    expect([...sd.keys()].sort()).toEqual([...shapes.keys()].sort());
    let total = 0;
    for (const [key, shape] of shapes) {
      const t = takeTensor(sd, key, shape);
      expect(t.dtype).toBe('float32');
      expect(t.data).toBeInstanceOf(Float32Array);
      total += numel(t.shape);
    }
    expect(total).toBe(555_137);
    checkNoUnexpected(sd, shapes.keys());
    checkFinite(sd);
  });

  it('has the values PyTorch reads', () => {
    // Printed by torch 1.13 from torch.load('dncnn_25.pth'): first/last elements and the sum of |w|.
    const sd = readPth(bytes);
    const data = (key: string) => sd.get(key)!.data as Float32Array;
    expect(Array.from(data('model.0.weight').subarray(0, 4))).toEqual([
      0.12603254616260529, 0.05243959277868271, 0.04982868954539299, -0.13022159039974213,
    ]);
    expect(Array.from(data('model.32.bias'))).toEqual([9.400101407663897e-5]);
    expect(Array.from(data('model.30.weight').subarray(-2))).toEqual([-0.007216859143227339, 0.006250605918467045]);
    let absSum = 0;
    for (const t of sd.values()) for (const v of t.data as Float32Array) absSum += Math.abs(v);
    expect(absSum).toBeCloseTo(20690.757702605548, 6);
  });

  it('reports truncation at any cut, never another error type', () => {
    const cuts = [
      0,
      8,
      14,
      60,
      Math.floor(bytes.length * 0.1),
      Math.floor(bytes.length * 0.5),
      Math.floor(bytes.length * 0.6),
      Math.floor(bytes.length * 0.99),
      bytes.length - 1,
    ];
    for (const cut of cuts) {
      const err = expectCheckpointError(
        () => readPth(bytes.subarray(0, cut), { name: 'dncnn_25.pth' }),
        ['CHECKPOINT_TRUNCATED', 'CHECKPOINT_FORMAT'],
      );
      if (cut === 0) expect(err.message).toMatch(/empty/);
      else {
        expect(err.code).toBe('CHECKPOINT_TRUNCATED');
        expect(err.message).toMatch(/truncated or incomplete/);
      }
    }
  });
});
