import { type Activation, activationTag, activationWgsl } from './activation';

/**
 * Tiling parameters of the direct/implicit-GEMM convolution. Each invocation computes `px` consecutive output
 * pixels of one row times `cb` groups of 4 output channels, so every input vec4 it loads is used `4·cb` times
 * and every weight vec4 `px` times (register tiling, no workgroup memory: barriers are costly on CPU adapters).
 */
export interface Conv2dVariant {
  px: number;
  cb: number;
  workgroupSize: number;
  /**
   * Give each workgroup one block of output channels and spread pixel tiles over its invocations, so every
   * weight load has the same address in the whole workgroup. CPU adapters then load weights once and
   * broadcast them instead of gathering per lane.
   */
  uniformWeights?: boolean;
}

export interface Conv2dShaderKey {
  kernelH: number;
  kernelW: number;
  hasBias: boolean;
  activation: Activation;
  /** Output channels not a multiple of 4: the padded lanes must be forced to 0 (sigmoid(0) ≠ 0). */
  maskChannels: boolean;
}

export function conv2dLabel(key: Conv2dShaderKey, v: Conv2dVariant): string {
  return `conv2d[k${key.kernelH}x${key.kernelW},px${v.px},cb${v.cb},wg${v.workgroupSize}${v.uniformWeights ? ',uw' : ''},${activationTag(key.activation)}${
    key.hasBias ? ',bias' : ''
  }${key.maskChannels ? ',mask' : ''}]`;
}

/** Generates the WGSL: tile loops are unrolled in the generated text because Tint does not unroll loops. */
export function conv2dWgsl(key: Conv2dShaderKey, v: Conv2dVariant): string {
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
  out_c4_total: u32, alpha: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
${key.hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;' : ''}
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

${activationWgsl(key.activation)}

const KH: u32 = ${key.kernelH}u;
const KW: u32 = ${key.kernelW}u;
const WG: u32 = ${v.workgroupSize}u;

@compute @workgroup_size(${v.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
${
    v.uniformWeights
      ? `  let wg_index = wid.y * nwg.x + wid.x;
  let cob = wg_index % p.co_blocks;
  let gi = (wg_index / p.co_blocks) * WG + lid;
  if (gi >= p.total) { return; }
  var r = gi;`
      : `  let gi = (wid.y * nwg.x + wid.x) * WG + lid;
  if (gi >= p.total) { return; }
  let cob = gi % p.co_blocks;
  var r = gi / p.co_blocks;`
  }
  let tx = r % p.tiles_x;
  r = r / p.tiles_x;
  let oy = r % p.ho;
  let n = r / p.ho;
  let ox0 = tx * ${px}u;
  let co0 = cob * ${cb}u;
  let wrow = p.cout4 * 4u;`);
  // Clamp channel groups past the end to the last real one: they compute throw-away values but stay in bounds.
  for (const c of cbs) emit(`  let wco${c} = min(co0 + ${c}u, p.cout4 - 1u) * 4u;`);
  for (const i of pxs) for (const c of cbs) emit(`  var acc${i}_${c} = vec4<f32>(0.0);`);
  emit(`  for (var ky = 0u; ky < KH; ky++) {
    let iy = i32(oy * p.stride + ky * p.dilation) - p.pad_y;
    if (iy < 0 || iy >= i32(p.h)) { continue; }
    let row = (n * p.h + u32(iy)) * p.w;
    for (var kx = 0u; kx < KW; kx++) {`);
  for (const i of pxs) {
    emit(`      let ix${i} = i32((ox0 + ${i}u) * p.stride + kx * p.dilation) - p.pad_x;`);
    emit(`      let ok${i} = ix${i} >= 0 && ix${i} < i32(p.w);`);
    emit(`      let xb${i} = (row + u32(select(0, ix${i}, ok${i}))) * p.cin4;`);
  }
  emit(`      var wi = (ky * KW + kx) * p.cin4 * wrow;
      for (var ci = 0u; ci < p.cin4; ci++) {`);
  for (const i of pxs) emit(`        let x${i} = select(vec4<f32>(0.0), x[xb${i} + ci], ok${i});`);
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
  // Epilogue: bias, activation, zero padded channels, write at a channel offset of a maybe wider tensor.
  for (const c of cbs) {
    emit(`  {
    let co = co0 + ${c}u;
    if (co < p.cout4) {`);
    if (key.hasBias) emit(`      let b = bias[co];`);
    if (key.maskChannels) {
      emit(`      let lane = vec4<u32>(co * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
      let keep = lane < vec4<u32>(p.cout);`);
    }
    for (const i of pxs) {
      emit(`      if (ox0 + ${i}u < p.wo) {
        var v = act(acc${i}_${c}${key.hasBias ? ' + b' : ''}, p.alpha);`);
      if (key.maskChannels) emit(`        v = select(vec4<f32>(0.0), v, keep);`);
      emit(`        y[((n * p.ho + oy) * p.wo + ox0 + ${i}u) * p.out_c4_total + p.out_c4_offset + co] = v;
      }`);
    }
    emit(`    }
  }`);
  }
  emit('}');
  return lines.join('\n');
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
