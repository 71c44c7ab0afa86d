import { bindingsWgsl, channelPrologueWgsl, type Conv2dShaderKey, epilogueTags, storeWgsl, variantTags } from './conv2d.wgsl';
import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import type { Conv2dVariant } from './conv2d-variants';
import { range } from './wgsl-common';

/**
 * The channel-lanes convolution (`Conv2dVariant.channelLanes`, groups = 1): a workgroup owns one output tile of
 * `rows` × `px` pixels and `workgroupSize · cb` output channel vec4s; invocation `lid` computes channel vec4s
 * `base + k·workgroupSize + lid` (k < cb) for every pixel of the tile.
 *
 * Why: on a CPU adapter a workgroup runs as SIMD lanes, and a load whose address is the same in every lane is
 * one scalar load, while a per-lane address is a gather. The pixel-tile kernel (conv2d.wgsl.ts) makes weights
 * uniform and gathers inputs; it needs many pixel tiles to fill its lanes, which small feature maps (a U-Net's
 * 5×4 bottleneck, ResNet's last stage) do not have. Here the inputs are uniform and the lanes are output
 * channels, which such layers have in abundance.
 */
export function conv2dLanesWgsl(key: Conv2dShaderKey, v: Conv2dVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  const S = key.stride ?? 1;
  const D = key.dilation ?? 1;
  const R = v.rows ?? 1;
  const P = v.px;
  const pxs = range(P);
  const rs = range(R);
  const ks = range(v.cb);
  const cols = [...new Set(pxs.flatMap((i) => range(key.kernelW).map((kx) => i * S + kx * D)))].sort((a, b) => a - b);
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  const acc = (r: number, i: number, k: number) => `acc${r}_${i}_${k}`;

  emit(`struct Params {
  n: u32, h: u32, w: u32, cin4: u32,
  ho: u32, wo: u32, cout4: u32, cout: u32,
  pad_y: i32, pad_x: i32, tiles_x: u32, tiles_y: u32,
  chan_wgs: u32, out_c4_offset: u32, out_c4_total: u32, alpha: f32,
  scale: f32, res_c4_total: u32, cing4: u32,
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
  let wg_index = linear_workgroup_index(wid, nwg);
  let cw = wg_index % p.chan_wgs;
  var r = wg_index / p.chan_wgs;
  let tx = r % p.tiles_x;
  r = r / p.tiles_x;
  let ty = r % p.tiles_y;
  let n = r / p.tiles_y;
  if (n >= p.n) { return; }
  let ox0 = tx * ${P}u;
  let oy0 = ty * ${R}u;
  let wrow = p.cout4 * 4u;
  let ixb = i32(ox0 * ${S}u) - p.pad_x;
  let iyb = i32(oy0 * ${S}u) - p.pad_y;`);
  for (const k of ks) {
    emit(`  let co${k} = cw * (WG * ${v.cb}u) + ${k}u * WG + lid;`);
    // Lanes past the last channel vec4 load the last one's weights (in bounds) and store nothing.
    emit(`  let wco${k} = min(co${k}, p.cout4 - 1u) * 4u;`);
  }
  for (const t of cols) {
    emit(`  let ok${t} = ixb + ${t} >= 0 && ixb + ${t} < i32(p.w);`);
    emit(`  let ix${t} = u32(select(0, ixb + ${t}, ok${t}));`);
  }
  for (const r of rs) for (const i of pxs) for (const k of ks) emit(`  var ${acc(r, i, k)} = vec4<f32>(0.0);`);
  emit('  for (var ky = 0u; ky < KH; ky++) {');
  for (const r of rs) {
    emit(`    let iy${r} = iyb + i32(${r * S}u + ky * ${D}u);`);
    emit(`    let rok${r} = iy${r} >= 0 && iy${r} < i32(p.h);`);
    emit(`    let rb${r} = (n * p.h + u32(select(0, iy${r}, rok${r}))) * p.w;`);
  }
  emit('    for (var ci = 0u; ci < p.cing4; ci++) {');
  for (const kx of range(key.kernelW)) {
    emit(`      {
        let wi = ((ky * KW + ${kx}u) * p.cing4 + ci) * wrow;`);
    for (const k of ks) for (const j of range(4)) emit(`        let w${k}_${j} = weight[wi + wco${k} + ${j}u];`);
    for (const r of rs) {
      for (const i of pxs) {
        const t = i * S + kx * D;
        emit(`        {
          let xv = select(vec4<f32>(0.0), ${io.load('x', `(rb${r} + ix${t}) * p.cin4 + ci`)}, rok${r} && ok${t});`);
        for (const k of ks) {
          const a = acc(r, i, k);
          emit(`          ${a} = ${a} + w${k}_0 * xv.x + w${k}_1 * xv.y + w${k}_2 * xv.z + w${k}_3 * xv.w;`);
        }
        emit('        }');
      }
    }
    emit('      }');
  }
  emit(`    }
  }`);
  for (const k of ks) {
    emit(`  if (co${k} < p.cout4) {
    let co = co${k};`);
    emit(channelPrologueWgsl(key, key.maskChannels, '    '));
    for (const r of rs) {
      for (const i of pxs) {
        emit(`    if (oy0 + ${r}u < p.ho && ox0 + ${i}u < p.wo) {`);
        emit(storeWgsl(key, io, key.maskChannels, acc(r, i, k), `(n * p.ho + oy0 + ${r}u) * p.wo + ox0 + ${i}u`, '      '));
        emit('    }');
      }
    }
    emit('  }');
  }
  emit('}');
  return lines.join('\n');
}

export function conv2dLanesLabel(key: Conv2dShaderKey, v: Conv2dVariant): string {
  return `conv2d[k${key.kernelH}x${key.kernelW},s${key.stride ?? 1},d${key.dilation ?? 1},${variantTags(v)},${epilogueTags(key)}${
    key.maskChannels ? ',mask' : ''
  }]`;
}
