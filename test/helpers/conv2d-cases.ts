import type { Activation } from '../../src/kernels/activation';
import { type Conv2dVariant, selectConv2dVariant } from '../../src/kernels/conv2d-variants';
import { variantTags } from '../../src/kernels/conv2d.wgsl';
import { CONV2D_TEST_VARIANTS, HARDWARE, SOFTWARE } from './test-variants';

/** The conv2d kernel cases, shared by the Node test (test/kernels) and the Chromium run (test/browser). */
export interface Conv2dCase {
  n?: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  k: [number, number];
  stride?: number;
  pad?: [number, number];
  dilation?: number;
  /** PyTorch groups (default 1); groups = cin = cout selects the depthwise kernel. */
  groups?: number;
  bias?: boolean;
  act?: Activation;
}

export const CONV2D_CASES: [string, Conv2dCase][] = [
  ['1x1 image, 3x3, 1→1', { cin: 1, cout: 1, h: 1, w: 1, k: [3, 3] }],
  ['7x13, 3x3, 1→64 relu', { cin: 1, cout: 64, h: 7, w: 13, k: [3, 3], act: { kind: 'relu' } }],
  ['7x13, 3x3, 64→1', { cin: 64, cout: 1, h: 7, w: 13, k: [3, 3] }],
  ['33x47, 3x3, 3→3', { cin: 3, cout: 3, h: 33, w: 47, k: [3, 3] }],
  ['33x47, 3x3, 64→64 relu', { cin: 64, cout: 64, h: 33, w: 47, k: [3, 3], act: { kind: 'relu' } }],
  ['9x11, 3x3, 5→7 no bias, batch 2', { n: 2, cin: 5, cout: 7, h: 9, w: 11, k: [3, 3], bias: false }],
  ['1x1 conv 13→6 sigmoid', { cin: 13, cout: 6, h: 5, w: 9, k: [1, 1], act: { kind: 'sigmoid' } }],
  ['2x2 stride 2, 8→16', { cin: 8, cout: 16, h: 10, w: 14, k: [2, 2], stride: 2, pad: [0, 0] }],
  ['7x7 stride 2 pad 3, 3→8', { cin: 3, cout: 8, h: 17, w: 19, k: [7, 7], stride: 2, pad: [3, 3] }],
  [
    '3x3 dilation 2, 4→4 leaky',
    { cin: 4, cout: 4, h: 12, w: 9, k: [3, 3], pad: [2, 2], dilation: 2, act: { kind: 'leakyRelu', alpha: 0.2 } },
  ],
  ['5x3 kernel, asym pad, 6→5 tanh', { cin: 6, cout: 5, h: 8, w: 11, k: [5, 3], pad: [2, 1], act: { kind: 'tanh' } }],
  ['3x3 gelu 4→8', { cin: 4, cout: 8, h: 6, w: 7, k: [3, 3], act: { kind: 'gelu' } }],
  ['3x3 sigmoid 5→3 (one padded lane)', { cin: 5, cout: 3, h: 6, w: 5, k: [3, 3], act: { kind: 'sigmoid' } }],
];

/** Output widths at which the software table's picks are collected (its tile depends on the width alone). */
const SELECTOR_WIDTHS = [3, 5, 8, 32, 50, 80, 128];

/**
 * Channel-lanes tiles that leave partial tiles and idle lanes (groups = 1 only): 2 rows × 3 pixels, 2 channel
 * vec4s per lane 8 apart.
 */
const CHANNEL_LANES_TEST_VARIANTS: Conv2dVariant[] = [
  { channelLanes: true, rows: 2, px: 3, cb: 2, workgroupSize: 8 },
  { channelLanes: true, rows: 1, px: 5, cb: 1, workgroupSize: 16 },
];

/** The fixed test variants plus what the selector picks on a software and a hardware adapter, deduplicated. */
export function conv2dVariantsFor(c: Conv2dCase): Conv2dVariant[] {
  const geometry = {
    inChannels: c.cin,
    outChannels: c.cout,
    kernelSize: c.k,
    stride: c.stride ?? 1,
    padding: [0, 0] as [number, number],
    dilation: c.dilation ?? 1,
    groups: c.groups ?? 1,
  };
  // Every tile the software table can pick (it depends on the output's shape), and the hardware pick.
  const software = SELECTOR_WIDTHS.map((w) => selectConv2dVariant(SOFTWARE, geometry, w));
  const lanes = (c.groups ?? 1) === 1 ? CHANNEL_LANES_TEST_VARIANTS : [];
  const all = [...CONV2D_TEST_VARIANTS, ...lanes, ...software, selectConv2dVariant(HARDWARE, geometry)];
  const seen = new Set<string>();
  return all.filter((v) => {
    const k = variantKey(v);
    return !seen.has(k) && seen.add(k) !== undefined;
  });
}

/** A variant's tags as in shader labels (`px16,cb4,wg64,uw,rr`, `cl,rows2,px3,cb2,wg8`). */
export function variantKey(v: Conv2dVariant): string {
  return variantTags(v);
}
