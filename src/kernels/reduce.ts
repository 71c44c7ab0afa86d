import { InvalidInputError } from '../errors';
import type { DispatchCost } from '../gpu/cost';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { type Binding, type Graph, isTensorValue, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4, tensorElements } from '../gpu/tensor';
import { type TensorAccess, type TensorAccessMode } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry, range } from './wgsl-common';

/**
 * Deterministic parallel sums (WGSL has no float atomics, and a sum whose order depends on scheduling is not
 * bitwise reproducible). Every reduction here is a gather in a fixed order:
 *
 * - pass 1 splits the rows (pixels, or flat vec4 items) into chunks; one workgroup of 64 invocations per chunk
 *   (and per block of channel groups) sums its chunk: each invocation a fixed stride of rows, then a fixed tree in
 *   workgroup memory. It writes one partial row per chunk, a [1, 1, K, C] tensor;
 * - pass 2 sums those K rows the same way in a single workgroup (chunks are sized so that K is small enough).
 * A reduction small enough for one workgroup is a single pass. Chunk sizes depend on the shape alone, so the order
 * of every addition, and the bits of the result, are the same on every run and device.
 *
 * Each pass may run a `ReductionBody`: WGSL that turns an item into the vec4 to add, and may store on the way
 * (the losses write their gradient there, so one pass reads the inputs once for both). The final pass either
 * keeps channels (scaled) or collapses the four lanes of a one-group sum into one scalar with a coefficient each.
 */

const WORKGROUP = 64;
/** Rows each invocation sums in pass 1 at the least, so that a workgroup does enough work to pay for itself. */
const MIN_ROWS_PER_INVOCATION = 16;

/** How rows are split into chunks for a given number of channel groups per row. */
export interface Chunking {
  /** Channel groups (vec4) handled side by side in one workgroup: a power of two ≤ 64. */
  lanes: number;
  rowsPerChunk: number;
  chunks: number;
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * The chunks of pass 1 for `rows` rows of `groups` vec4 channel groups: a single chunk when one workgroup can sum
 * everything in at most `maxChunks / rowLanes` rows per invocation, else at most `maxChunks` chunks, so that the
 * second pass is always a single chunk of that size. Depends on the shape only (never on the device), so the
 * summation order, and so the bits of the result, are the same on every run.
 */
export function reductionChunking(rows: number, groups: number): Chunking {
  const lanes = Math.min(WORKGROUP, nextPowerOfTwo(groups));
  const rowLanes = WORKGROUP / lanes;
  const maxChunks = Math.max(256, rowLanes * 64);
  if (rows <= maxChunks) return { lanes, rowsPerChunk: rows, chunks: 1 };
  const perInvocation = Math.max(MIN_ROWS_PER_INVOCATION, Math.ceil(rows / (rowLanes * maxChunks)));
  const rowsPerChunk = perInvocation * rowLanes;
  return { lanes, rowsPerChunk, chunks: Math.ceil(rows / rowsPerChunk) };
}

/** One binding of a reduction body; tensors go through the plan's accessors, other bindings are plain arrays. */
export interface BodyBinding {
  binding: Binding;
  mode: TensorAccessMode;
}

/**
 * The per-item work of a reduction pass. The statements run once for every vec4 item `i` (u32) — row `row`, channel
 * group `grp` of `p.view_c4` — and must assign the vec4 to add to `term` (declared, 0). They may read `p.<param>`
 * for the body's own uniforms and store into read_write bindings (each item is visited exactly once).
 */
export interface ReductionBody {
  /** Shown in pipeline labels. */
  tag: string;
  /** Everything the generated text depends on besides the bindings' kinds (which are added to the key). */
  key: unknown;
  /** Bindings by WGSL name, numbered from 2 in this order. */
  bindings: Record<string, BodyBinding>;
  /** Extra uniform members and their values. */
  params?: Record<string, { type: 'u32' | 'f32'; value: number }>;
  /** Module-scope WGSL (helper functions), which may reach the bindings through the accessors. */
  helpers?: (io: TensorAccess) => string;
  statements(io: TensorAccess): string;
  /** What the body reads, writes and computes, for the first pass's cost. */
  cost: DispatchCost;
}

/** What the last pass writes. */
export type ReductionFinish =
  /** Per channel: lane values times `scale`, lanes ≥ `channels` written as 0. */
  | { kind: 'channels'; channels: number; scale: number }
  /** One group only: Σ lane·coefficient into lane 0 of a [1, 1, 1, 1] result, the other lanes 0. */
  | { kind: 'collapse'; coefficients: readonly [number, number, number, number] };

export interface ReduceRowsOptions {
  /** Rows (pixels, or vec4 items of a flat reduction) and vec4 channel groups per row. */
  rows: number;
  groups: number;
  body: ReductionBody;
  finish: ReductionFinish;
  /** Write the result here (a parameter's gradient) instead of into a new tensor; returns undefined then. */
  into?: Binding;
  label: string;
}

/**
 * The general reduction: sums the items of `body` over all rows, per channel group, in one or two passes
 * (see the top of this file), and finishes as `finish` says. Returns the result tensor ([1, 1, 1, C] for
 * 'channels', [1, 1, 1, 1] for 'collapse') unless `into` is given.
 */
export function reduceRows(graph: Graph, options: ReduceRowsOptions): TensorValue | undefined {
  const { rows, groups, body, finish, into, label } = options;
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(groups) || groups < 1) {
    throw new InvalidInputError(`${label}: cannot reduce ${rows} rows of ${groups} channel groups`);
  }
  if (finish.kind === 'collapse' && groups !== 1) {
    throw new InvalidInputError(`${label}: a collapsing reduction needs one channel group per row, got ${groups}`);
  }
  const chunking = reductionChunking(rows, groups);
  if (chunking.chunks === 1) return addPass(graph, { rows, groups, chunking, body, finish, into, label });
  const partials = addPass(graph, {
    rows,
    groups,
    chunking,
    body,
    finish: { kind: 'channels', channels: groups * 4, scale: 1 },
    label: `${label} (partials)`,
  })!;
  return addPass(graph, {
    rows: chunking.chunks,
    groups,
    chunking: reductionChunking(chunking.chunks, groups),
    body: loadBody(partials),
    finish,
    into,
    label,
  });
}

/** A body that adds the tensor's vec4 items as they are. */
function loadBody(t: TensorValue): ReductionBody {
  return {
    tag: 'sum',
    key: 'load',
    bindings: { src: { binding: t, mode: 'read' } },
    statements: (io) => `term = ${io.load('src', 'i')};`,
    cost: { flops: logicalElements(t.shape), bytes: logicalBytes(t.shape) },
  };
}

interface PassOptions {
  rows: number;
  groups: number;
  chunking: Chunking;
  body: ReductionBody;
  finish: ReductionFinish;
  into?: Binding;
  label: string;
}

const BASE_PARAMS = ['rows', 'view_c4', 'c', 'rows_per_chunk', 'chunks', 'blocks', 'collapse'];
const COEFFICIENTS = ['k0', 'k1', 'k2', 'k3'];

function addPass(graph: Graph, o: PassOptions): TensorValue | undefined {
  const { lanes, rowsPerChunk, chunks } = o.chunking;
  const blocks = Math.ceil(o.groups / lanes);
  const finalShape: Shape4 = o.finish.kind === 'collapse' ? [1, 1, chunks, 1] : [1, 1, chunks, o.finish.channels];
  if (o.into === undefined && o.finish.kind === 'channels' && paddedChannels(o.finish.channels) !== o.groups * 4) {
    throw new InvalidInputError(`${o.label}: ${o.finish.channels} channels do not fill ${o.groups} groups`);
  }
  const out = o.into ?? graph.tensor(finalShape, o.label);
  const bodyKinds = Object.fromEntries(Object.entries(o.body.bindings).map(([n, b]) => [n, `${b.mode}:${bindingKind(b.binding)}`]));
  const outKind = bindingKind(out);
  const coefficients = o.finish.kind === 'collapse' ? o.finish.coefficients : [o.finish.scale, 0, 0, 0];
  const params = o.body.params ?? {};
  const clash = Object.keys(params).filter((k) => BASE_PARAMS.includes(k) || COEFFICIENTS.includes(k));
  if (clash.length > 0) throw new InvalidInputError(`${o.label}: reduction body uniforms ${clash.join(', ')} are reserved`);
  const uniforms: Record<string, number> = {
    rows: o.rows,
    view_c4: o.groups,
    c: o.finish.kind === 'collapse' ? 1 : o.finish.channels,
    rows_per_chunk: rowsPerChunk,
    chunks,
    blocks,
    collapse: o.finish.kind === 'collapse' ? 1 : 0,
    ...Object.fromEntries(COEFFICIENTS.map((k, i) => [k, coefficients[i]])),
    ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.value])),
  };
  const bindings: Record<string, Binding> = { out };
  for (const [name, b] of Object.entries(o.body.bindings)) bindings[name] = b.binding;
  const outBytes = o.finish.kind === 'collapse' ? 4 * chunks : logicalBytes([1, 1, chunks, o.finish.channels]);
  graph.add({
    label: o.label,
    kernel: kernelShader(
      `reduce[${o.body.tag},l${lanes}]`,
      { family: 'reduce', variant: { lanes }, body: o.body.key, bodyKinds, outKind },
      (io) => reductionWgsl(io, lanes, o.body, outKind === 'tensor'),
    ),
    uniforms,
    bindings,
    workgroups: chunks * blocks,
    cost: { flops: o.body.cost.flops, bytes: o.body.cost.bytes + outBytes },
  });
  return o.into === undefined ? (out as TensorValue) : undefined;
}

function bindingKind(b: Binding): 'tensor' | 'buffer' {
  return isTensorValue(b) ? 'tensor' : 'buffer';
}

/** A binding's declaration: through the accessors for a tensor, a plain array otherwise (never split by the plan). */
function declareBinding(io: TensorAccess, name: string, index: number, mode: TensorAccessMode, tensor: boolean): string {
  return tensor ? io.declare(name, index, mode) : `@group(0) @binding(${index}) var<storage, ${mode}> ${name}: array<vec4<f32>>;`;
}

/** Accessors that reach the bindings in `plain` as plain arrays and the rest as the plan says, so a body treats both alike. */
function plainOrTensorAccess(io: TensorAccess, plain: ReadonlySet<string>): TensorAccess {
  return {
    declare: (name, binding, mode) => declareBinding(io, name, binding, mode, !plain.has(name)),
    load: (name, index) => (plain.has(name) ? `${name}[${index}]` : io.load(name, index)),
    store: (name, index, value) => (plain.has(name) ? `${name}[${index}] = ${value};` : io.store(name, index, value)),
  };
}

function reductionWgsl(io: TensorAccess, lanes: number, body: ReductionBody, outIsTensor: boolean): string {
  const rowLanes = WORKGROUP / lanes;
  const plain = new Set(
    Object.entries(body.bindings)
      .filter(([, b]) => !isTensorValue(b.binding))
      .map(([n]) => n),
  );
  if (!outIsTensor) plain.add('out');
  const access = plainOrTensorAccess(io, plain);
  const members = [
    ...BASE_PARAMS.map((m) => `${m}: u32`),
    ...COEFFICIENTS.map((m) => `${m}: f32`),
    ...Object.entries(body.params ?? {}).map(([k, v]) => `${k}: ${v.type}`),
  ];
  const declarations = Object.entries(body.bindings).map(([name, b], k) => access.declare(name, k + 2, b.mode));
  const tree = range(Math.log2(rowLanes))
    .map((k) => rowLanes >> (k + 1))
    .map(
      (stride) => `  if (row_lane < ${stride}u) { acc[lid] += acc[lid + ${stride * lanes}u]; }
  workgroupBarrier();`,
    )
    .join('\n');
  return `struct Params { ${members.join(', ')} }
@group(0) @binding(0) var<uniform> p: Params;
${access.declare('out', 1, 'read_write')}
${declarations.join('\n')}
var<workgroup> acc: array<vec4<f32>, ${WORKGROUP}>;
${body.helpers ? body.helpers(access) : ''}

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(${WORKGROUP_BUILTINS}, @builtin(local_invocation_index) lid: u32) {
  // Uniform per workgroup (workgroup_id, num_workgroups and uniforms only), so the barriers below stay legal.
  let wg = linear_workgroup_index(wid, nwg);
  if (wg >= p.chunks * p.blocks) { return; }
  let chunk = wg / p.blocks;
  let grp = (wg % p.blocks) * ${lanes}u + lid % ${lanes}u;
  let row_lane = lid / ${lanes}u;
  let first = chunk * p.rows_per_chunk;
  let end = min(first + p.rows_per_chunk, p.rows);
  var sum = vec4<f32>(0.0);
  if (grp < p.view_c4) {
    for (var row = first + row_lane; row < end; row += ${rowLanes}u) {
      let i = row * p.view_c4 + grp;
      var term = vec4<f32>(0.0);
      ${body.statements(access)}
      sum += term;
    }
  }
  acc[lid] = sum;
  workgroupBarrier();
${tree}
  if (row_lane == 0u && grp < p.view_c4) {
    let total = acc[lid];
    // The finish is a uniform, not a variant, so the partials pass and a one-pass reduction share a pipeline.
    let lane = grp * 4u + vec4<u32>(0u, 1u, 2u, 3u);
    var value = select(vec4<f32>(0.0), total * p.k0, lane < vec4<u32>(p.c));
    if (p.collapse != 0u) {
      value = vec4<f32>((total.x * p.k0 + total.y * p.k1) + (total.z * p.k2 + total.w * p.k3), 0.0, 0.0, 0.0);
    }
    ${access.store('out', 'chunk * p.view_c4 + grp', 'value')}
  }
}`;
}

/**
 * Sums the rows of a [1, 1, K, C] partials tensor (made by any kernel that splits a reduction into K chunks) in a
 * fixed order: [1, 1, 1, C], times `scale`. The last pass of a two-pass reduction another kernel began.
 */
export function reducePartials(graph: Graph, partials: TensorValue, label: string, options: { scale?: number } = {}): TensorValue {
  const scale = checkScale(options.scale, label);
  const [n, h, w, c] = partials.shape;
  return reduceRows(graph, {
    rows: n * h * w,
    groups: paddedChannels(c) / 4,
    body: loadBody(partials),
    finish: { kind: 'channels', channels: c, scale },
    label,
  })!;
}

/** Per-channel sums over N·H·W of `t`: [1, 1, 1, C], times `scale` (1/(N·H·W) gives the means). */
export function channelSums(graph: Graph, t: TensorValue, label: string, options: { scale?: number } = {}): TensorValue {
  return reducePartials(graph, t, label, options);
}

/** Lanes of item `i` that are real channels (not the NHWC padding), as a vec4<bool>; needs `p.c4` and `p.c_real`. */
export const REAL_LANES_WGSL = '(i % p.c4) * 4u + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.c_real)';

/** The uniforms REAL_LANES_WGSL reads, for a tensor of `shape`. */
export function realLaneParams(shape: Shape4): Record<'c4' | 'c_real', { type: 'u32'; value: number }> {
  return { c4: { type: 'u32', value: paddedChannels(shape[3]) / 4 }, c_real: { type: 'u32', value: shape[3] } };
}

/**
 * The sum of every real element of `t` (padded channels excluded): [1, 1, 1, 1], the total in channel 0, times
 * `scale`.
 */
export function sumAll(graph: Graph, t: TensorValue, label: string, options: { scale?: number } = {}): TensorValue {
  const scale = checkScale(options.scale, label);
  return reduceRows(graph, {
    rows: tensorElements(t.shape) / 4,
    groups: 1,
    body: {
      tag: 'sum_all',
      key: 'sum_all',
      bindings: { src: { binding: t, mode: 'read' } },
      params: realLaneParams(t.shape),
      statements: (io) => `term = select(vec4<f32>(0.0), ${io.load('src', 'i')}, ${REAL_LANES_WGSL});`,
      cost: { flops: logicalElements(t.shape), bytes: logicalBytes(t.shape) },
    },
    finish: { kind: 'collapse', coefficients: [scale, scale, scale, scale] },
    label,
  })!;
}

function checkScale(scale: number | undefined, label: string): number {
  if (scale !== undefined && !Number.isFinite(scale)) throw new InvalidInputError(`${label}: scale ${scale} is not finite`);
  return scale ?? 1;
}

/** Operands summed per dispatch: few enough bindings for the WebGPU default of 8 storage buffers per stage. */
const PARTS_PER_DISPATCH = 4;

function sumTensorsWgsl(parts: number, io: TensorAccess): string {
  const names = range(parts).map((k) => `a${k}`);
  const sum = names.map((n) => io.load(n, 'i')).reduce((acc, term) => `(${acc} + ${term})`);
  return `struct Params { count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${names.map((n, k) => io.declare(n, k + 1, 'read')).join('\n')}
${io.declare('y', parts + 1, 'read_write')}

${linearEntry(WORKGROUP)}
  ${io.store('y', 'i', sum)}
}`;
}

/**
 * The element-wise sum of tensors of one shape, added left to right in argument order (((a + b) + c) + …), so the
 * result does not depend on anything but the order the caller gives: the gradient of a tensor used several times,
 * or several [1, 1, 1, 1] losses. One tensor is returned as it is. Padded channels stay 0 (0 in every operand).
 */
export function sumTensors(graph: Graph, parts: TensorValue[], label: string): TensorValue {
  if (parts.length === 0) throw new InvalidInputError(`${label}: nothing to sum`);
  const shape = parts[0].shape;
  parts.forEach((t, k) => {
    if (t.shape.some((d, j) => d !== shape[j])) {
      throw new InvalidInputError(`${label}: part ${k} '${t.label}' is ${formatShape(t.shape)}, part 0 is ${formatShape(shape)}`);
    }
  });
  let acc = parts[0];
  let next = 1;
  const count = tensorElements(shape) / 4;
  while (next < parts.length) {
    const operands = [acc, ...parts.slice(next, next + PARTS_PER_DISPATCH - 1)];
    next += operands.length - 1;
    const y = graph.tensor(shape, label);
    graph.add({
      label,
      kernel: kernelShader(`sum_tensors[${operands.length}]`, { family: 'sum_tensors', parts: operands.length }, (io) =>
        sumTensorsWgsl(operands.length, io),
      ),
      uniforms: { count },
      bindings: { ...Object.fromEntries(operands.map((t, k) => [`a${k}`, t])), y },
      workgroups: Math.ceil(count / WORKGROUP),
      cost: { flops: (operands.length - 1) * logicalElements(shape), bytes: (operands.length + 1) * logicalBytes(shape) },
    });
    acc = y;
  }
  return acc;
}
