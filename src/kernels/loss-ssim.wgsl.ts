import type { TensorAccess } from '../gpu/tensor-access';
import { REAL_LANES_WGSL } from './reduce';
import { linearEntry } from './wgsl-common';

/**
 * WGSL of the SSIM loss (loss-ssim.ts). Every item is one vec4 channel group of one pixel; each loops over the
 * window's taps in order, the weights written into the text as literals (WGSL rounds each to the nearest f32), so
 * the weights are part of every shader key.
 *
 * Layouts (c4 = vec4 channel groups of the images, oh = H − K + 1, ow = W − K + 1):
 * - `stats`  [N, H, ow, 5·4·c4]: the horizontal pass; groups [0, c4) hold Σ w·x, then Σ w·y, Σ w·x², Σ w·y², Σ w·xy;
 * - `terms`  [N, oh, ow, 3·4·c4]: per valid position, ∂L/∂μx, ∂L/∂E[x²], ∂L/∂E[xy] (the loss's scale included);
 * - `cols`   [N, H, ow, 3·4·c4]: `terms` after the vertical adjoint.
 */

export const SSIM_WORKGROUP = 64;
export const STAT_COUNT = 5;
export const TERM_COUNT = 3;

/** `f32(v)` with all the digits of the float64 weight. */
function literal(v: number): string {
  return `f32(${v.toPrecision(17)})`;
}

/** The window as a module-scope array: a loop over it compiled about twice as fast as unrolled taps on lavapipe. */
export function ssimWindowWgsl(weights: readonly number[]): string {
  return `var<private> gauss: array<f32, ${weights.length}> = array<f32, ${weights.length}>(${weights.map(literal).join(', ')});`;
}

/**
 * Pass (a), horizontal: for each input row and valid column ox, the window sums over columns ox … ox + K − 1 of the
 * five products (pytorch-msssim filters x, y, x², y², xy; the squares are formed per pixel before filtering).
 */
export function ssimStatsWgsl(weights: readonly number[], io: TensorAccess): string {
  return `struct Params { count: u32, w: u32, ow: u32, c4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('pred', 1, 'read')}
${io.declare('truth', 2, 'read')}
${io.declare('stats', 3, 'read_write')}
${ssimWindowWgsl(weights)}

${linearEntry(SSIM_WORKGROUP)}
  let g = i % p.c4;
  let pix = i / p.c4;
  let ox = pix % p.ow;
  let image_row = pix / p.ow;
  let left = (image_row * p.w + ox) * p.c4 + g;
  var sx = vec4<f32>(0.0);
  var sy = vec4<f32>(0.0);
  var sxx = vec4<f32>(0.0);
  var syy = vec4<f32>(0.0);
  var sxy = vec4<f32>(0.0);
  for (var k = 0u; k < ${weights.length}u; k++) {
    let wk = gauss[k];
    let x = ${io.load('pred', 'left + k * p.c4')};
    let y = ${io.load('truth', 'left + k * p.c4')};
    sx += wk * x;
    sy += wk * y;
    sxx += wk * (x * x);
    syy += wk * (y * y);
    sxy += wk * (x * y);
  }
  let out = pix * ${STAT_COUNT}u * p.c4 + g;
  ${io.store('stats', 'out', 'sx')}
  ${io.store('stats', 'out + p.c4', 'sy')}
  ${io.store('stats', 'out + 2u * p.c4', 'sxx')}
  ${io.store('stats', 'out + 3u * p.c4', 'syy')}
  ${io.store('stats', 'out + 4u * p.c4', 'sxy')}
}`;
}

/**
 * Pass (b), a reduction body (reduce.ts) over the flat vec4 items `i` of the [N, oh, ow, C] map: the vertical
 * filter of `stats` gives μx, μy, E[x²], E[y²], E[xy]; then S and the three partial derivatives of the loss,
 * written to `terms`; the item's term is 1 − S on real lanes. The derivatives (training.md §2.3), rewritten so
 * that nothing divides by A1 or A2 (A2 = 2σxy + C2 may vanish for anti-correlated windows), with D = 1/(B1·B2):
 *   ∂S/∂μx = 2D·(μy·(A2 − A1) + μx·S·(B1 − B2)),  ∂S/∂E[x²] = −S/B2,  ∂S/∂E[xy] = 2·A1·D;
 * each times `p.coef` = −weight / (positions counted), the derivative of weight·(1 − mean S) by one S.
 */
export function ssimMapStatements(weights: readonly number[], io: TensorAccess): string {
  return `let q_g = i % p.c4;
      let q_pix = i / p.c4;
      let q_ox = q_pix % p.ow;
      let q_oy = (q_pix / p.ow) % p.oh;
      let q_n = q_pix / (p.ow * p.oh);
      let q_top = ((q_n * p.h + q_oy) * p.ow + q_ox) * ${STAT_COUNT}u * p.c4 + q_g;
      let q_step = p.ow * ${STAT_COUNT}u * p.c4;
      var mx = vec4<f32>(0.0);
      var my = vec4<f32>(0.0);
      var exx = vec4<f32>(0.0);
      var eyy = vec4<f32>(0.0);
      var exy = vec4<f32>(0.0);
      for (var k = 0u; k < ${weights.length}u; k++) {
        let wk = gauss[k];
        let at = q_top + k * q_step;
        mx += wk * ${io.load('stats', 'at')};
        my += wk * ${io.load('stats', 'at + p.c4')};
        exx += wk * ${io.load('stats', 'at + 2u * p.c4')};
        eyy += wk * ${io.load('stats', 'at + 3u * p.c4')};
        exy += wk * ${io.load('stats', 'at + 4u * p.c4')};
      }
      // Population (co)variances, as pytorch-msssim: E[xy] − μxμy, not clamped.
      let a1 = 2.0 * mx * my + p.c1;
      let a2 = 2.0 * (exy - mx * my) + p.c2;
      let b1 = mx * mx + my * my + p.c1;
      let b2 = (exx - mx * mx) + (eyy - my * my) + p.c2;
      let inv = 1.0 / (b1 * b2);
      let s = a1 * a2 * inv;
      let real = ${REAL_LANES_WGSL};
      let zero = vec4<f32>(0.0);
      let d_mu = select(zero, 2.0 * inv * (my * (a2 - a1) + mx * s * (b1 - b2)) * p.coef, real);
      let d_xx = select(zero, -s / b2 * p.coef, real);
      let d_xy = select(zero, 2.0 * a1 * inv * p.coef, real);
      let q_out = q_pix * ${TERM_COUNT}u * p.c4 + q_g;
      ${io.store('terms', 'q_out', 'd_mu')}
      ${io.store('terms', 'q_out + p.c4', 'd_xx')}
      ${io.store('terms', 'q_out + 2u * p.c4', 'd_xy')}
      term = select(zero, 1.0 - s, real);`;
}

/**
 * Pass (c1), the adjoint of the vertical filter (a full correlation): input row y gathers the terms of the valid
 * rows oy = y − k (0 ≤ oy < oh) with weight w[k], in order of k.
 */
export function ssimColumnsAdjointWgsl(weights: readonly number[], io: TensorAccess): string {
  return `struct Params { count: u32, h: u32, oh: u32, ow: u32, c4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('terms', 1, 'read')}
${io.declare('cols', 2, 'read_write')}
${ssimWindowWgsl(weights)}

${linearEntry(SSIM_WORKGROUP)}
  let g = i % p.c4;
  let pix = i / p.c4;
  let ox = pix % p.ow;
  let y = (pix / p.ow) % p.h;
  let n = pix / (p.ow * p.h);
  var t_mu = vec4<f32>(0.0);
  var t_xx = vec4<f32>(0.0);
  var t_xy = vec4<f32>(0.0);
  for (var k = 0u; k < ${weights.length}u; k++) {
    if (y >= k && y - k < p.oh) {
      let wk = gauss[k];
      let at = ((n * p.oh + y - k) * p.ow + ox) * ${TERM_COUNT}u * p.c4 + g;
      t_mu += wk * ${io.load('terms', 'at')};
      t_xx += wk * ${io.load('terms', 'at + p.c4')};
      t_xy += wk * ${io.load('terms', 'at + 2u * p.c4')};
    }
  }
  let out = pix * ${TERM_COUNT}u * p.c4 + g;
  ${io.store('cols', 'out', 't_mu')}
  ${io.store('cols', 'out + p.c4', 't_xx')}
  ${io.store('cols', 'out + 2u * p.c4', 't_xy')}
}`;
}

/**
 * Pass (c2), the adjoint of the horizontal filter, then the chain rule through the filtered products:
 *   ∂L/∂x = Gᵀ(∂L/∂μx) + 2x·Gᵀ(∂L/∂E[x²]) + y·Gᵀ(∂L/∂E[xy]),
 * written for every pixel of pred, padded lanes 0.
 */
export function ssimGradientWgsl(weights: readonly number[], io: TensorAccess): string {
  return `struct Params { count: u32, w: u32, ow: u32, c4: u32, c_real: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('cols', 1, 'read')}
${io.declare('pred', 2, 'read')}
${io.declare('truth', 3, 'read')}
${io.declare('grad', 4, 'read_write')}
${ssimWindowWgsl(weights)}

${linearEntry(SSIM_WORKGROUP)}
  let g = i % p.c4;
  let pix = i / p.c4;
  let x = pix % p.w;
  let image_row = pix / p.w;
  var t_mu = vec4<f32>(0.0);
  var t_xx = vec4<f32>(0.0);
  var t_xy = vec4<f32>(0.0);
  for (var k = 0u; k < ${weights.length}u; k++) {
    if (x >= k && x - k < p.ow) {
      let wk = gauss[k];
      let at = (image_row * p.ow + x - k) * ${TERM_COUNT}u * p.c4 + g;
      t_mu += wk * ${io.load('cols', 'at')};
      t_xx += wk * ${io.load('cols', 'at + p.c4')};
      t_xy += wk * ${io.load('cols', 'at + 2u * p.c4')};
    }
  }
  let value = t_mu + 2.0 * ${io.load('pred', 'i')} * t_xx + ${io.load('truth', 'i')} * t_xy;
  ${io.store('grad', 'i', `select(vec4<f32>(0.0), value, ${REAL_LANES_WGSL})`)}
}`;
}
