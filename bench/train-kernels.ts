/**
 * The backward kernels against their forward (bench/train.ts, part 2), per operation at a training batch, each
 * pass a small graph as the trainer builds it per layer:
 * - Conv2d (conv2d-training.ts): the forward (weight packed from PyTorch's layout on the GPU, then the
 *   convolution), the input gradient (conv2dInputGrad: the forward kernel on gy with the flipped weight, or the
 *   transposed-convolution kernel for a strided conv) and the weight gradient (conv2dWeightGrad: split-K partials
 *   and their reduction), with the bias gradient (a channel sum) apart. All three do the same multiply-adds, so
 *   their GFLOP/s compare directly.
 * - SCUNet's window attention (swin-training.ts): the forward kernel, and the backward (dqkv, and the
 *   relative-position bias table's gradient as a split reduction). The backward does more work than the forward;
 *   each pass's GFLOP/s is over its own counted FLOPs (the nodes' costs), and the time ratio is given too.
 *
 * With timestamp queries each dispatch is timed on its own (Plan.profile), so the packing and the bias gradient
 * are reported apart from the operation they serve; without, the whole graph's wall time (upload, every
 * dispatch, readback) stands for the operation and says so.
 */
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { Graph, type GraphNode } from '../src/gpu/graph';
import { Plan } from '../src/gpu/plan';
import type { DispatchProfile } from '../src/gpu/profile';
import { paddedChannels, type Shape4, tensorElements } from '../src/gpu/tensor';
import { channelSumGrad } from '../src/kernels/conv-backward-split-k';
import { conv2d } from '../src/kernels/conv2d';
import { conv2dInputGrad, conv2dInputGradPath, conv2dWeightGrad } from '../src/kernels/conv2d-backward';
import { type Conv2dGeometry, conv2dOutputShape } from '../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../src/kernels/conv2d-variants';
import { WINDOW_ATTENTION_HEAD_DIM, windowAttention } from '../src/kernels/window-attention';
import { windowAttentionBackward } from '../src/kernels/window-attention-backward';
import { selectWindowAttentionVariant } from '../src/kernels/window-attention-variants';
import { packConv2dWeightOnGpu } from '../src/kernels/weight-pack-gpu';
import { median, type Summary, summarize } from './stats';

export interface ConvKernelCase {
  op: 'conv';
  name: string;
  geometry: Conv2dGeometry;
  /** Square input side. */
  size: number;
  /** Why a pass is absent from training for this layer (a network's first conv needs no input gradient). */
  note?: Partial<Record<KernelPass, string>>;
}

export interface AttentionKernelCase {
  op: 'attention';
  name: string;
  heads: number;
  shifted: boolean;
  /** Square feature-map side (a multiple of the 8×8 window). */
  size: number;
}

export type KernelCase = ConvKernelCase | AttentionKernelCase;

const conv = (cin: number, cout: number, k: number, stride: number, pad: number): Conv2dGeometry => ({
  inChannels: cin,
  outChannels: cout,
  kernelSize: [k, k],
  stride,
  padding: [pad, pad],
  dilation: 1,
});

/** The shapes of the kernel table, at the kernel batch (settings.kernelBatch). */
export const KERNEL_CASES: KernelCase[] = [
  { op: 'conv', name: 'conv 64→64 3×3 (DnCNN body), 64²', geometry: conv(64, 64, 3, 1, 1), size: 64 },
  { op: 'conv', name: 'conv 64→64 3×3, 128²', geometry: conv(64, 64, 3, 1, 1), size: 128 },
  {
    op: 'conv',
    name: 'conv 1→64 3×3 (DnCNN first), 64²',
    geometry: conv(1, 64, 3, 1, 1),
    size: 64,
    note: { 'input grad': 'not run in training: the image needs no gradient' },
  },
  { op: 'conv', name: 'conv 64→128 4×4 s2 p1 (PatchGAN), 64²', geometry: conv(64, 128, 4, 2, 1), size: 64 },
  { op: 'conv', name: 'conv 64→64 1×1 (SCUNet conv1_1), 64²', geometry: conv(64, 64, 1, 1, 0), size: 64 },
  { op: 'attention', name: 'W-MSA 2 heads (64 ch, SCUNet level 2), 32²', heads: 2, shifted: false, size: 32 },
  { op: 'attention', name: 'SW-MSA 2 heads (64 ch, SCUNet level 2), 32²', heads: 2, shifted: true, size: 32 },
];

export type KernelPass = 'forward' | 'input grad' | 'weight grad' | 'backward';

export function kernelPasses(c: KernelCase): KernelPass[] {
  return c.op === 'conv' ? ['forward', 'input grad', 'weight grad'] : ['forward', 'backward'];
}

/** What a dispatch is in a pass: the operation's own work, the weight packing, or the bias gradient. */
type Part = 'op' | 'pack' | 'bias grad';

export interface KernelPassResult {
  case: string;
  op: KernelCase['op'];
  pass: KernelPass;
  /** Input batch [n, h, w, C] (NHWC; for attention the qkv tensor). */
  inputShape: Shape4;
  status: 'ok' | 'failed';
  reason?: string;
  note?: string;
  /** Shader variants of the operation's own dispatches. */
  kernels?: string[];
  /**
   * FLOPs of the pass: for a convolution 2·N·Ho·Wo·Cin·Cout·kH·kW, the same for all three passes; for attention
   * the counted costs of the pass's own dispatches (src/gpu/cost.ts).
   */
  flops: number;
  timing?: 'gpu-timestamps' | 'wall';
  /** The whole graph per run: the sum of its dispatches' GPU times (timestamps), else wall time with upload and readback. */
  graphMs?: Summary;
  /** Median per part over the profiled runs (timestamps only). */
  partMs?: Partial<Record<Part, number>>;
  /** The operation's own time: its dispatches' profiled time, or (no timestamps) the graph's. */
  opMs?: number;
  gflopPerSecond?: number;
  /** How the input gradient runs (conv2dInputGradPath): the forward conv2d kernel, the transposed one, or a gather. */
  path?: string;
}

function pattern(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (((i * 7919) % 257) / 257 - 0.5) * scale;
  return a;
}

/** The pattern as an NHWC activation, its padded channels 0 as every kernel keeps them. */
function activation(shape: Shape4, scale: number): Float32Array {
  const a = pattern(tensorElements(shape), scale);
  const stride = paddedChannels(shape[3]);
  for (let i = 0; i < a.length; i++) if (i % stride >= shape[3]) a[i] = 0;
  return a;
}

const BIAS_LABEL = 'db';

function partOf(node: GraphNode): Part {
  if (node.kernel.label.startsWith('weightPack')) return 'pack';
  if (node.label.startsWith(BIAS_LABEL)) return 'bias grad';
  return 'op';
}

interface BuiltPass {
  graph: Graph;
  inputs: Float32Array[];
}

/** Buffers a pass binds beside its graph tensors (weights, bias tables), destroyed after it. */
type Storage = (data: Float32Array, what: string) => GPUBuffer;

function buildConvPass(ctx: GPUContext, c: ConvKernelCase, pass: KernelPass, xShape: Shape4, storage: Storage): BuiltPass {
  const g = c.geometry;
  const graph = new Graph();
  const yShape = conv2dOutputShape(xShape, g);
  const [kh, kw] = g.kernelSize;
  // PyTorch's layout, flat f32 padded to whole vec4s, as an arena range holds them.
  const numel = g.outChannels * g.inChannels * kh * kw;
  const weight = storage(pattern(Math.ceil(numel / 4) * 4, 2 / Math.sqrt(g.inChannels * kh * kw)), `${c.name} weight`);
  const bias = storage(pattern(paddedChannels(g.outChannels), 0.1), `${c.name} bias`);
  const bindingLimits = { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment };
  if (pass === 'forward') {
    const x = graph.input(xShape, 'x');
    const packed = packConv2dWeightOnGpu(graph, weight, g, 'forward pack');
    const variant = selectConv2dVariant(ctx, g, yShape[2]);
    graph.output(conv2d(graph, x, { weight: packed, bias, geometry: g, variant, label: 'forward', bindingLimits }));
    return { graph, inputs: [activation(xShape, 1)] };
  }
  const gy = graph.input(yShape, 'gy');
  if (pass === 'input grad') {
    graph.output(conv2dInputGrad(graph, ctx, gy, weight, g, xShape, 'input grad'));
    return { graph, inputs: [activation(yShape, 0.01)] };
  }
  const x = graph.input(xShape, 'x');
  const dWeight = graph.tensor([1, 1, 1, numel], 'dW');
  conv2dWeightGrad(graph, x, gy, g, dWeight, 'weight grad');
  const dBias = graph.tensor([1, 1, 1, g.outChannels], 'db');
  channelSumGrad(graph, gy, dBias, BIAS_LABEL);
  graph.output(dWeight);
  graph.output(dBias);
  return { graph, inputs: [activation(yShape, 0.01), activation(xShape, 1)] };
}

function buildAttentionPass(ctx: GPUContext, c: AttentionKernelCase, pass: KernelPass, qkvShape: Shape4, storage: Storage): BuiltPass {
  const graph = new Graph();
  const tableValues = c.heads * 15 * 15;
  const bias = storage(pattern(Math.ceil(tableValues / 4) * 4, 0.5), `${c.name} bias table`);
  const qkv = graph.input(qkvShape, 'qkv');
  const common = { bias, heads: c.heads, shifted: c.shifted };
  if (pass === 'forward') {
    graph.output(windowAttention(graph, qkv, { ...common, variant: selectWindowAttentionVariant(ctx), label: 'forward' }));
    return { graph, inputs: [activation(qkvShape, 1)] };
  }
  const [n, h, w] = qkvShape;
  const gyShape: Shape4 = [n, h, w, c.heads * WINDOW_ATTENTION_HEAD_DIM];
  const gy = graph.input(gyShape, 'gy');
  const dBias = graph.tensor([1, 1, 1, Math.ceil(tableValues / 4) * 4], 'dbias table');
  graph.output(windowAttentionBackward(graph, qkv, gy, { ...common, dBias, label: 'backward' }));
  graph.output(dBias);
  return { graph, inputs: [activation(qkvShape, 1), activation(gyShape, 0.01)] };
}

/** Times one pass of one case at batch `n`: `warmup` untimed runs, then `runs` profiled (or, without timestamps, wall-timed) ones. */
export async function runKernelPass(
  ctx: GPUContext,
  c: KernelCase,
  pass: KernelPass,
  n: number,
  runs: number,
  warmup: number,
): Promise<KernelPassResult> {
  const inputShape: Shape4 =
    c.op === 'conv' ? [n, c.size, c.size, c.geometry.inChannels] : [n, c.size, c.size, 3 * c.heads * WINDOW_ATTENTION_HEAD_DIM];
  const note = c.op === 'conv' ? c.note?.[pass] : undefined;
  const base: KernelPassResult = { case: c.name, op: c.op, pass, inputShape, status: 'ok', flops: 0, ...(note ? { note } : {}) };
  if (c.op === 'conv') {
    const g = c.geometry;
    const [, ho, wo] = conv2dOutputShape(inputShape, g);
    base.flops = 2 * n * ho * wo * g.inChannels * g.outChannels * g.kernelSize[0] * g.kernelSize[1];
    if (pass === 'input grad') base.path = conv2dInputGradPath(g);
  }
  const owned: GPUBuffer[] = [];
  const storage: Storage = (data, what) => {
    const b = ctx.createBufferWithData(data, BufferUsage.STORAGE, what);
    owned.push(b);
    return b;
  };
  let plan: Plan | undefined;
  try {
    const { graph, inputs } =
      c.op === 'conv' ? buildConvPass(ctx, c, pass, inputShape, storage) : buildAttentionPass(ctx, c, pass, inputShape, storage);
    const parts = graph.nodes.map(partOf);
    const own = graph.nodes.filter((_, i) => parts[i] === 'op');
    if (c.op === 'attention') base.flops = own.reduce((sum, node) => sum + (node.cost?.flops ?? 0), 0);
    const flops = base.flops;
    const kernels = [...new Set(own.map((node) => node.kernel.label))];
    plan = await Plan.compile(ctx, graph);
    for (let i = 0; i < warmup; i++) await plan.run(inputs);
    if (!ctx.hasTimestamps) {
      const wall: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        await plan.run(inputs);
        wall.push(performance.now() - t);
      }
      const graphMs = summarize(wall);
      return { ...base, kernels, timing: 'wall', graphMs, opMs: graphMs.median, gflopPerSecond: flops / graphMs.median / 1e6 };
    }
    const profiles: DispatchProfile[][] = [];
    for (let i = 0; i < runs; i++) profiles.push(await plan.profile(inputs));
    const graphMs = summarize(profiles.map((p) => p.reduce((sum, d) => sum + d.ms, 0)));
    const partMs: Partial<Record<Part, number>> = {};
    parts.forEach((part, i) => {
      partMs[part] = (partMs[part] ?? 0) + median(profiles.map((p) => p[i].ms));
    });
    const opMs = partMs.op ?? 0;
    return { ...base, kernels, timing: 'gpu-timestamps', graphMs, partMs, opMs, gflopPerSecond: flops / opMs / 1e6 };
  } catch (e) {
    if (ctx.isLost) throw e;
    return { ...base, status: 'failed', reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    plan?.dispose();
    for (const b of owned) b.destroy();
    ctx.buffers.trim();
  }
}

/** Backward GFLOP/s over the forward's on the same case and adapter; the goal is ≥ 0.7. */
export const BACKWARD_GOAL = 0.7;

function forwardOf(results: readonly KernelPassResult[], r: KernelPassResult): KernelPassResult | undefined {
  if (r.pass === 'forward' || r.status !== 'ok') return undefined;
  return results.find((f) => f.case === r.case && f.pass === 'forward' && f.status === 'ok');
}

export function ratioToForward(results: readonly KernelPassResult[], r: KernelPassResult): number | undefined {
  const fwd = forwardOf(results, r);
  return fwd?.gflopPerSecond && r.gflopPerSecond ? r.gflopPerSecond / fwd.gflopPerSecond : undefined;
}

/** The pass's own time over the forward's (for attention, whose backward does more FLOPs than its forward). */
export function timeToForward(results: readonly KernelPassResult[], r: KernelPassResult): number | undefined {
  const fwd = forwardOf(results, r);
  return fwd?.opMs && r.opMs ? r.opMs / fwd.opMs : undefined;
}
