import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import { type TensorAccess, WHOLE_BINDINGS } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { checkLossShapes, laneSum, type LossOptions, type LossResult, lossWeight } from './loss-common';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';
import { linearEntry } from './wgsl-common';

const WORKGROUP = 64;

export interface MaskedMseOptions extends LossOptions {
  /** λ, the weight of the masked (defect) region's mean: finite, ≥ 0. */
  lambda: number;
  /**
   * The weight of the unmasked region's mean (default 1). 0 leaves λ·Σme²/Σm alone: Noise2Void's loss at the
   * blind spots (n2v and CAREamics: Σm(f − x)²/Σm over the whole batch).
   */
  outside?: number;
}

/**
 * WGSL for item i: `e` = pred − target, `m` the mask and `o` = 1 − m, all 0 on padded lanes. A one-channel mask
 * over a many-channel prediction is read once per pixel and applied to every channel.
 */
function maskedErrorWgsl(io: TensorAccess, broadcast: boolean): string {
  const mask = broadcast ? `vec4<f32>(${io.load('mask', 'i / p.c4')}.x)` : io.load('mask', 'i');
  return `let real = ${REAL_LANES_WGSL};
      let e = select(vec4<f32>(0.0), ${io.load('pred', 'i')} - ${io.load('truth', 'i')}, real);
      let m = select(vec4<f32>(0.0), ${mask}, real);
      let o = select(vec4<f32>(0.0), 1.0 - m, real);`;
}

export function maskedMseGradWgsl(broadcast: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c_real: u32, lambda: f32, weight: f32, outside: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('pred', 1, 'read')}
${io.declare('truth', 2, 'read')}
${io.declare('mask', 3, 'read')}
${io.declare('sums', 4, 'read')}
${io.declare('grad', 5, 'read_write')}
${io.declare('loss', 6, 'read_write')}

${linearEntry(WORKGROUP)}
  // sums = (Σ(1−m)e², Σme², N₁ = Σm, N₀ = Σ(1−m)); an empty region's term is dropped, not divided by 0.
  let s = ${io.load('sums', '0u')};
  let inv_out = select(0.0, p.outside / s.w, s.w > 0.0);
  let inv_in = select(0.0, p.lambda / s.z, s.z > 0.0);
  ${maskedErrorWgsl(io, broadcast)}
  ${io.store('grad', 'i', '2.0 * e * (o * inv_out + m * inv_in) * p.weight')}
  if (i == 0u) {
    let value = select(0.0, p.outside * (s.x / s.w), s.w > 0.0) + select(0.0, p.lambda * (s.y / s.z), s.z > 0.0);
    ${io.store('loss', '0u', 'vec4<f32>(value * p.weight, 0.0, 0.0, 0.0)')}
  }
}`;
}

/**
 * The weighted-mask MSE of training.md §2.2, variant (A): L = Σ(1−m)e²/N₀ + λ·Σme²/N₁ with e = pred − target,
 * N₁ = Σm and N₀ = Σ(1−m) counted over elements (channels included) and summed over the whole batch — PyTorch's
 * `((1−m)*e**2).sum()/(1−m).sum() + λ*(m*e**2).sum()/m.sum()` — times `weight`. Gradient 2e/N₀ outside, 2λe/N₁
 * inside. The λ term is dropped when N₁ = 0 (no defect in the batch) and the first when N₀ = 0 (all defect), where
 * PyTorch would give NaN. `mask` (values in [0, 1]) has pred's shape, or one channel, which then applies to every
 * channel of its pixel and counts once per channel. The counts are sums on the GPU (exact integers in f32 for
 * binary masks up to 2²⁴ elements per region); nothing is read back.
 */
export function maskedMseLoss(
  graph: Graph,
  pred: TensorValue,
  target: TensorValue,
  mask: TensorValue,
  options: MaskedMseOptions,
): LossResult {
  const { label, lambda } = options;
  checkLossShapes(pred, target, `target '${target.label}'`, label);
  const [n, h, w, c] = pred.shape;
  const [mn, mh, mw, mc] = mask.shape;
  if (mn !== n || mh !== h || mw !== w || (mc !== c && mc !== 1)) {
    throw new InvalidInputError(
      `${label}: mask '${mask.label}' ${formatShape(mask.shape)} does not fit pred ${formatShape(pred.shape)} (needs [${n}, ${h}, ${w}, ${c} or 1])`,
    );
  }
  if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0) {
    throw new InvalidInputError(`${label}: lambda must be a finite number ≥ 0, got ${String(lambda)}`);
  }
  const outside = options.outside ?? 1;
  if (typeof outside !== 'number' || !Number.isFinite(outside) || outside < 0) {
    throw new InvalidInputError(`${label}: outside must be a finite number ≥ 0, got ${String(outside)}`);
  }
  const weight = lossWeight(options);
  const broadcast = mc !== c;
  const lanes = realLaneParams(pred.shape);
  const sums = reduceRows(graph, {
    rows: tensorElements(pred.shape) / 4,
    groups: 1,
    body: {
      tag: `masked_mse${broadcast ? '_bcast' : ''}`,
      key: { loss: 'masked_mse', broadcast },
      bindings: {
        pred: { binding: pred, mode: 'read' },
        truth: { binding: target, mode: 'read' },
        mask: { binding: mask, mode: 'read' },
      },
      params: lanes,
      statements: (io) => `${maskedErrorWgsl(io, broadcast)}
      let se = e * e;
      let outside = o * se;
      let inside = m * se;
      term = vec4<f32>(${laneSum('outside')}, ${laneSum('inside')}, ${laneSum('m')}, ${laneSum('o')});`,
      // Per element: difference, square, 1 − m, two products and four adds.
      cost: { flops: 9 * logicalElements(pred.shape), bytes: 2 * logicalBytes(pred.shape) + logicalBytes(mask.shape) },
    },
    finish: { kind: 'channels', channels: 4, scale: 1 },
    label: `${label} sums`,
  })!;
  const grad = graph.tensor(pred.shape, `${label} grad`);
  const loss = graph.tensor([1, 1, 1, 1], label);
  const count = tensorElements(pred.shape) / 4;
  graph.add({
    label: `${label} grad`,
    kernel: kernelShader(`masked_mse_grad${broadcast ? '[bcast]' : ''}`, { family: 'masked_mse_grad', broadcast }, (io) =>
      maskedMseGradWgsl(broadcast, io),
    ),
    uniforms: { count, c4: lanes.c4.value, c_real: c, lambda, weight, outside },
    bindings: { pred, truth: target, mask, sums, grad, loss },
    workgroups: Math.ceil(count / WORKGROUP),
    // Per element: difference, 1 − m, the two weighted terms and the products with 2e and the weight.
    cost: { flops: 7 * logicalElements(pred.shape), bytes: 3 * logicalBytes(pred.shape) + logicalBytes(mask.shape) + 32 },
  });
  return { loss, grad };
}
