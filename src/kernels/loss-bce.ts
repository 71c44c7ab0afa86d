import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, isTensorValue, type TensorValue } from '../gpu/graph';
import { formatShape, tensorElements } from '../gpu/tensor';
import type { TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { checkLossShapes, laneSum, type LossOptions, type LossResult, lossWeight } from './loss-common';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';
import { linearEntry } from './wgsl-common';

/**
 * Adversarial losses on discriminator logits (training.md §2.6), built on PyTorch's BCEWithLogitsLoss (reduction
 * 'mean' over the real elements; NHWC padding never counts):
 *   ℓ(z, t) = max(z, 0) − z·t + log(1 + e^{−|z|}),  ∂ℓ/∂z = σ(z) − t,
 * the softplus form that neither overflows nor loses the small tail at |z| = 100 (log1p of e^{−|z|} is evaluated
 * with a series that keeps its relative precision, and σ from e^{−|z|} on either side of 0).
 */

const WORKGROUP = 64;

/**
 * WGSL: `bce_term(z, t)` and `bce_grad(z, t)` = σ(z) − t, per lane. log1p(u) for u = e^{−|z|} ∈ (0, 1] is
 * 2·atanh(s) with s = u / (2 + u) ≤ 1/3, whose odd series s + s³/3 + … needs 9 terms to reach f32 precision;
 * log(1 + u) itself would round u away entirely below 6e-8 (a confident logit's whole loss). Likewise σ(z) − t is
 * formed from the small side, e^{−|z|}/(1 + e^{−|z|}): for z ≥ 0 as (1 − t) − that, so a confident right logit
 * keeps its tiny gradient instead of rounding σ to 1.
 */
export const BCE_WGSL = `fn bce_log1p_unit(u: vec4<f32>) -> vec4<f32> {
  let s = u / (2.0 + u);
  let s2 = s * s;
  var series = vec4<f32>(1.0 / 17.0);
  ${[15, 13, 11, 9, 7, 5, 3].map((d) => `series = 1.0 / ${d}.0 + s2 * series;`).join('\n  ')}
  series = 1.0 + s2 * series;
  return 2.0 * s * series;
}

fn bce_term(z: vec4<f32>, t: vec4<f32>) -> vec4<f32> {
  return max(z, vec4<f32>(0.0)) - z * t + bce_log1p_unit(exp(-abs(z)));
}

fn bce_grad(z: vec4<f32>, t: vec4<f32>) -> vec4<f32> {
  let e = exp(-abs(z));
  let small = e / (1.0 + e);
  return select(small - t, (1.0 - t) - small, z >= vec4<f32>(0.0));
}`;

export type BceTarget = number | TensorValue;

function checkTarget(target: BceTarget, logits: TensorValue, label: string): void {
  if (typeof target === 'number') {
    if (!Number.isFinite(target)) throw new InvalidInputError(`${label}: the target must be a finite number or a tensor, got ${target}`);
  } else if (isTensorValue(target)) {
    checkLossShapes(logits, target, `target '${target.label}'`, label);
  } else {
    throw new InvalidInputError(`${label}: the target must be a finite number or a tensor, got ${String(target)}`);
  }
}

/**
 * `weight·mean ℓ(z, t)` over every real element of `logits` (nn.BCEWithLogitsLoss, reduction 'mean'), `t` a number
 * for every element or a tensor of the logits' shape; and the gradient weight·(σ(z) − t)/numel (same shape as
 * logits, padded channels 0). The target gets no gradient.
 *
 * @throws InvalidInputError when a target tensor's shape differs or a number is not finite.
 */
export function bceWithLogitsLoss(graph: Graph, logits: TensorValue, target: BceTarget, options: LossOptions): LossResult {
  const { label } = options;
  checkTarget(target, logits, label);
  const weight = lossWeight(options);
  const scale = weight / logicalElements(logits.shape);
  const grad = graph.tensor(logits.shape, `${label} grad`);
  const targetTensor = typeof target === 'number' ? undefined : target;
  const loss = reduceRows(graph, {
    rows: tensorElements(logits.shape) / 4,
    groups: 1,
    body: {
      tag: 'bce_with_logits',
      key: { loss: 'bce_with_logits', targetTensor: targetTensor !== undefined },
      bindings: {
        logits: { binding: logits, mode: 'read' },
        ...(targetTensor ? { truth: { binding: targetTensor, mode: 'read' as const } } : {}),
        grad: { binding: grad, mode: 'read_write' },
      },
      params: {
        ...realLaneParams(logits.shape),
        scale: { type: 'f32', value: scale },
        target_value: { type: 'f32', value: typeof target === 'number' ? target : 0 },
      },
      helpers: () => BCE_WGSL,
      statements: (io) => `let real = ${REAL_LANES_WGSL};
      let z = ${io.load('logits', 'i')};
      let t = ${targetTensor ? io.load('truth', 'i') : 'vec4<f32>(p.target_value)'};
      term = select(vec4<f32>(0.0), bce_term(z, t), real);
      ${io.store('grad', 'i', 'select(vec4<f32>(0.0), bce_grad(z, t) * p.scale, real)')}`,
      // Per element about a dozen operations for the term (exp and the series) and a few for σ; logits (and the
      // target tensor) read, the gradient written.
      cost: {
        flops: 30 * logicalElements(logits.shape),
        bytes: (targetTensor ? 3 : 2) * logicalBytes(logits.shape),
      },
    },
    finish: { kind: 'collapse', coefficients: [scale, scale, scale, scale] },
    label,
  })!;
  return { loss, grad };
}

export interface GanLossOptions extends LossOptions {
  /** The generator's step (true) or the discriminator's (false). */
  forGenerator: boolean;
}

/** The discriminator's logits on real data and on generated data. */
export interface GanLogits {
  /** D(real): needed for the discriminator's step, ignored for the generator's. */
  real?: TensorValue;
  /** D(G(x)). */
  fake: TensorValue;
}

/**
 * The vanilla GAN losses (pix2pix `gan_mode='vanilla'`), each times `weight`:
 * - discriminator: `real` = ½ℓ(D(real), 1) with its gradient to D(real), `fake` = ½ℓ(D(fake), 0) with its gradient
 *   to D(fake) (fake detached from the generator); the caller sums the two losses (sumTensors) and back-propagates
 *   each gradient through its own discriminator pass;
 * - generator: `fake` = ℓ(D(fake), 1), the discriminator frozen (its gradient only passes through D to G).
 *
 * @throws InvalidInputError when the discriminator's step has no `real` logits.
 */
export function vanillaGanLosses(graph: Graph, logits: GanLogits, options: GanLossOptions): { real?: LossResult; fake: LossResult } {
  const { label, forGenerator } = options;
  const weight = lossWeight(options);
  if (forGenerator) return { fake: bceWithLogitsLoss(graph, logits.fake, 1, { label: `${label} (generator)`, weight }) };
  if (!logits.real) throw new InvalidInputError(`${label}: the discriminator's step needs the logits of real data`);
  return {
    real: bceWithLogitsLoss(graph, logits.real, 1, { label: `${label} (real)`, weight: weight / 2 }),
    fake: bceWithLogitsLoss(graph, logits.fake, 0, { label: `${label} (fake)`, weight: weight / 2 }),
  };
}

export interface RelativisticGanResult {
  /** [1, 1, 1, 1], the value in channel 0. */
  loss: TensorValue;
  /** ∂loss/∂D(real). */
  gradReal: TensorValue;
  /** ∂loss/∂D(fake). */
  gradFake: TensorValue;
}

/**
 * ESRGAN's relativistic average GAN loss as BasicSR trains it (models/esrgan_model.py, with GANLoss 'vanilla'),
 * times `weight` (BasicSR weights only the generator's, by its gan loss_weight 5e-3). With r = D(real), f = D(fake),
 * n = numel and means over all real elements:
 * - generator: ½[ℓ(r − mean f, 0) + ℓ(f − mean r, 1)], and its full gradient to both logits, each including the
 *   path through the other's mean: ∂/∂r_j = (σ(r_j − mean f) − mean_i(σ(f_i − mean r) − 1)) / 2n, and ∂/∂f_j =
 *   (σ(f_j − mean r) − 1 − mean_i σ(r_i − mean f)) / 2n. BasicSR detaches D(real) here, so the caller back-propagates
 *   only gradFake (through D, frozen, to the generator) and ignores gradReal.
 * - discriminator: ½ℓ(r − mean(f).detach(), 1) + ½ℓ(f − mean(r).detach(), 0): both means are detached, so
 *   gradReal = (σ(r_j − mean f) − 1) / 2n and gradFake = σ(f_j − mean r) / 2n (f computed from the detached
 *   generator output); the caller back-propagates both through D.
 * Real and fake logits must have one shape (one batch of each).
 *
 * @throws InvalidInputError when the two logit tensors differ in shape.
 */
export function relativisticGanLoss(graph: Graph, real: TensorValue, fake: TensorValue, options: GanLossOptions): RelativisticGanResult {
  const { label, forGenerator } = options;
  if (real.shape.some((d, i) => d !== fake.shape[i])) {
    throw new InvalidInputError(
      `${label}: the fake logits '${fake.label}' ${formatShape(fake.shape)} do not match the real logits ${formatShape(real.shape)}`,
    );
  }
  const weight = lossWeight(options);
  const numel = logicalElements(real.shape);
  const rows = tensorElements(real.shape) / 4;
  const lanes = realLaneParams(real.shape);
  const elementBytes = logicalBytes(real.shape);
  // The labels of the two terms: the generator wants real to look fake and fake to look real.
  const [targetReal, targetFake] = forGenerator ? [0, 1] : [1, 0];

  // mean r, mean f: [1, 1, 1, 2].
  const means = reduceRows(graph, {
    rows,
    groups: 1,
    body: {
      tag: 'relativistic_means',
      key: 'relativistic_means',
      bindings: { real: { binding: real, mode: 'read' }, fake: { binding: fake, mode: 'read' } },
      params: lanes,
      statements: (io) => `let real_lanes = ${REAL_LANES_WGSL};
      let r = select(vec4<f32>(0.0), ${io.load('real', 'i')}, real_lanes);
      let f = select(vec4<f32>(0.0), ${io.load('fake', 'i')}, real_lanes);
      term = vec4<f32>(${laneSum('r')}, ${laneSum('f')}, 0.0, 0.0);`,
      cost: { flops: 2 * numel, bytes: 2 * elementBytes },
    },
    finish: { kind: 'channels', channels: 2, scale: 1 / numel },
    label: `${label} means`,
  })!;

  // Σℓ(a, t_r), Σℓ(b, t_f), Σ(σ(a) − t_r), Σ(σ(b) − t_f) with a = r − mean f, b = f − mean r: [1, 1, 1, 4]; on the
  // way each element's own gradient, scale·(σ − t), into gradReal and gradFake.
  const scale = weight / (2 * numel);
  const gradReal = graph.tensor(real.shape, `${label} grad real`);
  const gradFake = graph.tensor(fake.shape, `${label} grad fake`);
  const sums = reduceRows(graph, {
    rows,
    groups: 1,
    body: {
      tag: 'relativistic_terms',
      key: 'relativistic_terms',
      bindings: {
        real: { binding: real, mode: 'read' },
        fake: { binding: fake, mode: 'read' },
        means: { binding: means, mode: 'read' },
        grad_real: { binding: gradReal, mode: 'read_write' },
        grad_fake: { binding: gradFake, mode: 'read_write' },
      },
      params: {
        ...lanes,
        target_real: { type: 'f32', value: targetReal },
        target_fake: { type: 'f32', value: targetFake },
        scale: { type: 'f32', value: scale },
      },
      helpers: () => BCE_WGSL,
      statements: (io) => `let real_lanes = ${REAL_LANES_WGSL};
      let zero = vec4<f32>(0.0);
      let m = ${io.load('means', '0u')};
      let a = ${io.load('real', 'i')} - m.y;
      let b = ${io.load('fake', 'i')} - m.x;
      let ta = vec4<f32>(p.target_real);
      let tb = vec4<f32>(p.target_fake);
      let la = select(zero, bce_term(a, ta), real_lanes);
      let lb = select(zero, bce_term(b, tb), real_lanes);
      let ga = select(zero, bce_grad(a, ta), real_lanes);
      let gb = select(zero, bce_grad(b, tb), real_lanes);
      ${io.store('grad_real', 'i', 'ga * p.scale')}
      ${io.store('grad_fake', 'i', 'gb * p.scale')}
      term = vec4<f32>(${laneSum('la')}, ${laneSum('lb')}, ${laneSum('ga')}, ${laneSum('gb')});`,
      cost: { flops: 70 * numel, bytes: 4 * elementBytes },
    },
    finish: { kind: 'channels', channels: 4, scale: 1 },
    label: `${label} sums`,
  })!;

  // The loss, and for the generator the path of each gradient through the other's mean (in place).
  const loss = graph.tensor([1, 1, 1, 1], label);
  const count = rows;
  graph.add({
    label: `${label} finish`,
    kernel: kernelShader('relativistic_finish', { family: 'relativistic_finish' }, (io) => relativisticFinishWgsl(io)),
    uniforms: { count, c4: lanes.c4.value, c_real: lanes.c_real.value, scale, coupling: forGenerator ? 1 / numel : 0 },
    bindings: { sums, grad_real: gradReal, grad_fake: gradFake, loss },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: 4 * numel, bytes: 4 * elementBytes },
  });
  return { loss, gradReal, gradFake };
}

/**
 * gradReal −= scale·coupling·Σ(σ(b) − t_f), gradFake −= scale·coupling·Σ(σ(a) − t_a) on real lanes (coupling 1/n
 * for the generator, 0 when the means are detached); item 0 also writes the loss scale·(Σℓa + Σℓb).
 */
function relativisticFinishWgsl(io: TensorAccess): string {
  return `struct Params { count: u32, c4: u32, c_real: u32, scale: f32, coupling: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('sums', 1, 'read')}
${io.declare('grad_real', 2, 'read_write')}
${io.declare('grad_fake', 3, 'read_write')}
${io.declare('loss', 4, 'read_write')}

${linearEntry(WORKGROUP)}
  let s = ${io.load('sums', '0u')};
  let real_lanes = ${REAL_LANES_WGSL};
  let zero = vec4<f32>(0.0);
  let shift_real = select(zero, vec4<f32>(p.scale * (p.coupling * s.w)), real_lanes);
  let shift_fake = select(zero, vec4<f32>(p.scale * (p.coupling * s.z)), real_lanes);
  ${io.store('grad_real', 'i', `${io.load('grad_real', 'i')} - shift_real`)}
  ${io.store('grad_fake', 'i', `${io.load('grad_fake', 'i')} - shift_fake`)}
  if (i == 0u) {
    ${io.store('loss', '0u', 'vec4<f32>(p.scale * (s.x + s.y), 0.0, 0.0, 0.0)')}
  }
}`;
}
