import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { linearEntry, range } from './wgsl-common';
import { HEAD_DIM, MASKED, TOKENS, WINDOW, WINDOW_PLACEMENT_WGSL } from './window-attention.wgsl';

/*
 * WGSL of the backward of SCUNet's window attention core (window-attention-backward.ts). Per (window, head) with
 * P = softmax(S), S = (Q·scale)Kᵀ + B (+ mask), O = P·V and the upstream gradient dO (docs/training.md §1.9):
 *   dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),  dQ = dS·K·scale,  dK = dSᵀ·Q·scale,  dV = Pᵀ·dO,
 *   dB[h, δ] = Σ dS over every (image, window, query, key) pair at relative offset δ.
 * Token indexing, shift and mask are the forward's (window-attention.wgsl.ts); a masked pair has P = 0, hence dS = 0.
 */

/** Vec4 groups of one 32-wide head. */
const J = range(HEAD_DIM / 4);
/** Relative offsets per axis (2·8 − 1) and entries of one head's bias table. */
export const REL = 2 * WINDOW - 1;
export const TABLE = REL * REL;
export const DT_WORKGROUP = 64;

const WINDOW_PARAMS = `struct Params {
  n: u32, h: u32, w: u32, nh: u32,
  nwh: u32, nww: u32, shift: u32, total: u32,
  scale: f32, tokens: u32,
}
@group(0) @binding(0) var<uniform> p: Params;`;

/** The forward's token placement and SW mask (window-attention.wgsl.ts): a token's gradient lands on the pixel
 * the forward read it from, which undoes the roll. */
const WINDOW_HELPERS = `const MASKED: f32 = ${MASKED};
${WINDOW_PLACEMENT_WGSL}
${LINEAR_WORKGROUP_INDEX_WGSL}`;

/** One workgroup of 64 invocations per (image, window, head), invocation `lid` = token. */
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
  let bias_base = head * ${TABLE}u;
  let me = lid;
  let pix = token_pixel(b, wy, wx, me);`;

/**
 * Pass A, one invocation per query row: the softmax statistics (online max and sum, as the forward's direct
 * variant), then D = Σ_k P·dP, then dS per key (stored with P in the [total, 64, 64] scratch tensors for pass
 * B and the bias gradient) and dQ.
 */
export function attentionRowsBackwardWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const qkv = (i: string) => io.load('qkv', i);
  // Score of key t (its K row loaded as k0..k7) for this query: the same operations as the forward.
  const keyRow = (t: string) => `let kb = token_pixel(b, wy, wx, ${t}) * row_stride + c4 + head * 8u;
${J.map((j) => `      let k${j} = ${qkv(`kb + ${j}u`)};`).join('\n')}
      let hide = masked(wy, wx, me, ${t});
      let s = select(${J.map((j) => `dot(q${j}, k${j})`).join(' + ')}
        + rel_bias[bias_base + (me / 8u + 7u - ${t} / 8u) * 15u + (me % 8u + 7u - ${t} % 8u)], MASKED, hide);`;
  const dP = J.map((j) => `dot(go${j}, ${qkv(`kb + c4 + ${j}u`)})`).join(' + ');
  return `${WINDOW_PARAMS}
${io.declare('qkv', 1, 'read')}
${io.declare('gy', 2, 'read')}
@group(0) @binding(3) var<storage, read> rel_bias: array<f32>;
${io.declare('dqkv', 4, 'read_write')}
${io.declare('probs', 5, 'read_write')}
${io.declare('dscores', 6, 'read_write')}
${WINDOW_HELPERS}

@compute @workgroup_size(${TOKENS})
fn main(${WORKGROUP_BUILTINS}, @builtin(local_invocation_index) lid: u32) {
${WINDOW_PREAMBLE}
  let qb = pix * row_stride + head * 8u;
${J.map((j) => `  let q${j} = ${qkv(`qb + ${j}u`)} * p.scale;`).join('\n')}
${J.map((j) => `  let go${j} = ${io.load('gy', `pix * c4 + head * 8u + ${j}u`)};`).join('\n')}
  var m = MASKED;
  var l = 0.0;
  for (var t = 0u; t < p.tokens; t++) {
    {
      ${keyRow('t')}
      let mn = max(m, s);
      l = l * exp(m - mn) + select(exp(s - mn), 0.0, hide);
      m = mn;
    }
  }
  let inv_l = 1.0 / l;
  var dsum = 0.0;
  for (var t = 0u; t < p.tokens; t++) {
    {
      ${keyRow('t')}
      let pr = select(exp(s - m) * inv_l, 0.0, hide);
      dsum += pr * (${dP});
    }
  }
${J.map((j) => `  var dq${j} = vec4<f32>(0.0);`).join('\n')}
  let srow = (g * ${TOKENS}u + me) * ${TOKENS / 4}u;
  for (var t4 = 0u; t4 < p.tokens / 4u; t4++) {
    var pv = vec4<f32>(0.0);
    var dv = vec4<f32>(0.0);
    for (var lane = 0u; lane < 4u; lane++) {
      let t = t4 * 4u + lane;
      ${keyRow('t')}
      let pr = select(exp(s - m) * inv_l, 0.0, hide);
      let ds = pr * ((${dP}) - dsum);
${J.map((j) => `      dq${j} += ds * k${j};`).join('\n')}
      pv[lane] = pr;
      dv[lane] = ds;
    }
    ${io.store('probs', 'srow + t4', 'pv')}
    ${io.store('dscores', 'srow + t4', 'dv')}
  }
${J.map((j) => `  ${io.store('dqkv', `qb + ${j}u`, `dq${j} * p.scale`)}`).join('\n')}
}`;
}

/** Pass B, one invocation per key token: dK = scale·Σ_q dS[q, k]·Q[q] and dV = Σ_q P[q, k]·dO[q], q in order. */
export function attentionColumnsBackwardWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `${WINDOW_PARAMS}
${io.declare('qkv', 1, 'read')}
${io.declare('gy', 2, 'read')}
${io.declare('probs', 3, 'read')}
${io.declare('dscores', 4, 'read')}
${io.declare('dqkv', 5, 'read_write')}
${WINDOW_HELPERS}

@compute @workgroup_size(${TOKENS})
fn main(${WORKGROUP_BUILTINS}, @builtin(local_invocation_index) lid: u32) {
${WINDOW_PREAMBLE}
${J.map((j) => `  var dk${j} = vec4<f32>(0.0);\n  var dv${j} = vec4<f32>(0.0);`).join('\n')}
  for (var q = 0u; q < p.tokens; q++) {
    let at = (g * ${TOKENS}u + q) * ${TOKENS / 4}u + me / 4u;
    let pr4 = ${io.load('probs', 'at')};
    let ds4 = ${io.load('dscores', 'at')};
    let pr = pr4[me % 4u];
    let ds = ds4[me % 4u];
    let qpix = token_pixel(b, wy, wx, q);
    let qb = qpix * row_stride + head * 8u;
    let ob = qpix * c4 + head * 8u;
${J.map((j) => `    dk${j} += ds * ${io.load('qkv', `qb + ${j}u`)};\n    dv${j} += pr * ${io.load('gy', `ob + ${j}u`)};`).join('\n')}
  }
  let kb = pix * row_stride + c4 + head * 8u;
${J.map((j) => `  ${io.store('dqkv', `kb + ${j}u`, `dk${j} * p.scale`)}\n  ${io.store('dqkv', `kb + c4 + ${j}u`, `dv${j}`)}`).join('\n')}
}`;
}

/**
 * Bias gradient, pass 1: one invocation per (chunk of windows, 4 consecutive table entries h·225 + δ) sums dS
 * over the chunk's windows and every (query, key) pair at offset δ, in a fixed order; partials [chunks, e4·4].
 */
export function biasGradPartialsWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { nh: u32, windows: u32, chunk_windows: u32, e4: u32, entries: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('dscores', 1, 'read')}
${io.declare('part', 2, 'read_write')}

${linearEntry(DT_WORKGROUP)}
  let chunk = i / p.e4;
  let w0 = chunk * p.chunk_windows;
  let w1 = min(w0 + p.chunk_windows, p.windows);
  var acc = vec4<f32>(0.0);
  for (var lane = 0u; lane < 4u; lane++) {
    let e = (i % p.e4) * 4u + lane;
    if (e < p.entries) {
      let head = e / ${TABLE}u;
      let d = e % ${TABLE}u;
      // Query (rq, cq) and key (rq − dy, cq − dx), dy = d / 15 − 7.
      let dy = i32(d / ${REL}u) - 7;
      let dx = i32(d % ${REL}u) - 7;
      let rq0 = u32(max(dy, 0));
      let rq1 = u32(min(8 + dy, 8));
      let cq0 = u32(max(dx, 0));
      let cq1 = u32(min(8 + dx, 8));
      var s = 0.0;
      for (var win = w0; win < w1; win++) {
        let g = win * p.nh + head;
        for (var rq = rq0; rq < rq1; rq++) {
          for (var cq = cq0; cq < cq1; cq++) {
            let tq = rq * 8u + cq;
            let tk = u32(i32(rq) - dy) * 8u + u32(i32(cq) - dx);
            let v = ${io.load('dscores', `(g * ${TOKENS}u + tq) * ${TOKENS / 4}u + tk / 4u`)};
            s += v[tk % 4u];
          }
        }
      }
      acc[lane] = s;
    }
  }
  ${io.store('part', 'i', 'acc')}
}`;
}

/** Bias gradient, pass 2: the partials added in chunk order, written (overwritten) into the flat [nh, 15, 15] gradient. */
export function biasGradReduceWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { chunks: u32, e4: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('part', 1, 'read')}
@group(0) @binding(2) var<storage, read_write> d_table: array<vec4<f32>>;

${linearEntry(DT_WORKGROUP)}
  var s = vec4<f32>(0.0);
  for (var c = 0u; c < p.chunks; c++) { s += ${io.load('part', 'c * p.e4 + i')}; }
  d_table[i] = s;
}`;
}
