import { type Activation, activationTag, activationWgsl, preluWgsl } from './activation';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import type { Conv2dVariant } from './conv2d-variants';
import { range } from './wgsl-common';

/** Where a fused residual is added: act(conv + b + r)·scale, or act(conv + b)·scale + r. */
export type ResidualMode = 'beforeActivation' | 'afterActivation';

/** What the epilogue of both kernels does after the accumulation (everything but the tiling). */
export interface Conv2dEpilogueKey {
  hasBias: boolean;
  /** Ignored (must be none) when `prelu` is set. */
  activation: Activation;
  /** PReLU with a per-channel slope buffer `slope` (vec4-padded) instead of `activation`. */
  prelu?: boolean;
  /** A residual tensor `res` with the output's logical shape. */
  residual?: ResidualMode;
}

export interface Conv2dShaderKey extends Conv2dEpilogueKey {
  kernelH: number;
  kernelW: number;
  /** Baked in only for `rowReuse` variants. */
  stride?: number;
  dilation?: number;
  /** Output channels not a multiple of 4: the padded lanes must be forced to 0 (sigmoid(0) ≠ 0). */
  maskChannels: boolean;
}

/** The depthwise kernel bakes stride and dilation in, to unroll the row of input taps it shares between pixels. */
export interface DepthwiseConv2dShaderKey extends Conv2dEpilogueKey {
  kernelH: number;
  kernelW: number;
  stride: number;
  dilation: number;
}

export function epilogueTags(key: Conv2dEpilogueKey): string {
  return `${key.prelu ? 'prelu' : activationTag(key.activation)}${key.hasBias ? ',bias' : ''}${
    key.residual ? (key.residual === 'beforeActivation' ? ',resB' : ',resA') : ''
  }`;
}

export function variantTags(v: Conv2dVariant): string {
  if (v.channelLanes) return `cl,rows${v.rows ?? 1},px${v.px},cb${v.cb},wg${v.workgroupSize}`;
  return `px${v.px},cb${v.cb},wg${v.workgroupSize}${v.uniformWeights ? ',uw' : ''}${v.rowReuse ? ',rr' : ''}`;
}

export function conv2dLabel(key: Conv2dShaderKey, v: Conv2dVariant): string {
  const baked = v.rowReuse ? `,s${key.stride},d${key.dilation}` : '';
  return `conv2d[k${key.kernelH}x${key.kernelW}${baked},${variantTags(v)},${epilogueTags(key)}${key.maskChannels ? ',mask' : ''}]`;
}

export function depthwiseConv2dLabel(key: DepthwiseConv2dShaderKey, v: Conv2dVariant): string {
  return `dwconv2d[k${key.kernelH}x${key.kernelW},s${key.stride},d${key.dilation},${variantTags(v)},${epilogueTags(key)}]`;
}

/** Bindings shared by both kernels: binding 0 is the uniform block `p`. */
export function bindingsWgsl(key: Conv2dEpilogueKey, io: TensorAccess): string {
  return `${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
${key.hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;' : ''}
${io.declare('y', 4, 'read_write')}
${key.prelu ? '@group(0) @binding(5) var<storage, read> slope: array<vec4<f32>>;' : ''}
${key.residual ? io.declare('res', 6, 'read') : ''}

${key.prelu ? preluWgsl() : activationWgsl(key.activation)}`;
}

/** The linear invocation index → (channel block `cob`, remaining index `r` over pixel tiles). */
function invocationIndexWgsl(v: Conv2dVariant): string {
  return v.uniformWeights
    ? `  let wg_index = linear_workgroup_index(wid, nwg);
  let cob = wg_index % p.co_blocks;
  let gi = (wg_index / p.co_blocks) * WG + lid;
  if (gi >= p.total) { return; }
  var r = gi;`
    : `  let gi = linear_workgroup_index(wid, nwg) * WG + lid;
  if (gi >= p.total) { return; }
  let cob = gi % p.co_blocks;
  var r = gi / p.co_blocks;`;
}

/**
 * The epilogue of one output vec4 held in `acc`, for output channel vec4 `co` (an index into the conv's own
 * channels) at output pixel `pix` (n·ho·wo linear): conv → + bias → (+ residual) → activation → × scale →
 * (+ residual) → zero padded lanes → store at the channel offset of a maybe wider tensor.
 */
export function storeWgsl(key: Conv2dEpilogueKey, io: TensorAccess, mask: boolean, acc: string, pix: string, indent: string): string {
  const res = io.load('res', `(${pix}) * p.res_c4_total + co`);
  const s: string[] = [];
  s.push(`var v = ${acc}${key.hasBias ? ' + b' : ''};`);
  if (key.residual === 'beforeActivation') s.push(`v = v + ${res};`);
  s.push(key.prelu ? 'v = act_prelu(v, sl);' : 'v = act(v, p.alpha);');
  s.push('v = v * p.scale;');
  if (key.residual === 'afterActivation') s.push(`v = v + ${res};`);
  if (mask) s.push('v = select(vec4<f32>(0.0), v, keep);');
  s.push(io.store('y', `(${pix}) * p.out_c4_total + p.out_c4_offset + co`, 'v'));
  return s.map((l) => indent + l).join('\n');
}

/** Per-channel-vec4 values the epilogue needs: bias, slope, lane mask. */
export function channelPrologueWgsl(key: Conv2dEpilogueKey, mask: boolean, indent: string): string {
  const s: string[] = [];
  if (key.hasBias) s.push('let b = bias[co];');
  if (key.prelu) s.push('let sl = slope[co];');
  if (mask) {
    s.push('let lane = vec4<u32>(co * 4u) + vec4<u32>(0u, 1u, 2u, 3u);');
    s.push('let keep = lane < vec4<u32>(p.cout);');
  }
  return s.map((l) => indent + l).join('\n');
}

/**
 * Generates the WGSL: tile loops are unrolled in the generated text because Tint does not unroll loops.
 * Grouped convolutions (Cin/groups and Cout/groups multiples of 4) use the same code: a channel block never
 * straddles two groups, and its input channels are the group's `cing4` vec4s starting at `grp·cing4`.
 */
export function conv2dWgsl(key: Conv2dShaderKey, v: Conv2dVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  const { px, cb } = v;
  const pxs = range(px);
  const cbs = range(cb);
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  emit(`struct Params {
  n: u32, h: u32, w: u32, cin4: u32,
  ho: u32, wo: u32, cout4: u32, cout: u32,
  stride: u32, dilation: u32, pad_y: i32, pad_x: i32,
  co_blocks: u32, tiles_x: u32, total: u32, out_c4_offset: u32,
  out_c4_total: u32, alpha: f32, scale: f32, cing4: u32,
  coutg4: u32, gblocks: u32, res_c4_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${bindingsWgsl(key, io)}

const KH: u32 = ${key.kernelH}u;
const KW: u32 = ${key.kernelW}u;
const WG: u32 = ${v.workgroupSize}u;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${v.workgroupSize})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
${invocationIndexWgsl(v)}
  let tx = r % p.tiles_x;
  r = r / p.tiles_x;
  let oy = r % p.ho;
  let n = r / p.ho;
  let ox0 = tx * ${px}u;
  let grp = cob / p.gblocks;
  let cg0 = (cob % p.gblocks) * ${cb}u;
  let gco = grp * p.coutg4;
  let gci = grp * p.cing4;
  let wrow = p.cout4 * 4u;`);
  // Clamp channel groups past the end of the group to its last one: they compute throw-away values but stay in bounds.
  for (const c of cbs) emit(`  let wco${c} = (gco + min(cg0 + ${c}u, p.coutg4 - 1u)) * 4u;`);
  for (const i of pxs) for (const c of cbs) emit(`  var acc${i}_${c} = vec4<f32>(0.0);`);
  if (v.rowReuse) emitRowReuseLoops(emit, key, v, io);
  else {
    emit(`  for (var ky = 0u; ky < KH; ky++) {
      let iy = i32(oy * p.stride + ky * p.dilation) - p.pad_y;
      if (iy < 0 || iy >= i32(p.h)) { continue; }
      let row = (n * p.h + u32(iy)) * p.w;
      for (var kx = 0u; kx < KW; kx++) {`);
    for (const i of pxs) {
      emit(`      let ix${i} = i32((ox0 + ${i}u) * p.stride + kx * p.dilation) - p.pad_x;`);
      emit(`      let ok${i} = ix${i} >= 0 && ix${i} < i32(p.w);`);
      emit(`      let xb${i} = (row + u32(select(0, ix${i}, ok${i}))) * p.cin4 + gci;`);
    }
    emit(`      var wi = (ky * KW + kx) * p.cing4 * wrow;
        for (var ci = 0u; ci < p.cing4; ci++) {`);
    for (const i of pxs) emit(`        let x${i} = select(vec4<f32>(0.0), ${io.load('x', `xb${i} + ci`)}, ok${i});`);
    for (const c of cbs) {
      for (const j of range(4)) emit(`        let w${c}_${j} = weight[wi + wco${c} + ${j}u];`);
      for (const i of pxs) {
        emit(`        acc${i}_${c} = acc${i}_${c} + w${c}_0 * x${i}.x + w${c}_1 * x${i}.y + w${c}_2 * x${i}.z + w${c}_3 * x${i}.w;`);
      }
    }
    emit(`        wi += wrow;
        }
      }
    }`);
  }
  for (const c of cbs) {
    emit(`  if (cg0 + ${c}u < p.coutg4) {
    let co = gco + cg0 + ${c}u;`);
    emit(channelPrologueWgsl(key, key.maskChannels, '    '));
    for (const i of pxs) {
      emit(`    if (ox0 + ${i}u < p.wo) {`);
      emit(storeWgsl(key, io, key.maskChannels, `acc${i}_${c}`, `(n * p.ho + oy) * p.wo + ox0 + ${i}u`, '      '));
      emit('    }');
    }
    emit('  }');
  }
  emit('}');
  return lines.join('\n');
}

/**
 * Depthwise convolution (groups = Cin = Cout, any C): each invocation computes `px` consecutive output pixels
 * of one row for `cb` channel vec4s. Weights are [C/4][kH·kW] vec4 (one vec4 per tap and channel group). With
 * stride and dilation known at compile time, the input taps of one kernel row that the `px` pixels share are
 * loaded once into registers. Padded lanes are always masked (cheap here, and keeps the key small).
 */
export function depthwiseConv2dWgsl(key: DepthwiseConv2dShaderKey, v: Conv2dVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  const { px, cb } = v;
  const S = key.stride;
  const D = key.dilation;
  const KW = key.kernelW;
  const pxs = range(px);
  const cbs = range(cb);
  // The input columns (relative to the tile's first tap) the tile reads in one kernel row.
  const taps = [...new Set(pxs.flatMap((i) => range(KW).map((kx) => i * S + kx * D)))].sort((a, b) => a - b);
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  emit(`struct Params {
  n: u32, h: u32, w: u32, c4: u32,
  ho: u32, wo: u32, cout4: u32, cout: u32,
  pad_y: i32, pad_x: i32, co_blocks: u32, tiles_x: u32,
  total: u32, out_c4_offset: u32, out_c4_total: u32, alpha: f32,
  scale: f32, res_c4_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${bindingsWgsl(key, io)}

const KH: u32 = ${key.kernelH}u;
const KW: u32 = ${KW}u;
const WG: u32 = ${v.workgroupSize}u;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${v.workgroupSize})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
${invocationIndexWgsl(v)}
  let tx = r % p.tiles_x;
  r = r / p.tiles_x;
  let oy = r % p.ho;
  let n = r / p.ho;
  let ox0 = tx * ${px}u;
  let co0 = cob * ${cb}u;
  let ixb = i32(ox0 * ${S}u) - p.pad_x;`);
  for (const c of cbs) emit(`  let cc${c} = min(co0 + ${c}u, p.c4 - 1u);`);
  for (const t of taps) {
    emit(`  let ok${t} = ixb + ${t} >= 0 && ixb + ${t} < i32(p.w);`);
    emit(`  let ix${t} = u32(select(0, ixb + ${t}, ok${t}));`);
  }
  for (const i of pxs) for (const c of cbs) emit(`  var acc${i}_${c} = vec4<f32>(0.0);`);
  emit(`  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * ${S}u + ky * ${D}u) - p.pad_y;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    let row = (n * p.h + u32(iy)) * p.w;`);
  for (const c of cbs) {
    emit(`    let wb${c} = cc${c} * (KH * KW) + ky * KW;`);
    for (const kx of range(KW)) emit(`    let w${c}_${kx} = weight[wb${c} + ${kx}u];`);
    for (const t of taps) emit(`    let x${c}_${t} = select(vec4<f32>(0.0), ${io.load('x', `(row + ix${t}) * p.c4 + cc${c}`)}, ok${t});`);
    for (const i of pxs) {
      const terms = range(KW).map((kx) => `w${c}_${kx} * x${c}_${i * S + kx * D}`);
      emit(`    acc${i}_${c} = acc${i}_${c} + ${terms.join(' + ')};`);
    }
  }
  emit('  }');
  for (const c of cbs) {
    emit(`  if (co0 + ${c}u < p.c4) {
    let co = co0 + ${c}u;`);
    emit(channelPrologueWgsl(key, true, '    '));
    for (const i of pxs) {
      emit(`    if (ox0 + ${i}u < p.wo) {`);
      emit(storeWgsl(key, io, true, `acc${i}_${c}`, `(n * p.ho + oy) * p.wo + ox0 + ${i}u`, '      '));
      emit('    }');
    }
    emit('  }');
  }
  emit('}');
  return lines.join('\n');
}

/**
 * The accumulation loops of a `rowReuse` variant: per kernel row and input-channel vec4, the input columns the
 * tile reads (pixel i, tap kx → column i·stride + kx·dilation) are loaded once, then every tap uses them.
 */
function emitRowReuseLoops(emit: (s: string) => void, key: Conv2dShaderKey, v: Conv2dVariant, io: TensorAccess): void {
  const S = key.stride ?? 1;
  const D = key.dilation ?? 1;
  const pxs = range(v.px);
  const cbs = range(v.cb);
  const kxs = range(key.kernelW);
  const cols = [...new Set(pxs.flatMap((i) => kxs.map((kx) => i * S + kx * D)))].sort((a, b) => a - b);
  emit(`  let ixb = i32(ox0 * ${S}u) - p.pad_x;`);
  for (const t of cols) {
    emit(`  let ok${t} = ixb + ${t} >= 0 && ixb + ${t} < i32(p.w);`);
    emit(`  let ix${t} = u32(select(0, ixb + ${t}, ok${t}));`);
  }
  emit(`  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * ${S}u + ky * ${D}u) - p.pad_y;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    let row = (n * p.h + u32(iy)) * p.w;
    let wky = ky * KW * p.cing4 * wrow;
    for (var ci = 0u; ci < p.cing4; ci++) {`);
  for (const t of cols) emit(`      let x${t} = select(vec4<f32>(0.0), ${io.load('x', `(row + ix${t}) * p.cin4 + gci + ci`)}, ok${t});`);
  for (const kx of kxs) {
    emit(`      {
        let wi = wky + (${kx}u * p.cing4 + ci) * wrow;`);
    for (const c of cbs) {
      for (const j of range(4)) emit(`        let w${c}_${j} = weight[wi + wco${c} + ${j}u];`);
      for (const i of pxs) {
        const t = i * S + kx * D;
        emit(`        acc${i}_${c} = acc${i}_${c} + w${c}_0 * x${t}.x + w${c}_1 * x${t}.y + w${c}_2 * x${t}.z + w${c}_3 * x${t}.w;`);
      }
    }
    emit('      }');
  }
  emit(`    }
  }`);
}
