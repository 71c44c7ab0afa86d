/**
 * The convolution's backward kernels against its forward one (bench/train.ts, part 2): for one Conv2d 3×3 layer
 * (stride 1, padding 1, bias) at a training batch, three small graphs as the trainer builds them per layer
 * (conv2d-training.ts): the forward (weight packed from PyTorch's layout on the GPU, then the convolution), the
 * input gradient (conv2dInputGrad: the flipped weight packed, then the forward kernel on gy) and the weight
 * gradient (conv2dWeightGrad: split-K partials and their reduction), with the bias gradient (a channel sum) as a
 * graph part of its own. All three do the same multiply-adds, so their GFLOP/s compare directly.
 *
 * With timestamp queries each dispatch is timed on its own (Plan.profile), so the packing and the bias gradient
 * are reported apart from the convolution they serve; without, the whole graph's wall time (upload, every
 * dispatch, readback) stands for the convolution and says so.
 */
import type { GPUContext } from '../src/gpu/context';
import { BufferUsage } from '../src/gpu/flags';
import { Graph, type GraphNode } from '../src/gpu/graph';
import { Plan } from '../src/gpu/plan';
import type { DispatchProfile } from '../src/gpu/profile';
import { paddedChannels, type Shape4, tensorElements } from '../src/gpu/tensor';
import { channelSumGrad } from '../src/kernels/conv-backward-split-k';
import { conv2d } from '../src/kernels/conv2d';
import { conv2dInputGrad, conv2dWeightGrad } from '../src/kernels/conv2d-backward';
import type { Conv2dGeometry } from '../src/kernels/conv2d-geometry';
import { selectConv2dVariant } from '../src/kernels/conv2d-variants';
import { packConv2dWeightOnGpu } from '../src/kernels/weight-pack-gpu';
import { median, type Summary, summarize } from './stats';

export interface ConvLayer {
  name: string;
  inChannels: number;
  outChannels: number;
  /** Why a pass is absent from training for this layer (DnCNN's first conv needs no input gradient). */
  note?: Partial<Record<ConvPass, string>>;
}

export const CONV_LAYERS: ConvLayer[] = [
  { name: 'DnCNN body conv 64→64 3×3', inChannels: 64, outChannels: 64 },
  {
    name: 'DnCNN first conv 1→64 3×3',
    inChannels: 1,
    outChannels: 64,
    note: { 'input grad': 'not run in training: the image needs no gradient' },
  },
];

export type ConvPass = 'forward' | 'input grad' | 'weight grad';
export const CONV_PASSES: ConvPass[] = ['forward', 'input grad', 'weight grad'];

/** What a dispatch is in a pass: the convolution's own work, the weight packing, or the bias gradient. */
type Part = 'conv' | 'pack' | 'bias grad';

export interface ConvPassResult {
  layer: string;
  pass: ConvPass;
  /** Input batch [n, h, w, Cin] (NHWC). */
  inputShape: Shape4;
  status: 'ok' | 'failed';
  reason?: string;
  note?: string;
  /** Shader variants of the convolution's own dispatches. */
  kernels?: string[];
  /** 2 · N·H·W · Cin·Cout · 9: the same for all three passes. */
  flops: number;
  timing?: 'gpu-timestamps' | 'wall';
  /** The whole graph per run: the sum of its dispatches' GPU times (timestamps), else wall time with upload and readback. */
  graphMs?: Summary;
  /** Median per part over the profiled runs (timestamps only). */
  partMs?: Partial<Record<Part, number>>;
  /** The convolution's own time: its dispatches' profiled time, or (no timestamps) the graph's. */
  convMs?: number;
  gflopPerSecond?: number;
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

function partOf(node: GraphNode, biasLabel: string): Part {
  if (node.kernel.label.startsWith('weightPack')) return 'pack';
  if (node.label.startsWith(biasLabel)) return 'bias grad';
  return 'conv';
}

interface BuiltPass {
  graph: Graph;
  inputs: Float32Array[];
}

const BIAS_LABEL = 'db';

function buildPass(ctx: GPUContext, pass: ConvPass, g: Conv2dGeometry, xShape: Shape4, weight: GPUBuffer, bias: GPUBuffer): BuiltPass {
  const graph = new Graph();
  const [n, h, w] = xShape;
  const yShape: Shape4 = [n, h, w, g.outChannels];
  const bindingLimits = { maxBytes: ctx.storageBindingLimit, align: ctx.limits.minStorageBufferOffsetAlignment };
  if (pass === 'forward') {
    const x = graph.input(xShape, 'x');
    const packed = packConv2dWeightOnGpu(graph, weight, g, 'forward pack');
    const variant = selectConv2dVariant(ctx, g, w);
    graph.output(conv2d(graph, x, { weight: packed, bias, geometry: g, variant, label: 'forward', bindingLimits }));
    return { graph, inputs: [activation(xShape, 1)] };
  }
  const gy = graph.input(yShape, 'gy');
  if (pass === 'input grad') {
    graph.output(conv2dInputGrad(graph, ctx, gy, weight, g, xShape, 'input grad'));
    return { graph, inputs: [activation(yShape, 0.01)] };
  }
  const x = graph.input(xShape, 'x');
  const dWeight = graph.tensor([1, 1, 1, g.outChannels * g.inChannels * 9], 'dW');
  conv2dWeightGrad(graph, x, gy, g, dWeight, 'weight grad');
  const dBias = graph.tensor([1, 1, 1, g.outChannels], 'db');
  channelSumGrad(graph, gy, dBias, BIAS_LABEL);
  graph.output(dWeight);
  graph.output(dBias);
  return { graph, inputs: [activation(yShape, 0.01), activation(xShape, 1)] };
}

/** Times one pass of one layer at batch `n` × size²: `warmup` untimed runs, then `runs` profiled (or, without timestamps, wall-timed) ones. */
export async function runConvPass(
  ctx: GPUContext,
  layer: ConvLayer,
  pass: ConvPass,
  n: number,
  size: number,
  runs: number,
  warmup: number,
): Promise<ConvPassResult> {
  const g: Conv2dGeometry = {
    inChannels: layer.inChannels,
    outChannels: layer.outChannels,
    kernelSize: [3, 3],
    stride: 1,
    padding: [1, 1],
    dilation: 1,
  };
  const inputShape: Shape4 = [n, size, size, layer.inChannels];
  const flops = 2 * n * size * size * layer.inChannels * layer.outChannels * 9;
  const note = layer.note?.[pass];
  const base: ConvPassResult = { layer: layer.name, pass, inputShape, status: 'ok', flops, ...(note ? { note } : {}) };
  const storage = (data: Float32Array, what: string) => ctx.createBufferWithData(data, BufferUsage.STORAGE, what);
  // PyTorch's layout, flat f32 padded to whole vec4s, as an arena range holds them.
  const numel = layer.outChannels * layer.inChannels * 9;
  const weight = storage(pattern(Math.ceil(numel / 4) * 4, 2 / Math.sqrt(layer.inChannels * 9)), `${layer.name} weight`);
  const bias = storage(pattern(paddedChannels(layer.outChannels), 0.1), `${layer.name} bias`);
  let plan: Plan | undefined;
  try {
    const { graph, inputs } = buildPass(ctx, pass, g, inputShape, weight, bias);
    const parts = graph.nodes.map((node) => partOf(node, BIAS_LABEL));
    const kernels = [...new Set(graph.nodes.filter((_, i) => parts[i] === 'conv').map((node) => node.kernel.label))];
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
      return { ...base, kernels, timing: 'wall', graphMs, convMs: graphMs.median, gflopPerSecond: flops / graphMs.median / 1e6 };
    }
    const profiles: DispatchProfile[][] = [];
    for (let i = 0; i < runs; i++) profiles.push(await plan.profile(inputs));
    const graphMs = summarize(profiles.map((p) => p.reduce((sum, d) => sum + d.ms, 0)));
    const partMs: Partial<Record<Part, number>> = {};
    parts.forEach((part, i) => {
      partMs[part] = (partMs[part] ?? 0) + median(profiles.map((p) => p[i].ms));
    });
    const convMs = partMs.conv ?? 0;
    return { ...base, kernels, timing: 'gpu-timestamps', graphMs, partMs, convMs, gflopPerSecond: flops / convMs / 1e6 };
  } catch (e) {
    if (ctx.isLost) throw e;
    return { ...base, status: 'failed', reason: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  } finally {
    plan?.dispose();
    weight.destroy();
    bias.destroy();
    ctx.buffers.trim();
  }
}

/** Backward GFLOP/s over the forward's on the same layer and adapter; the goal is ≥ 0.7. */
export const BACKWARD_GOAL = 0.7;

export function ratioToForward(results: readonly ConvPassResult[], r: ConvPassResult): number | undefined {
  if (r.pass === 'forward' || r.status !== 'ok') return undefined;
  const fwd = results.find((f) => f.layer === r.layer && f.pass === 'forward' && f.status === 'ok');
  return fwd?.gflopPerSecond && r.gflopPerSecond ? r.gflopPerSecond / fwd.gflopPerSecond : undefined;
}
