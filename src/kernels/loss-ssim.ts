import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { kernelShader } from './kernel-source';
import { checkLossShapes, type LossOptions, type LossResult, lossWeight } from './loss-common';
import {
  SSIM_WORKGROUP,
  ssimColumnsAdjointWgsl,
  ssimGradientWgsl,
  ssimMapStatements,
  ssimStatsWgsl,
  ssimWindowWgsl,
  STAT_COUNT,
  TERM_COUNT,
} from './loss-ssim.wgsl';
import { realLaneParams, reduceRows } from './reduce';

/**
 * The SSIM loss `L = weight·(1 − SSIM(pred, target))` with pytorch-msssim's `ssim(X, Y, data_range=R,
 * size_average=True)` semantics (training.md §2.3): an 11-tap Gaussian (σ 1.5) applied separably with no padding
 * (only the (H − 10) × (W − 10) positions whose whole window lies inside the image count), population
 * (co)variances E[xy] − μxμy, C1 = (0.01R)², C2 = (0.03R)², SSIM the mean of the map over N, C and positions, and
 * nothing clamped. Unlike pytorch-msssim, an image smaller than the window is an error, not a warning that skips
 * filtering along that axis.
 *
 * Dispatches (all gathers in a fixed order, so two runs give the same bits):
 * (a) horizontal window sums of x, y, x², y², xy for every row and valid column;
 * (b) the vertical sums, the SSIM map, the three per-position derivatives of L, and the sum of 1 − S (one or two
 *     passes of reduce.ts);
 * (c) the adjoint of the filter (a full correlation: vertical, then horizontal) and the chain rule to ∂L/∂pred.
 *
 * Precision: like PyTorch, variances are E[x²] − μ², which in f32 loses digits when the data's magnitude is large
 * against its local spread (data range 255); for [0, 1] data this is far below the loss's own f32 rounding.
 */

export interface SsimLossOptions extends LossOptions {
  /** The data range R of C1 = (0.01R)², C2 = (0.03R)² (default 1; pytorch-msssim's default is 255). */
  dataRange?: number;
  /** Taps of the Gaussian window, odd (default 11). */
  windowSize?: number;
  /** The Gaussian's σ (default 1.5). */
  sigma?: number;
}

const K1 = 0.01;
const K2 = 0.03;

/**
 * pytorch-msssim's `_fspecial_gauss_1d(size, sigma)`: taps exp(−(i − size//2)² / 2σ²), normalised to sum 1 (the
 * window of io/ssim.ts's `gaussianWeights`, which kernels may not import, sized by taps instead of truncation).
 */
export function ssimLossWindow(windowSize: number, sigma: number): number[] {
  const radius = (windowSize - 1) / 2;
  const taps = Array.from({ length: windowSize }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const sum = taps.reduce((a, b) => a + b, 0);
  return taps.map((v) => v / sum);
}

function checkOptions(options: SsimLossOptions): { dataRange: number; windowSize: number; sigma: number } {
  const { label } = options;
  const dataRange = options.dataRange ?? 1;
  const windowSize = options.windowSize ?? 11;
  const sigma = options.sigma ?? 1.5;
  if (!(dataRange > 0 && Number.isFinite(dataRange))) {
    throw new InvalidInputError(`${label}: dataRange must be a positive finite number, got ${dataRange}`);
  }
  if (!Number.isInteger(windowSize) || windowSize < 1 || windowSize % 2 !== 1) {
    throw new InvalidInputError(`${label}: windowSize must be an odd positive integer, got ${windowSize}`);
  }
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new InvalidInputError(`${label}: sigma must be a positive finite number, got ${sigma}`);
  return { dataRange, windowSize, sigma };
}

/**
 * `weight·(1 − SSIM(pred, target))` and its gradient with respect to pred (same shape, padded channels 0); the
 * target gets no gradient. Both images are NHWC [N, H, W, C] with H, W ≥ windowSize.
 *
 * @throws InvalidInputError when the shapes differ, an image is smaller than the window, or an option is out of range.
 */
export function ssimLoss(graph: Graph, pred: TensorValue, target: TensorValue, options: SsimLossOptions): LossResult {
  const { label } = options;
  checkLossShapes(pred, target, `target '${target.label}'`, label);
  const weight = lossWeight(options);
  const { dataRange, windowSize: k, sigma } = checkOptions(options);
  const [n, h, w, c] = pred.shape;
  if (h < k || w < k) {
    throw new InvalidInputError(
      `${label}: pred '${pred.label}' ${formatShape(pred.shape)} is ${h}×${w} pixels, smaller than the ${k}×${k} SSIM window (valid filtering needs H, W ≥ ${k})`,
    );
  }
  const weights = ssimLossWindow(k, sigma);
  const oh = h - k + 1;
  const ow = w - k + 1;
  const cp = paddedChannels(c);
  const c4 = cp / 4;
  const positions = n * c * oh * ow;
  const key = { weights };

  // (a) Horizontal window sums.
  const stats = graph.tensor([n, h, ow, STAT_COUNT * cp], `${label} window sums`);
  const statsItems = n * h * ow * c4;
  const rowShape: Shape4 = [n, h, ow, c];
  graph.add({
    label: `${label} window sums`,
    kernel: kernelShader(`ssim_loss_stats[k${k}]`, { family: 'ssim_loss_stats', ...key }, (io) => ssimStatsWgsl(weights, io)),
    uniforms: { count: statsItems, w, ow, c4 },
    bindings: { pred, truth: target, stats },
    workgroups: Math.ceil(statsItems / SSIM_WORKGROUP),
    // Per tap: three products and five multiply-adds; both images read once, five sums written.
    cost: { flops: 13 * k * logicalElements(rowShape), bytes: 2 * logicalBytes(pred.shape) + STAT_COUNT * logicalBytes(rowShape) },
  });

  // (b) The SSIM map, its derivatives, and Σ(1 − S) scaled to weight·(1 − mean S).
  const mapShape: Shape4 = [n, oh, ow, c];
  const terms = graph.tensor([n, oh, ow, TERM_COUNT * cp], `${label} derivatives`);
  const scale = weight / positions;
  const loss = reduceRows(graph, {
    rows: n * oh * ow * c4,
    groups: 1,
    body: {
      tag: 'ssim_loss_map',
      key: { family: 'ssim_loss_map', ...key },
      bindings: { stats: { binding: stats, mode: 'read' }, terms: { binding: terms, mode: 'read_write' } },
      params: {
        ...realLaneParams(pred.shape),
        h: { type: 'u32', value: h },
        oh: { type: 'u32', value: oh },
        ow: { type: 'u32', value: ow },
        c1: { type: 'f32', value: (K1 * dataRange) ** 2 },
        c2: { type: 'f32', value: (K2 * dataRange) ** 2 },
        coef: { type: 'f32', value: -scale },
      },
      helpers: () => ssimWindowWgsl(weights),
      statements: (io) => ssimMapStatements(weights, io),
      // Per tap five multiply-adds; then S and its derivatives (about 40 operations). Sums read, terms written.
      cost: {
        flops: (10 * k + 40) * logicalElements(mapShape),
        bytes: STAT_COUNT * logicalBytes([n, h, ow, c]) + TERM_COUNT * logicalBytes(mapShape),
      },
    },
    finish: { kind: 'collapse', coefficients: [scale, scale, scale, scale] },
    label,
  })!;

  // (c) The adjoint of the separable filter, vertical then horizontal, and the chain rule.
  const cols = graph.tensor([n, h, ow, TERM_COUNT * cp], `${label} column adjoint`);
  const colItems = n * h * ow * c4;
  graph.add({
    label: `${label} column adjoint`,
    kernel: kernelShader(`ssim_loss_cols[k${k}]`, { family: 'ssim_loss_cols', ...key }, (io) => ssimColumnsAdjointWgsl(weights, io)),
    uniforms: { count: colItems, h, oh, ow, c4 },
    bindings: { terms, cols },
    workgroups: Math.ceil(colItems / SSIM_WORKGROUP),
    // Three multiply-adds per tap that lands inside the map.
    cost: { flops: 6 * k * logicalElements(mapShape), bytes: TERM_COUNT * (logicalBytes(mapShape) + logicalBytes(rowShape)) },
  });
  const grad = graph.tensor(pred.shape, `${label} grad`);
  const gradItems = n * h * w * c4;
  graph.add({
    label: `${label} grad`,
    kernel: kernelShader(`ssim_loss_grad[k${k}]`, { family: 'ssim_loss_grad', ...key }, (io) => ssimGradientWgsl(weights, io)),
    uniforms: { count: gradItems, w, ow, c4, c_real: c },
    bindings: { cols, pred, truth: target, grad },
    workgroups: Math.ceil(gradItems / SSIM_WORKGROUP),
    // Three multiply-adds per tap, then two multiply-adds and a multiply per element; both images read.
    cost: {
      flops: 6 * k * logicalElements(rowShape) + 5 * logicalElements(pred.shape),
      bytes: TERM_COUNT * logicalBytes(rowShape) + 3 * logicalBytes(pred.shape),
    },
  });
  return { loss, grad };
}
