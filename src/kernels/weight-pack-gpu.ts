import { InvalidInputError } from '../errors';
import { type Binding, bindingBytes, type Graph, type TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { checkConvTranspose2dGeometry, type ConvTranspose2dGeometry } from './conv-transpose2d-geometry';
import { checkConv2dGroups, type Conv2dGeometry, isDepthwiseConv2d } from './conv2d-geometry';
import { kernelShader } from './kernel-source';
import { linearEntry, range } from './wgsl-common';

/*
 * Weight packing on the GPU. During training the parameters live in PyTorch's layout (flat f32 in an arena,
 * parameter-arena.ts) and change every step, so the layouts the convolution kernels read (weight-layout.ts,
 * conv2d-geometry.ts) are rebuilt by a dispatch each step instead of on the CPU at upload. The same dispatch
 * also builds the flipped, in/out-swapped weights with which a convolution's input gradient runs on the forward
 * kernels (conv2d-backward.ts). Packing only moves f32 values, so the result is bitwise what the CPU packers give.
 */

/**
 * Where the value of packed element (target input channel `ci` within its group, target output channel `co`,
 * tap (ky, kx)) sits in the flat PyTorch tensor: `grp·group + ci·inStride + (co − grp·coutPerGroup)·outStride +
 * tap'`, with grp = co / coutPerGroup and tap' the tap itself or, flipped, (kH−1−ky, kW−1−kx). Every PyTorch
 * convolution layout keeps the kH·kW taps innermost, so the tap stride is 1.
 */
export interface WeightSourceStrides {
  group: number;
  inStride: number;
  outStride: number;
  flip: boolean;
}

/** The register-tiled kernels' tap-major layout (weight-layout.ts) of a convolution with these target channels. */
export interface TapMajorPack {
  layout: 'tapMajor';
  kernel: readonly [number, number];
  /** Target input channels per group (the packed ci range). */
  cin: number;
  /** Target output channels, all groups. */
  cout: number;
  groups: number;
  source: WeightSourceStrides;
  /** Elements the PyTorch tensor holds. */
  numel: number;
}

/** The depthwise kernel's layout: per channel vec4, kH·kW vec4s (one per tap); source W[c, 0, ky, kx]. */
export interface DepthwisePack {
  layout: 'depthwise';
  kernel: readonly [number, number];
  channels: number;
  flip: boolean;
}

export type GpuWeightPack = TapMajorPack | DepthwisePack;

const WORKGROUP = 64;

/** Throws an InvalidInputError naming `what` unless `b` holds at least `numel` f32 values. */
export function checkBindingHolds(b: Binding, numel: number, what: string): void {
  const bytes = bindingBytes(b);
  if (bytes < numel * 4) throw new InvalidInputError(`${what} spans ${bytes} bytes, fewer than the ${numel} f32 values it must hold`);
}

/** Packed length (f32 elements) of a layout. */
export function packedLength(pack: GpuWeightPack): number {
  const taps = pack.kernel[0] * pack.kernel[1];
  if (pack.layout === 'depthwise') return paddedChannels(pack.channels) * taps;
  return taps * paddedChannels(pack.cin) * paddedChannels(pack.cout);
}

function sourceNumel(pack: GpuWeightPack): number {
  return pack.layout === 'depthwise' ? pack.channels * pack.kernel[0] * pack.kernel[1] : pack.numel;
}

/**
 * One invocation per packed vec4. Tap-major: vec4 v = ((tap·cin4 + ci4)·cout4 + co4)·4 + ci%4 holds output
 * channels co4·4 … co4·4+3 of input channel ci. Depthwise: vec4 v = c4·taps + tap holds channels c4·4 … c4·4+3.
 * Channels past the real ones get 0.
 */
export function weightPackWgsl(layout: GpuWeightPack['layout'], io: TensorAccess = WHOLE_BINDINGS): string {
  const head = `struct Params {
  count: u32, kh: u32, kw: u32, flip: u32,
  cin: u32, cin4: u32, cout: u32, cout4: u32,
  coutg: u32, s_group: u32, s_in: u32, s_out: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
${io.declare('y', 2, 'read_write')}

${linearEntry(WORKGROUP)}`;
  const sourceTap = `  let ky = tap / p.kw;
  let kx = tap % p.kw;
  let stap = select(tap, (p.kh - 1u - ky) * p.kw + (p.kw - 1u - kx), p.flip != 0u);
  var v = vec4<f32>(0.0);`;
  if (layout === 'depthwise') {
    const lanes = range(4).map((j) => `  if (c0 + ${j}u < p.cout) { v[${j}] = w[(c0 + ${j}u) * p.kh * p.kw + stap]; }`);
    return `${head}
  let taps = p.kh * p.kw;
  let tap = i % taps;
  let c0 = (i / taps) * 4u;
${sourceTap}
${lanes.join('\n')}
  ${io.store('y', 'i', 'v')}
}`;
  }
  const lanes = range(4).map(
    (j) => `    {
      let co = co0 + ${j}u;
      if (co < p.cout) {
        let grp = co / p.coutg;
        v[${j}] = w[grp * p.s_group + ci * p.s_in + (co - grp * p.coutg) * p.s_out + stap];
      }
    }`,
  );
  return `${head}
  let cil = i % 4u;
  var r = i / 4u;
  let co0 = (r % p.cout4) * 4u;
  r = r / p.cout4;
  let ci = (r % p.cin4) * 4u + cil;
  let tap = r / p.cin4;
${sourceTap}
  if (ci < p.cin) {
${lanes.join('\n')}
  }
  ${io.store('y', 'i', 'v')}
}`;
}

/**
 * Adds one dispatch that packs the flat PyTorch tensor `weight` into a new graph tensor [1, 1, 1, packedLength]
 * in the layout `pack` describes.
 */
export function packWeightOnGpu(graph: Graph, weight: Binding, pack: GpuWeightPack, label: string): TensorValue {
  const [kh, kw] = pack.kernel;
  if (!(Number.isInteger(kh) && Number.isInteger(kw) && kh >= 1 && kw >= 1)) {
    throw new InvalidInputError(`${label}: kernel ${kh}x${kw} must be positive integers`);
  }
  const numel = sourceNumel(pack);
  checkBindingHolds(weight, numel, `${label}: weight`);
  const length = packedLength(pack);
  const y = graph.tensor([1, 1, 1, length], label);
  const count = length / 4;
  const tapMajor = pack.layout === 'tapMajor' ? pack : undefined;
  const uniforms = {
    count,
    kh,
    kw,
    flip: (tapMajor ? tapMajor.source.flip : (pack as DepthwisePack).flip) ? 1 : 0,
    cin: tapMajor?.cin ?? 0,
    cin4: tapMajor ? paddedChannels(tapMajor.cin) / 4 : 0,
    cout: tapMajor?.cout ?? (pack as DepthwisePack).channels,
    cout4: paddedChannels(tapMajor?.cout ?? (pack as DepthwisePack).channels) / 4,
    coutg: tapMajor ? tapMajor.cout / tapMajor.groups : 1,
    s_group: tapMajor?.source.group ?? 0,
    s_in: tapMajor?.source.inStride ?? 0,
    s_out: tapMajor?.source.outStride ?? 0,
  };
  graph.add({
    label,
    kernel: kernelShader(`weightPack[${pack.layout}]`, { family: 'weight_pack', layout: pack.layout }, (io) =>
      weightPackWgsl(pack.layout, io),
    ),
    uniforms,
    bindings: { w: weight, y },
    workgroups: Math.ceil(count / WORKGROUP),
    cost: { flops: 0, bytes: numel * 4 + length * 4 },
  });
  return y;
}

/** The pack a Conv2d's forward kernel reads (what `packConv2dWeight` builds on the CPU). */
export function conv2dWeightPack(g: Conv2dGeometry): GpuWeightPack {
  checkConv2dGroups(g);
  const kernel = g.kernelSize;
  const taps = kernel[0] * kernel[1];
  if (isDepthwiseConv2d(g)) return { layout: 'depthwise', kernel, channels: g.outChannels, flip: false };
  const groups = g.groups ?? 1;
  const cin = g.inChannels / groups;
  const coutg = g.outChannels / groups;
  // W[co, ci, ky, kx], co = grp·coutg + local.
  return {
    layout: 'tapMajor',
    kernel,
    cin,
    cout: g.outChannels,
    groups,
    source: { group: coutg * cin * taps, inStride: taps, outStride: cin * taps, flip: false },
    numel: g.outChannels * cin * taps,
  };
}

/**
 * The pack of the convolution that runs a Conv2d's input gradient: in = Cout, out = Cin, the same groups, weight
 * W̃[ci, co', ky, kx] = W[co, ci', kH−1−ky, kW−1−kx] when `flip` (PyTorch's conv2d input gradient at stride 1 is
 * conv2d(gy, W̃, padding d(K−1)−p)), or unflipped (the gather kernel of conv2d-backward.wgsl.ts reads it).
 */
export function conv2dTransposedWeightPack(g: Conv2dGeometry, flip: boolean): GpuWeightPack {
  checkConv2dGroups(g);
  const kernel = g.kernelSize;
  const taps = kernel[0] * kernel[1];
  if (isDepthwiseConv2d(g)) return { layout: 'depthwise', kernel, channels: g.outChannels, flip };
  const groups = g.groups ?? 1;
  const cing = g.inChannels / groups;
  const coutg = g.outChannels / groups;
  // Target (ci_t = co' within the group, co_t = grp·cing + ci') reads W[grp·coutg + co', ci', tap'].
  return {
    layout: 'tapMajor',
    kernel,
    cin: coutg,
    cout: g.inChannels,
    groups,
    source: { group: coutg * cing * taps, inStride: cing * taps, outStride: taps, flip },
    numel: g.outChannels * cing * taps,
  };
}

/** The pack the transposed-convolution kernels read (what `packConvTranspose2dWeight` builds): W[ci, co, ky, kx]. */
export function convTranspose2dWeightPack(g: ConvTranspose2dGeometry): GpuWeightPack {
  checkConvTranspose2dGeometry(g);
  const taps = g.kernelSize[0] * g.kernelSize[1];
  return {
    layout: 'tapMajor',
    kernel: g.kernelSize,
    cin: g.inChannels,
    cout: g.outChannels,
    groups: 1,
    source: { group: 0, inStride: g.outChannels * taps, outStride: taps, flip: false },
    numel: g.inChannels * g.outChannels * taps,
  };
}

/**
 * Packs a Conv2d weight [Cout, Cin/groups, kH, kW] (flat f32, e.g. an arena range) on the GPU into exactly what
 * `packConv2dWeight(weight, geometry)` builds: the tap-major layout, or the depthwise one. Shape [1, 1, 1, length].
 */
export function packConv2dWeightOnGpu(graph: Graph, weight: Binding, geometry: Conv2dGeometry, label: string): TensorValue {
  return packWeightOnGpu(graph, weight, conv2dWeightPack(geometry), label);
}

/** Packs a ConvTranspose2d weight [Cin, Cout, kH, kW] on the GPU into exactly what `packConvTranspose2dWeight` builds. */
export function packConvTranspose2dWeightOnGpu(
  graph: Graph,
  weight: Binding,
  geometry: ConvTranspose2dGeometry,
  label: string,
): TensorValue {
  return packWeightOnGpu(graph, weight, convTranspose2dWeightPack(geometry), label);
}
