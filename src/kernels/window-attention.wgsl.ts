import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import type { WindowAttentionVariant } from './window-attention-variants';
import { range } from './wgsl-common';

/**
 * WGSL for SCUNet's window multi-head self-attention core (WMSA / SW-MSA without the Linears), see
 * window-attention.ts. Windows are 8×8 (64 tokens, row-major p = 8r + c), heads are 32 wide.
 */

export const WINDOW = 8;
export const TOKENS = WINDOW * WINDOW;
export const HEAD_DIM = 32;
/** A masked score; exp(MASKED − max) is exactly 0 in f32. WGSL cannot spell −inf, and −inf − max risks NaN. */
export const MASKED = '-1e30';

export function windowAttentionLabel(v: WindowAttentionVariant): string {
  return v.mode === 'workgroup' ? 'window-attention[wg]' : `window-attention[direct,rows${v.rows}]`;
}

/**
 * `token_pixel` (the pixel a window token reads, with the shifted variant's roll) and `masked` (SW-MSA's region
 * mask), shared by the forward and the backward shaders (window-attention-backward.wgsl.ts), which must place
 * tokens exactly alike. They read `p.h`, `p.w`, `p.shift`, `p.nwh` and `p.nww`.
 */
export const WINDOW_PLACEMENT_WGSL = `// Pixel index (n, y, x flattened) of token t of window (wy, wx) of image b. The shifted variant reads the map
// rolled by (−s, −s), i.e. rolled pixel (i, j) is original pixel ((i + s) mod H, (j + s) mod W); writing the
// result to the same original pixel is the reverse roll (+s, +s).
fn token_pixel(b: u32, wy: u32, wx: u32, t: u32) -> u32 {
  let yy = (wy * 8u + t / 8u + p.shift) % p.h;
  let xx = (wx * 8u + t % 8u + p.shift) % p.w;
  return (b * p.h + yy) * p.w + xx;
}

// True when the shifted-window region mask hides key token tk from query token tq in window (wy, wx): only the
// last window row / column straddles the wrap-around, and there tokens on different sides of 4 are masked.
fn masked(wy: u32, wx: u32, tq: u32, tk: u32) -> bool {
  if (p.shift == 0u) { return false; }
  let row = wy + 1u == p.nwh && ((tq / 8u < 4u) != (tk / 8u < 4u));
  let col = wx + 1u == p.nww && ((tq % 8u < 4u) != (tk % 8u < 4u));
  return row || col;
}
`;

const J = range(HEAD_DIM / 4);

function header(workgroupSize: number, io: TensorAccess): string {
  return `struct Params {
  n: u32, h: u32, w: u32, nh: u32,
  nwh: u32, nww: u32, shift: u32, total: u32,
  scale: f32, tokens: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('qkv', 1, 'read')}
@group(0) @binding(2) var<storage, read> rel_bias: array<f32>;
${io.declare('y', 3, 'read_write')}

const WG: u32 = ${workgroupSize}u;
const MASKED: f32 = ${MASKED};

${WINDOW_PLACEMENT_WGSL}`;
}

/** The common workgroup decomposition: one workgroup per (batch, window, head). */
const WINDOW_PREAMBLE = `  let g = linear_workgroup_index(wid, nwg);
  if (g >= p.total) { return; }
  let head = g % p.nh;
  let gw = g / p.nh;
  let nwin = p.nwh * p.nww;
  let win = gw % nwin;
  let b = gw / nwin;
  let wy = win / p.nww;
  let wx = win % p.nww;
  let c4 = p.nh * 8u;
  let row_stride = 3u * c4;
  let bias_base = head * 225u;`;

function workgroupWgsl(io: TensorAccess): string {
  const qkv = (i: string) => io.load('qkv', i);
  const dotK = J.map((j) => `q${j}, ks[kb + ${j}u]`);
  return `${header(TOKENS, io)}
var<workgroup> ks: array<vec4<f32>, ${TOKENS * 8}>;
var<workgroup> vs: array<vec4<f32>, ${TOKENS * 8}>;

${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${TOKENS})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
${WINDOW_PREAMBLE}
  let pix = token_pixel(b, wy, wx, lid);
  let base = pix * row_stride + head * 8u;
${J.map(
  (j) => `  let q${j} = ${qkv(`base + ${j}u`)} * p.scale;
  ks[lid * 8u + ${j}u] = ${qkv(`base + c4 + ${j}u`)};
  vs[lid * 8u + ${j}u] = ${qkv(`base + 2u * c4 + ${j}u`)};`,
).join('\n')}
  workgroupBarrier();

  let rp = lid / 8u;
  let cp = lid % 8u;
  var s: array<f32, ${TOKENS}>;
  var m = MASKED;
  for (var t = 0u; t < ${TOKENS}u; t++) {
    let kb = t * 8u;
    var d = ${dotK.map((a) => `dot(${a})`).join(' + ')};
    d += rel_bias[bias_base + (rp + 7u - t / 8u) * 15u + (cp + 7u - t % 8u)];
    if (masked(wy, wx, lid, t)) { d = MASKED; }
    s[t] = d;
    m = max(m, d);
  }
${J.map((j) => `  var o${j} = vec4<f32>(0.0);`).join('\n')}
  var l = 0.0;
  for (var t = 0u; t < ${TOKENS}u; t++) {
    let e = exp(s[t] - m);
    l += e;
    let vb = t * 8u;
${J.map((j) => `    o${j} += e * vs[vb + ${j}u];`).join('\n')}
  }
  let inv = 1.0 / l;
  let ob = pix * c4 + head * 8u;
${J.map((j) => `  ${io.store('y', `ob + ${j}u`, `o${j} * inv`)}`).join('\n')}
}`;
}

function directWgsl(rows: number, io: TensorAccess): string {
  const qkv = (i: string) => io.load('qkv', i);
  const wg = TOKENS / rows;
  const R = range(rows);
  // One pass over the keys with an online softmax (running max m, running sum l, accumulator rescaled when the
  // max grows): no private score arrays, which keeps the shader small enough for CPU compilers.
  return `${header(wg, io)}
${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${wg})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_index) lid: u32) {
${WINDOW_PREAMBLE}
${R.map(
  (k) => `  let tq${k} = ${k}u * WG + lid;
  let pix${k} = token_pixel(b, wy, wx, tq${k});
  let qb${k} = pix${k} * row_stride + head * 8u;
${J.map((j) => `  let q${k}_${j} = ${qkv(`qb${k} + ${j}u`)} * p.scale;`).join('\n')}
${J.map((j) => `  var o${k}_${j} = vec4<f32>(0.0);`).join('\n')}
  var m${k} = MASKED;
  var l${k} = 0.0;`,
).join('\n')}
  for (var t = 0u; t < p.tokens; t++) {
    let kb = token_pixel(b, wy, wx, t) * row_stride + c4 + head * 8u;
${J.map((j) => `    let k${j} = ${qkv(`kb + ${j}u`)};`).join('\n')}
${J.map((j) => `    let v${j} = ${qkv(`kb + c4 + ${j}u`)};`).join('\n')}
${R.map(
  (k) => `    {
      let hide = masked(wy, wx, tq${k}, t);
      let d = select(${J.map((j) => `dot(q${k}_${j}, k${j})`).join(' + ')}
        + rel_bias[bias_base + (tq${k} / 8u + 7u - t / 8u) * 15u + (tq${k} % 8u + 7u - t % 8u)], MASKED, hide);
      let mn = max(m${k}, d);
      let corr = exp(m${k} - mn);
      let e = select(exp(d - mn), 0.0, hide);
      m${k} = mn;
      l${k} = l${k} * corr + e;
${J.map((j) => `      o${k}_${j} = o${k}_${j} * corr + e * v${j};`).join('\n')}
    }`,
).join('\n')}
  }
${R.map(
  (k) => `  {
    let inv = 1.0 / l${k};
    let ob = pix${k} * c4 + head * 8u;
${J.map((j) => `    ${io.store('y', `ob + ${j}u`, `o${k}_${j} * inv`)}`).join('\n')}
  }`,
).join('\n')}
}`;
}

export function windowAttentionWgsl(v: WindowAttentionVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  return v.mode === 'workgroup' ? workgroupWgsl(io) : directWgsl(v.rows, io);
}
