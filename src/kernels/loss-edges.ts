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
 * The 3×3 neighbourhood of a pixel from `name_at`, named `<name>_<row><col>` with m/z/p for −1/0/+1; the centre
 * only when the filter has a centre tap (Sobel's is 0, the Laplacian's −4).
 */
function neighboursWgsl(name: string, centre: boolean): string {
  const sign = (d: number) => (d < 0 ? 'm' : d > 0 ? 'p' : 'z');
  const lines: string[] = [];
  for (const dy of [-1, 0, 1]) {
    for (const dx of [-1, 0, 1]) {
      if (dy !== 0 || dx !== 0 || centre) lines.push(`let ${name}_${sign(dy)}${sign(dx)} = ${name}_at(i, line, col, ${dy}, ${dx});`);
    }
  }
  return lines.join('\n      ');
}

/** Sobel correlations with Kx = [[−1,0,1],[−2,0,2],[−1,0,1]] and Ky = Kxᵀ. */
function sobelX(n: string): string {
  return `(${n}_mp - ${n}_mm) + 2.0 * (${n}_zp - ${n}_zm) + (${n}_pp - ${n}_pm)`;
}

function sobelY(n: string): string {
  return `(${n}_pm - ${n}_mm) + 2.0 * (${n}_pz - ${n}_mz) + (${n}_pp - ${n}_mp)`;
}

/** The Laplacian [[0,1,0],[1,−4,1],[0,1,0]] (second-order differences along both axes). */
function laplacian(n: string): string {
  return `(${n}_mz + ${n}_zm) + (${n}_zp + ${n}_pz) - 4.0 * ${n}_zz`;
}

/**
 * A loss on fixed 3×3 depthwise filters of pred − target: the filter maps (one or two), the adjoint that takes
 * the criterion's derivatives u0 (and u1) back to the pixels, and whether the filter has a centre tap.
 */
interface EdgeFilter {
  name: string;
  title: string;
  maps: ((n: string) => string)[];
  adjoint: string;
  centre: boolean;
  /** Multiply-adds per map and pixel. */
  taps: number;
}

const FILTERS = {
  // The adjoint of a zero-padded correlation is the correlation with the kernel turned 180°: −K for both Sobel
  // kernels, the Laplacian itself (it is symmetric).
  sobel: { name: 'sobel', title: 'Sobel', maps: [sobelX, sobelY], adjoint: `-(${sobelX('u0')} + ${sobelY('u1')})`, centre: false, taps: 8 },
  laplacian: { name: 'laplacian', title: 'Laplacian', maps: [laplacian], adjoint: laplacian('u0'), centre: true, taps: 5 },
} satisfies Record<string, EdgeFilter>;

const PIXEL_WGSL = `let pix = i / p.c4;
      let col = pix % p.width;
      let line = (pix / p.width) % p.height;`;

/** The gradient: the filter's adjoint applied to the criterion's derivatives of each map. */
export function edgeGradWgsl(filter: EdgeFilter, io: TensorAccess = WHOLE_BINDINGS): string {
  const maps = filter.maps.map((_, k) => `u${k}`);
  return `struct Params { count: u32, c4: u32, c_real: u32, width: u32, height: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${maps.map((u, k) => io.declare(u, k + 1, 'read')).join('\n')}
${io.declare('grad', maps.length + 1, 'read_write')}
${maps.map((u) => neighbourWgsl(u, (j) => io.load(u, j))).join('\n')}

${linearEntry(WORKGROUP)}
  ${PIXEL_WGSL}
  ${maps.map((u) => neighboursWgsl(u, filter.centre)).join('\n  ')}
  let real = ${REAL_LANES_WGSL};
  ${io.store('grad', 'i', `select(vec4<f32>(0.0), ${filter.adjoint}, real)`)}
}`;
}

/**
 * Sobel edge loss (training.md §2.4), times `weight`: the criterion ('l1' or 'mse', reduction 'mean') between the
 * Sobel maps (Kx ⋆ pred, Ky ⋆ pred) and (Kx ⋆ target, Ky ⋆ target), per channel with zero padding 1 — PyTorch
 * `F.conv2d(x, K.expand(C,1,3,3), padding=1, groups=C)` — averaged over both maps stacked (2·N·C·H·W values).
 */
export function sobelGradientLoss(graph: Graph, pred: TensorValue, target: TensorValue, options: SobelGradientOptions): LossResult {
  return edgeLoss(graph, pred, target, options, FILTERS.sobel);
}

/**
 * Second-order gradient loss (training.md §2.4), times `weight`: the criterion between the Laplacians
 * [[0,1,0],[1,−4,1],[0,1,0]] of pred and target, per channel with zero padding 1 (`F.conv2d(x, L.expand(C,1,3,3),
 * padding=1, groups=C)`), averaged over N·C·H·W values.
 */
export function laplacianLoss(graph: Graph, pred: TensorValue, target: TensorValue, options: SobelGradientOptions): LossResult {
  return edgeLoss(graph, pred, target, options, FILTERS.laplacian);
}

/**
 * Pass 1 computes the filter maps of pred − target (the maps are linear), the loss partials and the criterion's
 * derivatives; pass 2 correlates those back with the adjoint; a last pass sums the partials.
 */
function edgeLoss(graph: Graph, pred: TensorValue, target: TensorValue, options: SobelGradientOptions, filter: EdgeFilter): LossResult {
  const { label, criterion } = options;
  if (criterion !== 'l1' && criterion !== 'mse') {
    throw new InvalidInputError(`${label}: unknown ${filter.title} criterion '${String(criterion)}' (expected l1, mse)`);
  }
  checkLossShapes(pred, target, `target '${target.label}'`, label);
  const weight = lossWeight(options);
  const maps = filter.maps.length;
  const scale = weight / (maps * logicalElements(pred.shape));
  const [, h, w] = pred.shape;
  const us = filter.maps.map((_, k) => graph.tensor(pred.shape, `${label} d/dmap${k}`));
  const geometry = { width: { type: 'u32' as const, value: w }, height: { type: 'u32' as const, value: h } };
  const loss = reduceRows(graph, {
    rows: tensorElements(pred.shape) / 4,
    groups: 1,
    body: {
      tag: filter.name,
      key: { loss: filter.name },
      bindings: {
        pred: { binding: pred, mode: 'read' },
        truth: { binding: target, mode: 'read' },
        ...Object.fromEntries(us.map((u, k) => [`u${k}`, { binding: u, mode: 'read_write' as const }])),
      },
      params: {
        ...realLaneParams(pred.shape),
        ...geometry,
        scale: { type: 'f32', value: scale },
        l1: { type: 'u32', value: criterion === 'l1' ? 1 : 0 },
      },
      helpers: (io) => neighbourWgsl('err', (j) => `${io.load('pred', j)} - ${io.load('truth', j)}`),
      statements: (io) => `${PIXEL_WGSL}
      ${neighboursWgsl('err', filter.centre)}
      let real = ${REAL_LANES_WGSL};
      ${filter.maps
        .map(
          (map, k) => `let g${k} = ${map('err')};
      let f${k} = select(vec4<f32>(0.0), ${penalty(`g${k}`)}, real);
      ${io.store(`u${k}`, 'i', `select(vec4<f32>(0.0), ${derivative(`g${k}`)} * p.scale, real)`)}`,
        )
        .join('\n      ')}
      term = vec4<f32>(${filter.maps.map((_, k) => laneSum(`f${k}`)).join(', ')}${', 0.0'.repeat(4 - maps)});`,
      // Per element and map: the taps of pred − target (each a subtract and a multiply-add), penalty and derivative.
      cost: { flops: maps * (2 * filter.taps + 4) * logicalElements(pred.shape), bytes: (2 + maps) * logicalBytes(pred.shape) },
    },
    finish: { kind: 'collapse', coefficients: [scale, maps > 1 ? scale : 0, 0, 0] },
    label,
  })!;
  const grad = graph.tensor(pred.shape, `${label} grad`);
  const count = tensorElements(pred.shape) / 4;
  graph.add({
    label: `${label} grad`,
    kernel: kernelShader(`${filter.name}_grad`, { family: `${filter.name}_grad` }, (io) => edgeGradWgsl(filter, io)),
    uniforms: { count, c4: paddedChannels(pred.shape[3]) / 4, c_real: pred.shape[3], width: w, height: h },
    bindings: { ...Object.fromEntries(us.map((u, k) => [`u${k}`, u])), grad },
    workgroups: Math.ceil(count / WORKGROUP),
    // Per element: the adjoint's taps for each map, each a multiply-add.
    cost: { flops: 2 * maps * filter.taps * logicalElements(pred.shape), bytes: (1 + maps) * logicalBytes(pred.shape) },
  });
  return { loss, grad };
}
