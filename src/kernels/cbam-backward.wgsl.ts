import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { linearEntry } from './wgsl-common';

/*
 * WGSL of CBAM's training kernels (cbam-backward.ts says what each computes). Activations go through the `io`
 * accessors (NHWC, vec4 channel groups); the MLP's parameters and gradients are plain f32 arrays in PyTorch's
 * nn.Linear layout (W1 [hidden, C], b1 [hidden], W2 [C, hidden], b2 [C]). Every sum runs in a fixed order.
 */

export const CBAM_TRAIN_WORKGROUP = 64;
const WG = CBAM_TRAIN_WORKGROUP;

/** f32 sigmoid without overflow: 1/(1+e^−z) for z ≥ 0, e^z/(1+e^z) below (training.md §1.3). */
const SIGMOID = `fn sigmoid1(z: f32) -> f32 {
  if (z >= 0.0) { return 1.0 / (1.0 + exp(-z)); }
  let e = exp(z);
  return e / (1.0 + e);
}`;

/** y = x · gate, gate [n, 1, 1, C] ('channel') or [n, h, w, 1] ('pixel'). One invocation per vec4 of y. */
export function gateMulWgsl(kind: 'channel' | 'pixel', io: TensorAccess = WHOLE_BINDINGS): string {
  const gate =
    kind === 'channel' ? io.load('gate', '(i / (p.pixels * p.c4)) * p.c4 + i % p.c4') : `vec4<f32>(${io.load('gate', 'i / p.c4')}.x)`;
  return `struct Params { count: u32, c4: u32, pixels: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('gate', 2, 'read')}
${io.declare('y', 3, 'read_write')}

${linearEntry(WG)}
  ${io.store('y', 'i', `${io.load('x', 'i')} * ${gate}`)}
}`;
}

/**
 * The MLP's hidden pre-activations h[n, b, j] = b1[j] + Σ_c W1[j, c]·pooled[n, b, c] for both pooled vectors
 * (b = 0 average, 1 max), [n, 1, 2, hidden]. One invocation per vec4 of hidden units.
 */
export function mlpHiddenWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c: u32, c4: u32, hidden: u32, h4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('pooled', 1, 'read')}
@group(0) @binding(2) var<storage, read> w1: array<f32>;
@group(0) @binding(3) var<storage, read> b1: array<f32>;
${io.declare('h', 4, 'read_write')}

${linearEntry(WG)}
  let row = i / p.h4;
  let j0 = (i % p.h4) * 4u;
  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let j = j0 + l;
    if (j >= p.hidden) { break; }
    var s = b1[j];
    for (var k = 0u; k < p.c4; k++) {
      let x = ${io.load('pooled', 'row * p.c4 + k')};
      for (var m = 0u; m < 4u; m++) {
        let c = k * 4u + m;
        if (c < p.c) { s += w1[j * p.c + c] * x[m]; }
      }
    }
    v[l] = s;
  }
  ${io.store('h', 'i', 'v')}
}`;
}

/** relu(h) of hidden unit j of row `row` (scalar lane read from the vec4 layout). */
const HIDDEN_AT = (io: TensorAccess) => `fn hidden_at(row: u32, j: u32) -> f32 {
  return ${io.load('h', 'row * p.h4 + j / 4u')}[j % 4u];
}`;

/**
 * The channel gate g_c[n, c] = σ(Σ_b (b2[c] + Σ_j W2[c, j]·relu(h[n, b, j]))), [n, 1, 1, C] (mlp(avg) + mlp(max)).
 * One invocation per vec4 of channels; padded lanes 0.
 */
export function mlpGateWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c: u32, c4: u32, hidden: u32, h4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('h', 1, 'read')}
@group(0) @binding(2) var<storage, read> w2: array<f32>;
@group(0) @binding(3) var<storage, read> b2: array<f32>;
${io.declare('gate', 4, 'read_write')}

${SIGMOID}
${HIDDEN_AT(io)}

${linearEntry(WG)}
  let item = i / p.c4;
  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let c = (i % p.c4) * 4u + l;
    if (c >= p.c) { break; }
    var z = 0.0;
    for (var b = 0u; b < 2u; b++) {
      var s = b2[c];
      for (var j = 0u; j < p.hidden; j++) { s += w2[c * p.hidden + j] * max(hidden_at(item * 2u + b, j), 0.0); }
      z += s;
    }
    v[l] = sigmoid1(z);
  }
  ${io.store('gate', 'i', 'v')}
}`;
}

/** dz[n, c] = g[n, c]·(1 − σ)·σ, PyTorch's sigmoid backward, from the gate's gradient and the gate. */
const DZ_AT = (io: TensorAccess) => `fn dz_at(item: u32, c: u32) -> f32 {
  let k = item * p.c4 + c / 4u;
  let s = ${io.load('gate', 'k')}[c % 4u];
  return ${io.load('g_gate', 'k')}[c % 4u] * (1.0 - s) * s;
}`;

/**
 * dh[n, b, j] = [h > 0]·Σ_c W2[c, j]·dz[n, c] (both branches see the same dz), [n, 1, 2, hidden].
 * One invocation per vec4 of hidden units.
 */
export function mlpHiddenGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c: u32, c4: u32, hidden: u32, h4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('g_gate', 1, 'read')}
${io.declare('gate', 2, 'read')}
${io.declare('h', 3, 'read')}
@group(0) @binding(4) var<storage, read> w2: array<f32>;
${io.declare('dh', 5, 'read_write')}

${DZ_AT(io)}

${linearEntry(WG)}
  let row = i / p.h4;
  let item = row / 2u;
  let hv = ${io.load('h', 'i')};
  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let j = (i % p.h4) * 4u + l;
    if (j >= p.hidden) { break; }
    if (hv[l] <= 0.0) { continue; }
    var s = 0.0;
    for (var c = 0u; c < p.c; c++) { s += w2[c * p.hidden + j] * dz_at(item, c); }
    v[l] = s;
  }
  ${io.store('dh', 'i', 'v')}
}`;
}

/**
 * The MLP's parameter gradients, summed over images then branches (avg, max) in that order, overwriting:
 *   dW1[j, c] = Σ dh[n, b, j]·pooled[n, b, c]   db1[j] = Σ dh[n, b, j]
 *   dW2[c, j] = Σ dz[n, c]·relu(h[n, b, j])      db2[c] = Σ dz[n, c] (once per branch)
 * One invocation per parameter element, over the four tensors laid end to end.
 */
export function mlpParamGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c: u32, c4: u32, hidden: u32, h4: u32, items: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('g_gate', 1, 'read')}
${io.declare('gate', 2, 'read')}
${io.declare('h', 3, 'read')}
${io.declare('dh', 4, 'read')}
${io.declare('pooled', 5, 'read')}
@group(0) @binding(6) var<storage, read_write> dw1: array<f32>;
@group(0) @binding(7) var<storage, read_write> db1: array<f32>;
@group(0) @binding(8) var<storage, read_write> dw2: array<f32>;
@group(0) @binding(9) var<storage, read_write> db2: array<f32>;

${DZ_AT(io)}
${HIDDEN_AT(io)}
fn dh_at(row: u32, j: u32) -> f32 { return ${io.load('dh', 'row * p.h4 + j / 4u')}[j % 4u]; }
fn pooled_at(row: u32, c: u32) -> f32 { return ${io.load('pooled', 'row * p.c4 + c / 4u')}[c % 4u]; }

${linearEntry(WG)}
  let nw = p.hidden * p.c;
  var s = 0.0;
  if (i < nw) {
    let j = i / p.c;
    let c = i % p.c;
    for (var n = 0u; n < p.items; n++) {
      for (var b = 0u; b < 2u; b++) { s += dh_at(n * 2u + b, j) * pooled_at(n * 2u + b, c); }
    }
    dw1[i] = s;
  } else if (i < nw + p.hidden) {
    let j = i - nw;
    for (var n = 0u; n < p.items; n++) {
      for (var b = 0u; b < 2u; b++) { s += dh_at(n * 2u + b, j); }
    }
    db1[j] = s;
  } else if (i < 2u * nw + p.hidden) {
    let k = i - nw - p.hidden;
    let c = k / p.hidden;
    let j = k % p.hidden;
    for (var n = 0u; n < p.items; n++) {
      let dz = dz_at(n, c);
      for (var b = 0u; b < 2u; b++) { s += dz * max(hidden_at(n * 2u + b, j), 0.0); }
    }
    dw2[k] = s;
  } else {
    let c = i - 2u * nw - p.hidden;
    for (var n = 0u; n < p.items; n++) {
      let dz = dz_at(n, c);
      s += dz;
      s += dz;
    }
    db2[c] = s;
  }
}`;
}

/** dpooled[n, b, c] = Σ_j W1[j, c]·dh[n, b, j], [n, 1, 2, C]. One invocation per vec4 of channels. */
export function mlpInputGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c: u32, c4: u32, hidden: u32, h4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('dh', 1, 'read')}
@group(0) @binding(2) var<storage, read> w1: array<f32>;
${io.declare('dpooled', 3, 'read_write')}

fn dh_at(row: u32, j: u32) -> f32 { return ${io.load('dh', 'row * p.h4 + j / 4u')}[j % 4u]; }

${linearEntry(WG)}
  let row = i / p.c4;
  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    let c = (i % p.c4) * 4u + l;
    if (c >= p.c) { break; }
    var s = 0.0;
    for (var j = 0u; j < p.hidden; j++) { s += w1[j * p.c + c] * dh_at(row, j); }
    v[l] = s;
  }
  ${io.store('dpooled', 'i', 'v')}
}`;
}

/**
 * Split-K pass 1 over the pixels of each image, one invocation per (image, chunk, vec4 of channels), summing its
 * chunk's pixels in order into partial[n, chunk, 0, :]:
 *   'product': Σ a·b (a channel gate's gradient, Σ_p g·x)
 *   'ties':    Σ [a == max[n, c]] (how many pixels hold the maximum, for amax's even split)
 */
export function pixelPartialsWgsl(term: 'product' | 'ties', io: TensorAccess = WHOLE_BINDINGS): string {
  const second = term === 'product' ? io.declare('b', 2, 'read') : io.declare('pooled', 2, 'read');
  const add =
    term === 'product'
      ? `s += ${io.load('a', 'base + q * p.c4')} * ${io.load('b', 'base + q * p.c4')};`
      : `s += select(vec4<f32>(0.0), vec4<f32>(1.0), ${io.load('a', 'base + q * p.c4')} == mx);`;
  return `struct Params { count: u32, c4: u32, pixels: u32, chunk: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${second}
${io.declare('partial', 3, 'read_write')}

${linearEntry(WG)}
  let k = i % p.c4;
  let chunk = (i / p.c4) % p.chunks;
  let item = i / (p.c4 * p.chunks);
  let first = chunk * p.chunk;
  let last = min(first + p.chunk, p.pixels);
  let base = (item * p.pixels + first) * p.c4 + k;
  ${term === 'ties' ? `let mx = ${io.load('pooled', '(item * 2u + 1u) * p.c4 + k')};` : ''}
  var s = vec4<f32>(0.0);
  for (var q = 0u; q < last - first; q++) {
    ${add}
  }
  ${io.store('partial', 'i', 's')}
}`;
}

/** Split-K pass 2: out[n, 0, 0, :] = Σ_chunk partial[n, chunk, 0, :] in chunk order; padded lanes 0. */
export function sumChunksWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, chunks: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('partial', 1, 'read')}
${io.declare('y', 2, 'read_write')}

${linearEntry(WG)}
  let k = i % p.c4;
  let item = i / p.c4;
  var s = vec4<f32>(0.0);
  for (var q = 0u; q < p.chunks; q++) { s += ${io.load('partial', '(item * p.chunks + q) * p.c4 + k')}; }
  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  ${io.store('y', 'i', 'select(vec4<f32>(0.0), s, lane < vec4<u32>(p.c))')}
}`;
}

/**
 * dx of [mean over pixels, amax over pixels] (globalAvgMaxPool): dx = dAvg/(h·w) + [x == max]·dMax/ties, PyTorch's
 * mean backward and amax's even split of the gradient among tied maxima. One invocation per vec4 of x.
 */
export function avgMaxPoolGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, pixels: u32, c: u32, plane: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('dpooled', 1, 'read')}
${io.declare('x', 2, 'read')}
${io.declare('pooled', 3, 'read')}
${io.declare('ties', 4, 'read')}
${io.declare('dx', 5, 'read_write')}

${linearEntry(WG)}
  let k = i % p.c4;
  let item = i / (p.pixels * p.c4);
  let row = item * 2u * p.c4 + k;
  let d_avg = ${io.load('dpooled', 'row')};
  let d_max = ${io.load('dpooled', 'row + p.c4')};
  let at_max = ${io.load('x', 'i')} == ${io.load('pooled', 'row + p.c4')};
  let share = d_max / max(${io.load('ties', 'item * p.c4 + k')}, vec4<f32>(1.0));
  let v = d_avg / p.plane + select(vec4<f32>(0.0), share, at_max);
  let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  ${io.store('dx', 'i', 'select(vec4<f32>(0.0), v, lane < vec4<u32>(p.c))')}
}`;
}

/**
 * dx of channelMeanMax (cat(x.mean(1), x.amax(1))) from its gradient d[n, h, w, 2]: dx = d_mean/C + [x == max]·
 * d_max/ties, the maximum and its ties over the C logical channels of the pixel. One invocation per pixel.
 */
export function channelMeanMaxGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, c: u32, channels: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('d', 1, 'read')}
${io.declare('x', 2, 'read')}
${io.declare('dx', 3, 'read_write')}

${linearEntry(WG)}
  let base = i * p.c4;
  var mx = -3.0e38;
  for (var k = 0u; k < p.c4; k++) {
    let v = ${io.load('x', 'base + k')};
    for (var l = 0u; l < 4u; l++) { if (k * 4u + l < p.c) { mx = max(mx, v[l]); } }
  }
  var ties = 0.0;
  for (var k = 0u; k < p.c4; k++) {
    let v = ${io.load('x', 'base + k')};
    for (var l = 0u; l < 4u; l++) { if (k * 4u + l < p.c && v[l] == mx) { ties += 1.0; } }
  }
  let g = ${io.load('d', 'i')};
  let d_mean = g.x / p.channels;
  let share = g.y / ties;
  for (var k = 0u; k < p.c4; k++) {
    let v = ${io.load('x', 'base + k')};
    let lane = k * 4u + vec4<u32>(0u, 1u, 2u, 3u);
    let out = vec4<f32>(d_mean) + select(vec4<f32>(0.0), vec4<f32>(share), v == vec4<f32>(mx));
    ${io.store('dx', 'base + k', 'select(vec4<f32>(0.0), out, lane < vec4<u32>(p.c))')}
  }
}`;
}

/**
 * Backward of y = x·s with a per-pixel s [n, h, w, 1]: dx = g·s and ds = Σ_c g·x (over the pixel's channels,
 * padded lanes 0 in both). One invocation per pixel.
 */
export function pixelGateGradWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('g', 1, 'read')}
${io.declare('x', 2, 'read')}
${io.declare('gate', 3, 'read')}
${io.declare('dx', 4, 'read_write')}
${io.declare('dgate', 5, 'read_write')}

${linearEntry(WG)}
  let base = i * p.c4;
  let s = ${io.load('gate', 'i')}.x;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < p.c4; k++) {
    let g = ${io.load('g', 'base + k')};
    ${io.store('dx', 'base + k', 'g * s')}
    acc += g * ${io.load('x', 'base + k')};
  }
  ${io.store('dgate', 'i', 'vec4<f32>((acc.x + acc.y) + (acc.z + acc.w), 0.0, 0.0, 0.0)')}
}`;
}
