import { describe, expect, it } from 'vitest';
import { writeBuffer } from '../../src/gpu/context';
import { InvalidInputError } from '../../src/errors';
import { Graph } from '../../src/gpu/graph';
import { ParameterArena } from '../../src/gpu/parameter-arena';
import { Plan } from '../../src/gpu/plan';
import type { Shape4 } from '../../src/gpu/tensor';
import { windowAttentionBackward } from '../../src/kernels/window-attention-backward';
import { getTestContext, readWhole } from '../helpers/gpu';
import { randomArray, relL2 } from '../helpers/random';

/*
 * Float64 reference of SCUNet's window attention core (models/network_scunet.py WMSA without its Linears) on an
 * NHWC qkv map [n, H, W, 3C], and its backward by the formulas of docs/training.md §1.9, checked against central
 * differences; then the GPU backward against it.
 */

const HD = 32;
const WS = 8;

interface Geometry {
  n: number;
  h: number;
  w: number;
  heads: number;
  shifted: boolean;
}

/** Pixel (flat n·H·W index) of token t of window (wy, wx) of image b, after the SW roll by (−4, −4). */
function tokenPixel(g: Geometry, b: number, wy: number, wx: number, t: number): number {
  const s = g.shifted ? WS / 2 : 0;
  const y = (wy * WS + Math.floor(t / WS) + s) % g.h;
  const x = (wx * WS + (t % WS) + s) % g.w;
  return (b * g.h + y) * g.w + x;
}

/** torch's SW mask: in the last window row / column, tokens on different sides of 4 do not see each other. */
function isMasked(g: Geometry, wy: number, wx: number, tq: number, tk: number): boolean {
  if (!g.shifted) return false;
  const row = wy === g.h / WS - 1 && Math.floor(tq / WS) < 4 !== Math.floor(tk / WS) < 4;
  const col = wx === g.w / WS - 1 && tq % WS < 4 !== tk % WS < 4;
  return row || col;
}

/** Calls `f(b, wy, wx, head, pixels)` for every (image, window, head), with its 64 token pixels. */
function eachWindow(g: Geometry, f: (head: number, pix: number[], wy: number, wx: number) => void): void {
  for (let b = 0; b < g.n; b++) {
    for (let wy = 0; wy < g.h / WS; wy++) {
      for (let wx = 0; wx < g.w / WS; wx++) {
        const pix = Array.from({ length: WS * WS }, (_, t) => tokenPixel(g, b, wy, wx, t));
        for (let head = 0; head < g.heads; head++) f(head, pix, wy, wx);
      }
    }
  }
}

/** P[q][k] of one (window, head). */
function probabilities(g: Geometry, qkv: ArrayLike<number>, bias: ArrayLike<number>, head: number, pix: number[], wy: number, wx: number) {
  const c = g.heads * HD;
  const scale = HD ** -0.5;
  const T = WS * WS;
  return Array.from({ length: T }, (_, tq) => {
    const s = new Float64Array(T);
    let m = -Infinity;
    for (let tk = 0; tk < T; tk++) {
      if (isMasked(g, wy, wx, tq, tk)) {
        s[tk] = -Infinity;
        continue;
      }
      let d = 0;
      for (let j = 0; j < HD; j++) d += qkv[pix[tq] * 3 * c + head * HD + j] * scale * qkv[pix[tk] * 3 * c + c + head * HD + j];
      const dy = Math.floor(tq / WS) - Math.floor(tk / WS) + WS - 1;
      const dx = (tq % WS) - (tk % WS) + WS - 1;
      s[tk] = d + bias[head * 225 + dy * 15 + dx];
      m = Math.max(m, s[tk]);
    }
    let l = 0;
    for (let tk = 0; tk < T; tk++) l += s[tk] = Math.exp(s[tk] - m);
    return s.map((e) => e / l);
  });
}

function attentionRef(g: Geometry, qkv: ArrayLike<number>, bias: ArrayLike<number>): Float64Array {
  const c = g.heads * HD;
  const out = new Float64Array(g.n * g.h * g.w * c);
  eachWindow(g, (head, pix, wy, wx) => {
    const P = probabilities(g, qkv, bias, head, pix, wy, wx);
    P.forEach((row, tq) => {
      for (let j = 0; j < HD; j++) {
        let o = 0;
        row.forEach((pr, tk) => (o += pr * qkv[pix[tk] * 3 * c + 2 * c + head * HD + j]));
        out[pix[tq] * c + head * HD + j] = o;
      }
    });
  });
  return out;
}

function attentionBackwardRef(g: Geometry, qkv: ArrayLike<number>, bias: ArrayLike<number>, gy: ArrayLike<number>) {
  const c = g.heads * HD;
  const scale = HD ** -0.5;
  const dqkv = new Float64Array(qkv.length);
  const dBias = new Float64Array(g.heads * 225);
  eachWindow(g, (head, pix, wy, wx) => {
    const P = probabilities(g, qkv, bias, head, pix, wy, wx);
    const at = (t: number, part: number, j: number) => pix[t] * 3 * c + part * c + head * HD + j;
    P.forEach((row, tq) => {
      const dP = row.map((_, tk) => {
        let d = 0;
        for (let j = 0; j < HD; j++) d += gy[pix[tq] * c + head * HD + j] * qkv[at(tk, 2, j)];
        return d;
      });
      let dsum = 0;
      row.forEach((pr, tk) => (dsum += pr * dP[tk]));
      row.forEach((pr, tk) => {
        const ds = pr * (dP[tk] - dsum);
        for (let j = 0; j < HD; j++) {
          dqkv[at(tq, 0, j)] += ds * qkv[at(tk, 1, j)] * scale;
          dqkv[at(tk, 1, j)] += ds * qkv[at(tq, 0, j)] * scale;
          dqkv[at(tk, 2, j)] += pr * gy[pix[tq] * c + head * HD + j];
        }
        const dy = Math.floor(tq / WS) - Math.floor(tk / WS) + WS - 1;
        const dx = (tq % WS) - (tk % WS) + WS - 1;
        dBias[head * 225 + dy * 15 + dx] += ds;
      });
    });
  });
  return { dqkv, dBias };
}

describe('float64 window attention backward reference', () => {
  for (const shifted of [false, true]) {
    it(`matches central differences (${shifted ? 'SW' : 'W'}, 2 heads, 8x16)`, () => {
      const g: Geometry = { n: 1, h: 8, w: 16, heads: 2, shifted };
      const qkv = randomArray(g.h * g.w * 3 * g.heads * HD, 11, 1.5);
      const bias = randomArray(g.heads * 225, 12, 1);
      const gy = randomArray(g.h * g.w * g.heads * HD, 13);
      const loss = () => attentionRef(g, qkv, bias).reduce((s, v, i) => s + v * gy[i], 0);
      const ref = attentionBackwardRef(g, qkv, bias, gy);
      // A sample of entries (every table entry would take minutes): spread over Q, K, V and both heads.
      const check = (v: Float64Array, grad: Float64Array, picks: number[]) => {
        const fd = picks.map((i) => {
          const keep = v[i];
          const h = 1e-6 * Math.max(1, Math.abs(keep));
          v[i] = keep + h;
          const up = loss();
          v[i] = keep - h;
          const down = loss();
          v[i] = keep;
          return (up - down) / (2 * h);
        });
        expect(
          relL2(
            picks.map((i) => grad[i]),
            fd,
          ),
        ).toBeLessThan(1e-6);
      };
      check(
        qkv,
        ref.dqkv,
        Array.from({ length: 24 }, (_, k) => (k * 1543 + 7) % qkv.length),
      );
      // Entries at offsets that occur (and for SW, across the mask boundary).
      check(bias, ref.dBias, [112, 0, 224, 97, 130, 225 + 112, 225 + 16, 225 + 200]);
    });
  }
});

const CASES: Array<[string, Geometry]> = [
  ['W, 1 head, 1x8x8', { n: 1, h: 8, w: 8, heads: 1, shifted: false }],
  ['SW, 1 head, 1x8x8 (one window, both masks)', { n: 1, h: 8, w: 8, heads: 1, shifted: true }],
  ['W, 2 heads, 2x16x24', { n: 2, h: 16, w: 24, heads: 2, shifted: false }],
  ['SW, 2 heads, 2x16x24', { n: 2, h: 16, w: 24, heads: 2, shifted: true }],
  ['SW, 3 heads, 1x24x16', { n: 1, h: 24, w: 16, heads: 3, shifted: true }],
];

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length && ua.every((v, i) => v === ub[i]);
}

describe('windowAttentionBackward against the float64 reference', () => {
  CASES.forEach(([name, g], index) => {
    it(name, async () => {
      const ctx = await getTestContext();
      const c = g.heads * HD;
      const qkvShape: Shape4 = [g.n, g.h, g.w, 3 * c];
      const gyShape: Shape4 = [g.n, g.h, g.w, c];
      const qkv = Float32Array.from(randomArray(g.n * g.h * g.w * 3 * c, 100 + index, 1.5));
      const gyData = Float32Array.from(randomArray(g.n * g.h * g.w * c, 200 + index));
      const bias = Float32Array.from(randomArray(g.heads * 225, 300 + index));
      const ref = attentionBackwardRef(g, qkv, bias, gyData);

      const key = {};
      const arena = new ParameterArena(ctx, [{ key, numel: g.heads * 225, label: 'relative_position_params' }], 'wmsa');
      arena.write(key, 'value', bias);
      const graph = new Graph();
      const qkvIn = graph.input(qkvShape, 'qkv');
      const gy = graph.input(gyShape, 'gy');
      const dqkv = windowAttentionBackward(graph, qkvIn, gy, {
        bias: arena.range(key, 'value'),
        dBias: arena.range(key, 'grad'),
        heads: g.heads,
        shifted: g.shifted,
        label: 'wmsa backward',
        // Several chunks (with a short last one) even on these small maps.
        windowsPerChunk: 3,
      });
      expect(dqkv.shape).toEqual(qkvShape);
      graph.output(dqkv);
      const plan = await Plan.compile(ctx, graph);
      const run = async () => {
        plan.poison();
        writeBuffer(ctx.device, arena.buffer('grad'), 0, new Float32Array(arena.elements).fill(Number.NaN));
        const { outputs } = await plan.run([qkv, gyData]);
        return { dqkv: outputs[0], grads: await readWhole(ctx, arena.buffer('grad')) };
      };
      const first = await run();
      expect(relL2(first.dqkv, ref.dqkv), 'dqkv').toBeLessThanOrEqual(1e-5);
      const entries = g.heads * 225;
      const at = arena.entry(key).offset;
      expect(relL2(first.grads.slice(at, at + entries), ref.dBias), 'dBias').toBeLessThanOrEqual(1e-4);
      for (let i = entries; i < Math.ceil(entries / 4) * 4; i++) expect(first.grads[at + i], `dBias padded lane ${i}`).toBe(0);
      const again = await run();
      expect(sameBits(again.dqkv, first.dqkv), 'dqkv bitwise reproducible').toBe(true);
      expect(sameBits(again.grads, first.grads), 'dBias bitwise reproducible').toBe(true);
      plan.dispose();
      arena.dispose();
    });
  });

  it('names a bad input', () => {
    const graph = new Graph();
    const qkv = graph.input([1, 8, 8, 96], 'qkv');
    const bias = { buffer: {} as GPUBuffer, offset: 0, size: 225 * 4 };
    const params = { bias, heads: 1, shifted: false, label: 'wmsa' };
    expect(() => windowAttentionBackward(graph, qkv, graph.input([1, 8, 8, 64]), params)).toThrow(/output gradient/);
    expect(() => windowAttentionBackward(graph, graph.input([1, 8, 12, 96]), graph.input([1, 8, 12, 32]), params)).toThrow(
      InvalidInputError,
    );
    expect(() => windowAttentionBackward(graph, qkv, graph.input([1, 8, 8, 32]), { ...params, heads: 2 })).toThrow(/3·2·32 channels/);
    expect(() => windowAttentionBackward(graph, qkv, graph.input([1, 8, 8, 32]), { ...params, bias: { ...bias, size: 100 } })).toThrow(
      /wmsa: bias spans 100 bytes/,
    );
  });
});
