import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { paddedChannels, tensorElements } from '../gpu/tensor';
import { type TensorAccess, WHOLE_BINDINGS } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { checkLossShapes, laneSum, type LossOptions, type LossResult, lossWeight } from './loss-common';
import { REAL_LANES_WGSL, realLaneParams, reduceRows } from './reduce';
import { linearEntry } from './wgsl-common';

const WORKGROUP = 64;

export interface SobelGradientOptions extends LossOptions {
  criterion: 'l1' | 'mse';
}

/**
 * The criterion's penalty and derivative, chosen by the uniform `p.l1` (1 for L1, 0 for MSE) rather than baked into
 * the text: the neighbour gathers make this shader slow to compile on some adapters, and this way both criteria
 * share one pipeline.
 */
const penalty = (d: string) => `select(${d} * ${d}, abs(${d}), p.l1 != 0u)`;
const derivative = (d: string) => `select(2.0 * ${d}, sign(${d}), p.l1 != 0u)`;

/**
 * `fn <name>_at(i, line, col, dy, dx)`: vec4 item i of the pixel (line + dy, col + dx), 0 outside the image (Sobel's
 * zero padding of 1), through `value(j)`. Branch-free (the load of a pixel outside reads item i instead, and is
 * dropped), which some shader compilers handle much faster when it is inlined eight times.
 */
function neighbourWgsl(name: string, value: (j: string) => string): string {
  return `fn ${name}_at(i: u32, line: u32, col: u32, dy: i32, dx: i32) -> vec4<f32> {
  let yy = i32(line) + dy;
  let xx = i32(col) + dx;
  let inside = yy >= 0 && yy < i32(p.height) && xx >= 0 && xx < i32(p.width);
  let j = select(i, u32(i32(i) + (dy * i32(p.width) + dx) * i32(p.c4)), inside);
  return select(vec4<f32>(0.0), ${value('j')}, inside);
}`;
}

/**
 * The eight neighbours of a pixel from `name_at`, named `<name>_<row><col>` with m/z/p for −1/0/+1, and the Sobel
 * correlations with Kx = [[−1,0,1],[−2,0,2],[−1,0,1]] and Ky = Kxᵀ over them (the centre tap of both is 0).
 */
function neighboursWgsl(name: string): string {
  const sign = (d: number) => (d < 0 ? 'm' : d > 0 ? 'p' : 'z');
  const lines: string[] = [];
  for (const dy of [-1, 0, 1]) {
    for (const dx of [-1, 0, 1]) {
      if (dy !== 0 || dx !== 0) lines.push(`let ${name}_${sign(dy)}${sign(dx)} = ${name}_at(i, line, col, ${dy}, ${dx});`);
    }
  }
  return lines.join('\n      ');
}

function sobelX(n: string): string {
  return `(${n}_mp - ${n}_mm) + 2.0 * (${n}_zp - ${n}_zm) + (${n}_pp - ${n}_pm)`;
}

function sobelY(n: string): string {
  return `(${n}_pm - ${n}_mm) + 2.0 * (${n}_pz - ${n}_mz) + (${n}_pp - ${n}_mp)`;
}

const PIXEL_WGSL = `let pix = i / p.c4;
      let col = pix % p.width;
      let line = (pix / p.width) % p.height;`;

/**
 * The gradient: the adjoint of a zero-padded correlation is the correlation with the kernel turned 180°, which is
 * −K for both Sobel kernels, so dpred = −(Kx ⋆ ux + Ky ⋆ uy) with u the criterion's derivatives.
 */
export function sobelGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c_real: u32, width: u32, height: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('ux', 1, 'read')}
${io.declare('uy', 2, 'read')}
${io.declare('grad', 3, 'read_write')}
${neighbourWgsl('ux', (j) => io.load('ux', j))}
${neighbourWgsl('uy', (j) => io.load('uy', j))}

${linearEntry(WORKGROUP)}
  ${PIXEL_WGSL}
  ${neighboursWgsl('ux')}
  ${neighboursWgsl('uy')}
  let sx = ${sobelX('ux')};
  let sy = ${sobelY('uy')};
  let real = ${REAL_LANES_WGSL};
  ${io.store('grad', 'i', 'select(vec4<f32>(0.0), -(sx + sy), real)')}
}`;
}

/**
 * Sobel edge loss (training.md §2.4), times `weight`: the criterion ('l1' or 'mse', reduction 'mean') between the
 * Sobel maps (Kx ⋆ pred, Ky ⋆ pred) and (Kx ⋆ target, Ky ⋆ target), per channel with zero padding 1 — PyTorch
 * `F.conv2d(x, K.expand(C,1,3,3), padding=1, groups=C)` — averaged over both maps stacked (2·N·C·H·W values).
 * Pass 1 computes the maps of pred − target (the maps are linear), the loss partials and the criterion's
 * derivatives; pass 2 correlates those back; a last pass sums the partials.
 */
export function sobelGradientLoss(graph: Graph, pred: TensorValue, target: TensorValue, options: SobelGradientOptions): LossResult {
  const { label, criterion } = options;
  if (criterion !== 'l1' && criterion !== 'mse') {
    throw new InvalidInputError(`${label}: unknown Sobel criterion '${String(criterion)}' (expected l1, mse)`);
  }
  checkLossShapes(pred, target, `target '${target.label}'`, label);
  const weight = lossWeight(options);
  const scale = weight / (2 * logicalElements(pred.shape));
  const [, h, w] = pred.shape;
  const ux = graph.tensor(pred.shape, `${label} d/dGx`);
  const uy = graph.tensor(pred.shape, `${label} d/dGy`);
  const geometry = { width: { type: 'u32' as const, value: w }, height: { type: 'u32' as const, value: h } };
  const loss = reduceRows(graph, {
    rows: tensorElements(pred.shape) / 4,
    groups: 1,
    body: {
      tag: 'sobel',
      key: { loss: 'sobel' },
      bindings: {
        pred: { binding: pred, mode: 'read' },
        truth: { binding: target, mode: 'read' },
        ux: { binding: ux, mode: 'read_write' },
        uy: { binding: uy, mode: 'read_write' },
      },
      params: {
        ...realLaneParams(pred.shape),
        ...geometry,
        scale: { type: 'f32', value: scale },
        l1: { type: 'u32', value: criterion === 'l1' ? 1 : 0 },
      },
      helpers: (io) => neighbourWgsl('err', (j) => `${io.load('pred', j)} - ${io.load('truth', j)}`),
      statements: (io) => `${PIXEL_WGSL}
      ${neighboursWgsl('err')}
      let gx = ${sobelX('err')};
      let gy = ${sobelY('err')};
      let real = ${REAL_LANES_WGSL};
      let fx = select(vec4<f32>(0.0), ${penalty('gx')}, real);
      let fy = select(vec4<f32>(0.0), ${penalty('gy')}, real);
      term = vec4<f32>(${laneSum('fx')}, ${laneSum('fy')}, 0.0, 0.0);
      ${io.store('ux', 'i', `select(vec4<f32>(0.0), ${derivative('gx')} * p.scale, real)`)}
      ${io.store('uy', 'i', `select(vec4<f32>(0.0), ${derivative('gy')} * p.scale, real)`)}`,
      // Per element: 2 × 8 taps of pred − target (each a subtract and a multiply-add), the penalties and derivatives.
      cost: { flops: 40 * logicalElements(pred.shape), bytes: 4 * logicalBytes(pred.shape) },
    },
    finish: { kind: 'collapse', coefficients: [scale, scale, 0, 0] },
    label,
  })!;
  const grad = graph.tensor(pred.shape, `${label} grad`);
  const count = tensorElements(pred.shape) / 4;
  graph.add({
    label: `${label} grad`,
    kernel: kernelShader('sobel_grad', { family: 'sobel_grad' }, (io) => sobelGradWgsl(io)),
    uniforms: { count, c4: paddedChannels(pred.shape[3]) / 4, c_real: pred.shape[3], width: w, height: h },
    bindings: { ux, uy, grad },
    workgroups: Math.ceil(count / WORKGROUP),
    // Per element: 2 × 8 taps, each a multiply-add.
    cost: { flops: 32 * logicalElements(pred.shape), bytes: 3 * logicalBytes(pred.shape) },
  });
  return { loss, grad };
}
