import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { linearEntry, range } from './wgsl-common';

/*
 * WGSL of the split-K weight gradient (conv-backward-split-k.ts). The gradient of a convolution's weight is a sum
 * over every pixel of a product of two tensors: an "anchor" A walked pixel by pixel, and a "shifted" B read at
 * pixel·stride − padding + tap·dilation. Conv2d: A = gy, B = x; ConvTranspose2d: A = x, B = gy. Pass 1 gives each
 * invocation one tap, a block of A channels, a block of B channels and one chunk of A's pixels, and writes its
 * partial sums; pass 2 adds the chunks' partials in chunk order and writes the PyTorch layout. No atomics: every
 * sum has one fixed order, so runs are bitwise reproducible.
 */

export const SPLIT_K_WORKGROUP = 64;

/** The A / B tile of pass 1: `ab` A channel vec4s × `bb` B channel vec4s (16·ab·bb products per pixel). */
export interface SplitKTile {
  ab: number;
  bb: number;
}

const SHIFT_PARAMS = `a_h: u32, a_w: u32, a_c4: u32, b_h: u32,
  b_w: u32, b_c4: u32, stride: i32, dilation: i32,
  pad_y: i32, pad_x: i32, kw: u32, taps: u32,
  chunk_pixels: u32, pixels: u32, count: u32,`;

/**
 * The walk over one chunk of A's pixels [p0, p1) for one tap: row by row, and within a row only the columns whose
 * shifted B column lies inside B (computed once per tap), so the innermost loop has no bounds test. `body` reads
 * A at `ai + …` and B at `bi + …` (vec4 indices of the pixel's first channel vec4).
 */
function chunkWalkWgsl(body: string): string {
  return `  let ky = tap / p.kw;
  let kx = tap % p.kw;
  let s = p.stride;
  let oy_off = i32(ky) * p.dilation - p.pad_y;
  let ox_off = i32(kx) * p.dilation - p.pad_x;
  // A columns ax with 0 <= ax·s + ox_off < b_w: [lo, hi).
  let lo = select(0u, u32((s - 1 - ox_off) / s), ox_off < 0);
  let hi_num = i32(p.b_w) - 1 - ox_off;
  let hi = select(0u, min(p.a_w, u32(hi_num / s) + 1u), hi_num >= 0);
  let p0 = chunk * p.chunk_pixels;
  let p1 = min(p0 + p.chunk_pixels, p.pixels);
  let bstep = u32(s) * p.b_c4;
  for (var row = p0 / p.a_w; row * p.a_w < p1; row++) {
    let n = row / p.a_h;
    let by = i32(row % p.a_h) * s + oy_off;
    if (by < 0 || by >= i32(p.b_h)) { continue; }
    let rs = row * p.a_w;
    let x0 = max(max(p0, rs) - rs, lo);
    let x1 = min(min(p1, rs + p.a_w) - rs, hi);
    if (x0 >= x1) { continue; }
    var ai = (rs + x0) * p.a_c4;
    var bi = ((n * p.b_h + u32(by)) * p.b_w + u32(i32(x0) * s + ox_off)) * p.b_c4;
    for (var ax = x0; ax < x1; ax++) {
${body}
      ai += p.a_c4;
      bi += bstep;
    }
  }`;
}

/**
 * Pass 1, dense or grouped (channels per group multiples of 4 unless groups = 1). Invocation index, fastest
 * first: B block (so neighbouring lanes read neighbouring B vec4s), A block (groups × blocks per group), tap,
 * chunk. Partial vec4 ((chunk·a_count + a)·taps + tap)·bg4 + b4 holds B channels b4·4 … b4·4+3 of A channel a.
 */
export function splitKPartialsWgsl(tile: SplitKTile, io: TensorAccess = WHOLE_BINDINGS): string {
  const { ab, bb } = tile;
  const as = range(ab);
  const bs = range(bb);
  const lanes = range(4);
  const comp = ['x', 'y', 'z', 'w'];
  const acc = (k: number, l: number, m: number) => `acc${k}_${l}_${m}`;
  const body: string[] = [];
  for (const k of as) body.push(`      let av${k} = ${io.load('a', `ai + a4_${k}`)};`);
  for (const m of bs) body.push(`      let bv${m} = ${io.load('b', `bi + b4_${m}`)};`);
  for (const k of as)
    for (const l of lanes)
      for (const m of bs) body.push(`      ${acc(k, l, m)} = fma(vec4<f32>(av${k}.${comp[l]}), bv${m}, ${acc(k, l, m)});`);
  const stores: string[] = [];
  for (const k of as) {
    stores.push(`  if (al0 + ${k}u < p.ag4) {`);
    for (const l of lanes) {
      stores.push(`    {
      let a = (grp * p.ag4 + al0 + ${k}u) * 4u + ${l}u;
      if (a < p.a_count) {
        let base = ((chunk * p.a_count + a) * p.taps + tap) * p.bg4 + bl0;`);
      for (const m of bs) stores.push(`        if (bl0 + ${m}u < p.bg4) { ${io.store('part', `base + ${m}u`, acc(k, l, m))} }`);
      stores.push('      }\n    }');
    }
    stores.push('  }');
  }
  return `struct Params {
  ${SHIFT_PARAMS}
  a_count: u32, ag4: u32, bg4: u32, a_blocks: u32,
  b_blocks: u32, ab_total: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('part', 3, 'read_write')}

${linearEntry(SPLIT_K_WORKGROUP)}
  let bblk = i % p.b_blocks;
  var r = i / p.b_blocks;
  let gab = r % p.ab_total;
  r = r / p.ab_total;
  let tap = r % p.taps;
  let chunk = r / p.taps;
  let grp = gab / p.a_blocks;
  let al0 = (gab % p.a_blocks) * ${ab}u;
  let bl0 = bblk * ${bb}u;
${as.map((k) => `  let a4_${k} = grp * p.ag4 + min(al0 + ${k}u, p.ag4 - 1u);`).join('\n')}
${bs.map((m) => `  let b4_${m} = grp * p.bg4 + min(bl0 + ${m}u, p.bg4 - 1u);`).join('\n')}
${as.flatMap((k) => lanes.flatMap((l) => bs.map((m) => `  var ${acc(k, l, m)} = vec4<f32>(0.0);`))).join('\n')}
${chunkWalkWgsl(body.join('\n'))}
${stores.join('\n')}
}`;
}

/**
 * Pass 1, depthwise (A and B share their C channels): invocation index channel vec4, tap, chunk; partial vec4
 * (chunk·taps + tap)·c4 + c holds channels c·4 … c·4+3.
 */
export function splitKDepthwisePartialsWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params {
  ${SHIFT_PARAMS}
}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('a', 1, 'read')}
${io.declare('b', 2, 'read')}
${io.declare('part', 3, 'read_write')}

${linearEntry(SPLIT_K_WORKGROUP)}
  let c = i % p.a_c4;
  let r = i / p.a_c4;
  let tap = r % p.taps;
  let chunk = r / p.taps;
  var acc = vec4<f32>(0.0);
${chunkWalkWgsl(`      acc = fma(${io.load('a', 'ai + c')}, ${io.load('b', 'bi + c')}, acc);`)}
  ${io.store('part', '(chunk * p.taps + tap) * p.a_c4 + c', 'acc')}
}`;
}

/** Pass 1 of a bias gradient: partial vec4 chunk·c4 + c = Σ over the chunk's pixels of channel vec4 c of `t`. */
export function channelSumPartialsWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { c4: u32, chunk_pixels: u32, pixels: u32, count: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('t', 1, 'read')}
${io.declare('part', 2, 'read_write')}

${linearEntry(SPLIT_K_WORKGROUP)}
  let c = i % p.c4;
  let chunk = i / p.c4;
  let p0 = chunk * p.chunk_pixels;
  let p1 = min(p0 + p.chunk_pixels, p.pixels);
  var acc = vec4<f32>(0.0);
  for (var q = p0; q < p1; q++) {
    acc += ${io.load('t', 'q * p.c4 + c')};
  }
  ${io.store('part', 'chunk * p.c4 + c', 'acc')}
}`;
}

/**
 * Pass 2: item i (of `count` per chunk) = Σ over chunks, in chunk order, of partial vec4 chunk·count + i; item
 * i = (u·taps + t)·l4 + q holds lanes q·4 … q·4+3 of the flat PyTorch gradient at (u·lc + lane)·taps + t, for
 * the `lc` real lanes.
 */
export function splitKReduceWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const lanes = range(4).map((j) => `  if (q * 4u + ${j}u < p.lc) { out[(u * p.lc + q * 4u + ${j}u) * p.taps + t] = acc[${j}]; }`);
  return `struct Params { count: u32, chunks: u32, taps: u32, l4: u32, lc: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('part', 1, 'read')}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

${linearEntry(SPLIT_K_WORKGROUP)}
  var acc = vec4<f32>(0.0);
  for (var c = 0u; c < p.chunks; c++) {
    acc += ${io.load('part', 'c * p.count + i')};
  }
  let q = i % p.l4;
  let r = i / p.l4;
  let t = r % p.taps;
  let u = r / p.taps;
${lanes.join('\n')}
}`;
}
