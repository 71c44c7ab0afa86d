import { type Activation, activationTag, activationWgsl } from './activation';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import type { ConvTranspose2dVariant } from './conv-transpose2d-variants';
import { range } from './wgsl-common';

export interface ConvTranspose2dShaderKey {
  kernelH: number;
  kernelW: number;
  hasBias: boolean;
  activation: Activation;
  /** Output channels not a multiple of 4: the padded lanes must be forced to 0 (sigmoid(0) ≠ 0). */
  maskChannels: boolean;
}

export function convTranspose2dLabel(key: ConvTranspose2dShaderKey, v: ConvTranspose2dVariant): string {
  const tags = [
    `k${key.kernelH}x${key.kernelW}`,
    v.algorithm,
    `px${v.px}`,
    `cb${v.cb}`,
    `wg${v.workgroupSize}`,
    ...(v.algorithm === 'subpixel' && v.allTaps ? ['at'] : []),
    ...(v.algorithm === 'subpixel' && v.uniformWeights ? ['uw'] : []),
    activationTag(key.activation),
    ...(key.hasBias ? ['bias'] : []),
    ...(key.maskChannels ? ['mask'] : []),
  ];
  return `convTranspose2d[${tags.join(',')}]`;
}

const PARAMS = `struct Params {
  n: u32, h: u32, w: u32, cin4: u32,
  ho: u32, wo: u32, cout4: u32, cout: u32,
  stride: i32, pad_y: i32, pad_x: i32, co_blocks: u32,
  tiles_x: u32, total: u32, out_c4_offset: u32, out_c4_total: u32,
  alpha: f32,
}`;

function header(key: ConvTranspose2dShaderKey, v: ConvTranspose2dVariant, io: TensorAccess): string {
  return `${PARAMS}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
${key.hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;' : ''}
${io.declare('y', 4, 'read_write')}

${activationWgsl(key.activation)}

const KH: u32 = ${key.kernelH}u;
const KW: u32 = ${key.kernelW}u;
const WG: u32 = ${v.workgroupSize}u;`;
}

/**
 * The epilogue for one accumulator: bias, activation, zeroed padded lanes, store at a channel offset of a
 * maybe wider tensor. `pixel` is a WGSL expression for the flat output pixel index, `guard` its bounds test.
 */
function store(key: ConvTranspose2dShaderKey, io: TensorAccess, acc: string, c: number, pixel: string, guard: string): string {
  return `      if (${guard}) {
        var v = act(${acc}${key.hasBias ? ` + b${c}` : ''}, p.alpha);${key.maskChannels ? `\n        v = select(vec4<f32>(0.0), v, keep${c});` : ''}
        ${io.store('y', `(${pixel}) * p.out_c4_total + p.out_c4_offset + co${c}`, 'v')}
      }`;
}

function epilogueChannelSetup(key: ConvTranspose2dShaderKey, c: number): string {
  const lines = [`    let co${c} = co0 + ${c}u;`];
  if (key.hasBias) lines.push(`    let b${c} = bias[min(co${c}, p.cout4 - 1u)];`);
  if (key.maskChannels) {
    lines.push(`    let keep${c} = (vec4<u32>(co${c} * 4u) + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(p.cout);`);
  }
  return lines.join('\n');
}

/** Generates the WGSL; tile loops are unrolled in the text because Tint does not unroll loops. */
export function convTranspose2dWgsl(key: ConvTranspose2dShaderKey, v: ConvTranspose2dVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  return v.algorithm === 'subpixel' ? subpixelWgsl(key, v, io) : gatherWgsl(key, v, io);
}

function subpixelWgsl(key: ConvTranspose2dShaderKey, v: ConvTranspose2dVariant, io: TensorAccess): string {
  const { px, cb } = v;
  const taps = v.allTaps ? range(key.kernelH * key.kernelW) : [0];
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  emit(header(key, v, io));
  emit(`
${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${v.workgroupSize})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {`);
  // Decompose the invocation index into (channel block, [tap,] pixel tile).
  if (v.uniformWeights) {
    emit(`  var wg_index = linear_workgroup_index(wid, nwg);
  let cob = wg_index % p.co_blocks;
  wg_index = wg_index / p.co_blocks;`);
    if (!v.allTaps) emit(`  let tap = wg_index % (KH * KW);\n  wg_index = wg_index / (KH * KW);`);
    emit(`  let gi = wg_index * WG + lid;
  if (gi >= p.total) { return; }
  var r = gi;`);
  } else {
    emit(`  let gi = linear_workgroup_index(wid, nwg) * WG + lid;
  if (gi >= p.total) { return; }
  let cob = gi % p.co_blocks;
  var r = gi / p.co_blocks;`);
    if (!v.allTaps) emit(`  let tap = r % (KH * KW);\n  r = r / (KH * KW);`);
  }
  emit(`  let tx = r % p.tiles_x;
  r = r / p.tiles_x;
  let iy = r % p.h;
  let n = r / p.h;
  let ix0 = tx * ${px}u;
  let co0 = cob * ${cb}u;
  let wrow = p.cout4 * 4u;
  let wtap = p.cin4 * wrow;`);
  if (v.allTaps) emit(`  let wbase = 0u;`);
  else emit(`  let wbase = tap * wtap;`);
  for (const c of range(cb)) emit(`  let wco${c} = min(co0 + ${c}u, p.cout4 - 1u) * 4u;`);
  // Pixels past the row end read the last pixel (in bounds) and are not stored.
  for (const i of range(px)) emit(`  let xb${i} = ((n * p.h + iy) * p.w + min(ix0 + ${i}u, p.w - 1u)) * p.cin4;`);
  for (const t of taps) for (const i of range(px)) for (const c of range(cb)) emit(`  var acc${t}_${i}_${c} = vec4<f32>(0.0);`);
  emit(`  var wi = wbase;
  for (var ci = 0u; ci < p.cin4; ci++) {`);
  for (const i of range(px)) emit(`    let x${i} = ${io.load('x', `xb${i} + ci`)};`);
  for (const t of taps) {
    for (const c of range(cb)) {
      for (const j of range(4)) emit(`    let w${t}_${c}_${j} = weight[wi + ${t > 0 ? `${t}u * wtap + ` : ''}wco${c} + ${j}u];`);
      for (const i of range(px)) {
        const a = `acc${t}_${i}_${c}`;
        emit(`    ${a} = ${a} + w${t}_${c}_0 * x${i}.x + w${t}_${c}_1 * x${i}.y + w${t}_${c}_2 * x${i}.z + w${t}_${c}_3 * x${i}.w;`);
      }
    }
  }
  emit(`    wi += wrow;
  }`);
  for (const c of range(cb)) {
    emit(`  {\n${epilogueChannelSetup(key, c)}\n    if (co${c} < p.cout4) {`);
    for (const t of taps) {
      const tapExpr = v.allTaps ? `${t}u` : 'tap';
      emit(`    {
      let oy = iy * KH + ${tapExpr} / KW;
      let ox0 = ix0 * KW + ${tapExpr} % KW;`);
      for (const i of range(px)) {
        emit(store(key, io, `acc${t}_${i}_${c}`, c, `(n * p.ho + oy) * p.wo + ox0 + ${i}u * KW`, `ix0 + ${i}u < p.w`));
      }
      emit('    }');
    }
    emit('    }\n  }');
  }
  emit('}');
  return lines.join('\n');
}

function gatherWgsl(key: ConvTranspose2dShaderKey, v: ConvTranspose2dVariant, io: TensorAccess): string {
  const { px, cb } = v;
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  emit(header(key, v, io));
  emit(`
${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${v.workgroupSize})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
  let gi = linear_workgroup_index(wid, nwg) * WG + lid;
  if (gi >= p.total) { return; }
  let cob = gi % p.co_blocks;
  var r = gi / p.co_blocks;
  let tj = r % p.tiles_x;
  r = r / p.tiles_x;
  let phase = r % u32(p.stride);
  r = r / u32(p.stride);
  let oy = r % p.ho;
  let n = r / p.ho;
  let j0 = tj * ${px}u;
  let co0 = cob * ${cb}u;
  let wrow = p.cout4 * 4u;`);
  for (const c of range(cb)) emit(`  let wco${c} = min(co0 + ${c}u, p.cout4 - 1u) * 4u;`);
  for (const i of range(px)) for (const c of range(cb)) emit(`  var acc${i}_${c} = vec4<f32>(0.0);`);
  // Output column ox = phase + s·j takes input column ix = (ox + p − kx)/s = j + (phase + p − kx)/s whenever
  // phase + p − kx is a multiple of s (the same taps for every j). WGSL's i32 / and % truncate, which is exact
  // for multiples of s, negative ones included.
  emit(`  for (var ky = 0u; ky < KH; ky++) {
    let ty = i32(oy) + p.pad_y - i32(ky);
    if (ty < 0 || ty % p.stride != 0) { continue; }
    let iy = u32(ty / p.stride);
    if (iy >= p.h) { continue; }
    let row = (n * p.h + iy) * p.w;
    for (var kx = 0u; kx < KW; kx++) {
      let tx = i32(phase) + p.pad_x - i32(kx);
      if (tx % p.stride != 0) { continue; }
      let dx = tx / p.stride;`);
  for (const i of range(px)) {
    emit(`      let ix${i} = i32(j0 + ${i}u) + dx;
      let ok${i} = ix${i} >= 0 && ix${i} < i32(p.w);
      let xb${i} = (row + u32(select(0, ix${i}, ok${i}))) * p.cin4;`);
  }
  emit(`      var wi = (ky * KW + kx) * p.cin4 * wrow;
      for (var ci = 0u; ci < p.cin4; ci++) {`);
  for (const i of range(px)) emit(`        let x${i} = select(vec4<f32>(0.0), ${io.load('x', `xb${i} + ci`)}, ok${i});`);
  for (const c of range(cb)) {
    for (const j of range(4)) emit(`        let w${c}_${j} = weight[wi + wco${c} + ${j}u];`);
    for (const i of range(px)) {
      emit(`        acc${i}_${c} = acc${i}_${c} + w${c}_0 * x${i}.x + w${c}_1 * x${i}.y + w${c}_2 * x${i}.z + w${c}_3 * x${i}.w;`);
    }
  }
  emit(`        wi += wrow;
      }
    }
  }
  let s = u32(p.stride);`);
  for (const c of range(cb)) {
    emit(`  {\n${epilogueChannelSetup(key, c)}\n    if (co${c} < p.cout4) {`);
    for (const i of range(px)) {
      const ox = `phase + (j0 + ${i}u) * s`;
      emit(store(key, io, `acc${i}_${c}`, c, `(n * p.ho + oy) * p.wo + ${ox}`, `${ox} < p.wo`));
    }
    emit('    }\n  }');
  }
  emit('}');
  return lines.join('\n');
}
