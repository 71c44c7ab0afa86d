import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { tensorElements } from '../gpu/tensor';
import { laneSum, type LossOptions, type LossResult, lossWeight } from './loss-common';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';

export interface TotalVariationOptions extends LossOptions {
  kind: 'anisotropic-l1' | 'squared';
}

/** The penalty F of one difference d and its derivative F' (WGSL on vec4 `d`). */
const PENALTY = {
  'anisotropic-l1': { f: (d: string) => `abs(${d})`, df: (d: string) => `sign(${d})` },
  squared: { f: (d: string) => `${d} * ${d}`, df: (d: string) => `2.0 * ${d}` },
} as const;

/**
 * Total variation of `x` (training.md §2.4), times `weight`, and its gradient, with Δh the differences of vertically
 * adjacent pixels ((H−1)·W per channel) and Δw of horizontally adjacent ones (H·(W−1)):
 * - 'anisotropic-l1': (Σ|Δh| + Σ|Δw|) / N over all channels, rows and columns — kornia's
 *   `total_variation(x, reduction='sum')` (one sum per image) averaged over the batch; abs'(0) = 0.
 * - 'squared': KAIR's TVLoss, 2·(ΣΔh²/(C(H−1)W) + ΣΔw²/(CH(W−1)))/N. Where H = 1 (or W = 1) KAIR divides 0 by 0
 *   (NaN); here that term is dropped.
 * Each element owns the differences to its lower and right neighbours (for the sums) and gathers the derivatives
 * of the four differences it takes part in (for the gradient): one pass, then the sum of the partials.
 */
export function totalVariationLoss(graph: Graph, x: TensorValue, options: TotalVariationOptions): LossResult {
  const { label, kind } = options;
  if (kind !== 'anisotropic-l1' && kind !== 'squared') {
    throw new InvalidInputError(`${label}: unknown total variation kind '${String(kind)}' (expected anisotropic-l1, squared)`);
  }
  const weight = lossWeight(options);
  const [n, h, w, c] = x.shape;
  const perTerm = (count: number) => (count === 0 ? 0 : (2 * weight) / (count * n));
  const [kh, kw] = kind === 'squared' ? [perTerm(c * (h - 1) * w), perTerm(c * h * (w - 1))] : [weight / n, weight / n];
  const { f, df } = PENALTY[kind];
  const grad = graph.tensor(x.shape, `${label} grad`);
  const loss = reduceRows(graph, {
    rows: tensorElements(x.shape) / 4,
    groups: 1,
    body: {
      tag: `tv_${kind}`,
      key: { loss: 'tv', kind },
      bindings: { x: { binding: x, mode: 'read' }, grad: { binding: grad, mode: 'read_write' } },
      params: {
        ...realLaneParams(x.shape),
        width: { type: 'u32', value: w },
        height: { type: 'u32', value: h },
        kh: { type: 'f32', value: kh },
        kw: { type: 'f32', value: kw },
      },
      statements: (io) => `let real = ${REAL_LANES_WGSL};
      let pix = i / p.c4;
      let col = pix % p.width;
      let line = (pix / p.width) % p.height;
      let v = ${io.load('x', 'i')};
      let line_step = p.width * p.c4;
      var up = vec4<f32>(0.0);
      var down = vec4<f32>(0.0);
      var left = vec4<f32>(0.0);
      var right = vec4<f32>(0.0);
      if (line > 0u) { up = v - ${io.load('x', 'i - line_step')}; }
      if (line + 1u < p.height) { down = ${io.load('x', 'i + line_step')} - v; }
      if (col > 0u) { left = v - ${io.load('x', 'i - p.c4')}; }
      if (col + 1u < p.width) { right = ${io.load('x', 'i + p.c4')} - v; }
      let fh = select(vec4<f32>(0.0), ${f('down')}, real);
      let fw = select(vec4<f32>(0.0), ${f('right')}, real);
      term = vec4<f32>(${laneSum('fh')}, ${laneSum('fw')}, 0.0, 0.0);
      let g = p.kh * (${df('up')} - ${df('down')}) + p.kw * (${df('left')} - ${df('right')});
      ${io.store('grad', 'i', 'select(vec4<f32>(0.0), g, real)')}`,
      // Per element: four differences, two penalties, four derivatives and their weighted sum.
      cost: { flops: 16 * logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) },
    },
    finish: { kind: 'collapse', coefficients: [kh, kw, 0, 0] },
    label,
  })!;
  return { loss, grad };
}
