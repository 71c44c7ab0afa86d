import { describe, expect, it } from 'vitest';
import { placedExtent, shareOf } from '../../src/gpu/cost';
import { Graph, type GraphCost, graphCost, type TensorValue } from '../../src/gpu/graph';
import { concatChannels } from '../../src/kernels/concat';
import { conv2d } from '../../src/kernels/conv2d';
import type { Conv2dGeometry } from '../../src/kernels/conv2d-geometry';
import { convTranspose2d } from '../../src/kernels/conv-transpose2d';
import { binary } from '../../src/kernels/elementwise';
import { crop2d, pad2d } from '../../src/kernels/pad';
import { applyGates, channelGate } from '../../src/kernels/gates';
import { layerNorm } from '../../src/kernels/layernorm';
import { maxPool2d } from '../../src/kernels/pool';
import { windowAttention } from '../../src/kernels/window-attention';
import { type Module, foldBatchNorms, namedParameters } from '../../src/layers/module';
import { DnCNN } from '../../src/models/dncnn';
import { DnCNNVariant } from '../../src/models/dncnn-variants';
import { MSRResNet } from '../../src/models/msrresnet';
import type { Network } from '../../src/models/network';
import { ResNet34UNet, resnet34UNetConfig } from '../../src/models/resnet34-unet';
import { RRDBNet } from '../../src/models/rrdbnet';
import { SCUNet } from '../../src/models/scunet';
import { SINSR, SINSR_ARCH7 } from '../../src/models/sinsr';
import { SRResNet } from '../../src/models/srresnet';
import { UNet } from '../../src/models/unet';
import { getTestContext } from '../helpers/gpu';
import { ForwardBuilder } from '../../src/layers/forward-builder';

/**
 * Counted FLOPs and minimum bytes (src/gpu/cost.ts). Kernel cases compare with formulas written out here from
 * the definitions (2 FLOPs per multiply-add, f32 logical channels, inputs/weights/outputs once) on odd shapes;
 * building a graph needs no GPU, so the weight buffers are stand-ins that only have a size. The network cases
 * build every network's graph (weights uploaded, nothing compiled or run) and require a cost on every dispatch.
 */

/** A constant buffer stand-in: graph building only reads `size` (in some kernels' checks). */
const buffer = (size = 1 << 20) => ({ size }) as unknown as GPUBuffer;
const F32 = 4;
const single = (g: Graph) => {
  expect(g.nodes).toHaveLength(1);
  return g.nodes[0].cost!;
};
const VARIANT = { px: 3, cb: 2, workgroupSize: 64 };

describe('kernel costs', () => {
  it('conv2d: 2·Cin·kH·kW·Cout·Ho·Wo FLOPs; input, weights, bias, output once', () => {
    const g = new Graph();
    const x = g.input([2, 7, 9, 6]);
    const geometry: Conv2dGeometry = { inChannels: 6, outChannels: 10, kernelSize: [3, 2], stride: 2, padding: [1, 0], dilation: 1 };
    conv2d(g, x, { weight: buffer(), bias: buffer(), geometry, variant: VARIANT, label: 'c' }, { activation: { kind: 'relu' } });
    // Ho = ⌊(7 + 2 − 2 − 1)/2⌋ + 1 = 4, Wo = ⌊(9 − 1 − 1)/2⌋ + 1 = 4.
    expect(single(g)).toEqual({
      flops: 2 * 6 * 3 * 2 * 10 * (2 * 4 * 4),
      bytes: (2 * 7 * 9 * 6 + 10 * 6 * 3 * 2 + 10 + 2 * 4 * 4 * 10) * F32,
    });
  });

  it('grouped and depthwise conv2d count Cin/groups per output; a residual and PReLU slopes are read', () => {
    const g = new Graph();
    const x = g.input([1, 5, 11, 16]);
    const res = g.input([1, 5, 11, 8], 'res');
    const grouped: Conv2dGeometry = {
      inChannels: 16,
      outChannels: 8,
      kernelSize: [3, 3],
      stride: 1,
      padding: [1, 1],
      dilation: 1,
      groups: 2,
    };
    conv2d(
      g,
      x,
      { weight: buffer(), geometry: grouped, variant: VARIANT, label: 'grouped' },
      { prelu: buffer(), residual: { tensor: res, mode: 'afterActivation' } },
    );
    const y = g.input([1, 9, 13, 5], 'y');
    const depthwise: Conv2dGeometry = {
      inChannels: 5,
      outChannels: 5,
      kernelSize: [3, 3],
      stride: 2,
      padding: [1, 1],
      dilation: 2,
      groups: 5,
    };
    conv2d(g, y, { weight: buffer(), bias: buffer(), geometry: depthwise, variant: VARIANT, label: 'depthwise' });
    expect(g.nodes[0].cost).toEqual({
      flops: 2 * 8 * 9 * 8 * (5 * 11),
      bytes: (5 * 11 * 16 + 8 * 8 * 9 + 8 + 2 * 5 * 11 * 8) * F32,
    });
    // Ho = ⌊(9 + 2 − 4 − 1)/2⌋ + 1 = 4, Wo = ⌊(13 + 2 − 4 − 1)/2⌋ + 1 = 6; one input channel per output channel.
    expect(g.nodes[1].cost).toEqual({
      flops: 2 * 1 * 9 * 5 * (4 * 6),
      bytes: (9 * 13 * 5 + 5 * 9 + 5 + 4 * 6 * 5) * F32,
    });
  });

  it('conv2d reading a channel prefix and writing at a channel offset counts the channels it touches', () => {
    const g = new Graph();
    const wide = g.input([1, 3, 5, 20]);
    const out = g.tensor([1, 3, 5, 24], 'cat');
    const geometry: Conv2dGeometry = { inChannels: 12, outChannels: 7, kernelSize: [1, 1], stride: 1, padding: [0, 0], dilation: 1 };
    conv2d(g, wide, { weight: buffer(), geometry, variant: VARIANT, label: 'c', readInputPrefix: true }, { outChannelOffset: 16 }, out);
    expect(single(g)).toEqual({ flops: 2 * 12 * 7 * 15, bytes: (15 * 12 + 7 * 12 + 15 * 7) * F32 });
  });

  it('row bands of one conv2d sum to the unbanded cost', () => {
    const geometry: Conv2dGeometry = { inChannels: 5, outChannels: 6, kernelSize: [3, 3], stride: 1, padding: [1, 1], dilation: 1 };
    const build = (bindingLimits?: { maxBytes: number; align: number }) => {
      const g = new Graph();
      const x = g.input([1, 37, 11, 5]);
      const res = g.input([1, 37, 11, 6], 'res');
      conv2d(
        g,
        x,
        { weight: buffer(), bias: buffer(), geometry, variant: VARIANT, label: 'c', bindingLimits },
        { residual: { tensor: res, mode: 'beforeActivation' } },
      );
      return g;
    };
    const whole = build();
    const banded = build({ maxBytes: 11 * 8 * 4 * 6, align: 16 });
    expect(banded.nodes.length).toBeGreaterThan(3);
    const { flops, bytes } = graphCost(whole);
    expect(graphCost(banded)).toMatchObject({ flops, bytes });
    expect(graphCost(whole).flops).toBe(2 * 5 * 9 * 6 * 37 * 11);
    // Each band's share is proportional to its output rows (up to rounding).
    for (const node of banded.nodes) {
      const rows = node.uniforms.ho;
      expect(node.cost!.flops).toBeCloseTo((graphCost(whole).flops * rows) / 37, -1);
    }
  });

  it('convTranspose2d: 2·Cin·Cout·kH·kW per input pixel', () => {
    const g = new Graph();
    const x = g.input([1, 5, 7, 6]);
    const geometry = {
      inChannels: 6,
      outChannels: 3,
      kernelSize: [3, 3] as const,
      stride: 2,
      padding: [1, 1] as const,
      outputPadding: [1, 0] as const,
    };
    convTranspose2d(g, x, {
      weight: buffer(),
      bias: buffer(),
      geometry,
      variant: { algorithm: 'gather', px: 2, cb: 1, workgroupSize: 64 },
      label: 't',
    });
    // Ho = (5 − 1)·2 − 2 + 3 + 1 = 10, Wo = (7 − 1)·2 − 2 + 3 = 13.
    expect(single(g)).toEqual({ flops: 2 * 6 * 3 * 9 * 35, bytes: (35 * 6 + 6 * 3 * 9 + 3 + 10 * 13 * 3) * F32 });
  });

  it('window attention: QKᵀ + AV (4·T²·d), 5·T² for bias and softmax, 2·T·d for scaling, per window and head', () => {
    const g = new Graph();
    const qkv = g.input([1, 16, 24, 3 * 2 * 32]);
    windowAttention(g, qkv, { bias: buffer(), heads: 2, shifted: true, variant: { mode: 'direct', rows: 2 }, label: 'a' });
    const perHead = 4 * 64 * 64 * 32 + 5 * 64 * 64 + 2 * 64 * 32;
    expect(single(g)).toEqual({ flops: 6 * 2 * perHead, bytes: (16 * 24 * 192 + 2 * 15 * 15 + 16 * 24 * 64) * F32 });
  });

  it('copies read only what reaches the output: a crop reads its window, a placed concatenation its overlap', () => {
    const g = new Graph();
    const x = g.input([1, 7, 9, 5]);
    crop2d(g, x, { y0: 1, x0: 2, h: 4, w: 5 }, 'crop');
    pad2d(g, x, { top: 2, bottom: 1, left: 0, right: 3 }, 'reflect', 'pad');
    const small = g.input([1, 5, 6, 3], 'small');
    const skip = g.input([1, 9, 11, 5], 'skip');
    // small upsampled ×2 to 10×12, placed at (−1, +1) in a 9×11 output: all 5 rows reach it (rows −1…8), but
    // only columns 0…4 (column 5 would land on 11 and 12).
    concatChannels(g, small, skip, { size: [9, 11], first: { top: -1, left: 1, scale: 2 } }, 'cat');
    expect(g.nodes.map((n) => n.cost)).toEqual([
      { flops: 0, bytes: 2 * (4 * 5 * 5) * F32 },
      { flops: 0, bytes: (7 * 9 * 5 + 10 * 12 * 5) * F32 },
      { flops: 0, bytes: (5 * 5 * 3 + 9 * 11 * 5 + 9 * 11 * 8) * F32 },
    ]);
    expect(placedExtent(6, 11, 1, 2)).toBe(5);
    expect(placedExtent(7, 4, -1)).toBe(4);
    expect(placedExtent(3, 2, 5)).toBe(0);
  });

  it('elementwise, pooling, LayerNorm and SCSE gates', () => {
    const g = new Graph();
    const a = g.input([1, 5, 7, 3]);
    const b = g.input([1, 5, 7, 3], 'b');
    binary(g, 'mul', a, b, 'mul');
    maxPool2d(g, a, { kernel: 3, stride: 2, padding: 1 }, 'pool');
    const x = g.input([2, 3, 5, 10], 'x');
    layerNorm(g, x, { params: buffer(), label: 'ln' });
    const gate = channelGate(g, x, { weights: buffer(), hidden: 3, label: 'se' });
    applyGates(g, x, gate, { spatialGate: buffer(), label: 'scse' });
    const px = 2 * 3 * 5;
    expect(g.nodes.map((n) => n.cost)).toEqual([
      { flops: 105, bytes: 3 * 105 * F32 },
      // 3×4 outputs per channel ((5 + 2 − 3)/2 + 1 = 3, (7 + 2 − 3)/2 + 1 = 4), 9 compares each.
      { flops: 3 * 4 * 3 * 9, bytes: (105 + 3 * 4 * 3) * F32 },
      { flops: 8 * px * 10, bytes: (2 * px * 10 + 2 * 10) * F32 },
      // Per image: the pool (15·10 adds, 10 ÷), W1 (2·10·3) + b1 (3) + ReLU (3), W2 (2·3·10) + b2 (10) + sigmoid (10).
      { flops: 2 * (15 * 10 + 10 + 2 * 10 * 3 + 3 + 3 + 2 * 3 * 10 + 10 + 10), bytes: (px * 10 + (2 * 3 * 10 + 3 + 10) + 2 * 10) * F32 },
      { flops: px * (2 * 10 + 2 + 3 * 10), bytes: (2 * px * 10 + 2 * 10 + 11) * F32 },
    ]);
  });
});

describe('graphCost and shareOf', () => {
  it('sums node costs and counts nodes without one', () => {
    const g = new Graph();
    const a = g.input([1, 2, 3, 4]);
    binary(g, 'add', a, a, 'add');
    g.add({ label: 'custom', kernel: { label: 'custom', code: '' }, uniforms: {}, bindings: {}, workgroups: [1, 1, 1] });
    expect(graphCost(g)).toEqual({ flops: 24, bytes: 3 * 24 * F32, dispatches: 2, uncountedDispatches: 1 });
  });

  it('splits a total into parts that sum back exactly', () => {
    const total = 1_234_567_891_011;
    const cuts = [0, 3, 10, 11, 29, 37];
    const parts = cuts.slice(1).map((to, i) => shareOf(total, cuts[i], to, 37));
    expect(parts.reduce((s, p) => s + p, 0)).toBe(total);
    expect(parts.every((p) => Number.isInteger(p) && p > 0)).toBe(true);
  });
});

/** Every parameter set to the same harmless value: building a graph uploads weights but runs nothing. */
function withWeights<N extends Module>(network: N): N {
  for (const [, p] of namedParameters(network)) p.data = new Float64Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.5);
  foldBatchNorms(network); // as loadStateDict does
  return network;
}

async function costOf(network: Network, height: number, width: number): Promise<GraphCost & { graph: Graph }> {
  const ctx = await getTestContext();
  const graph = new Graph();
  const x: TensorValue = graph.input([1, height, width, network.inChannels], 'image');
  graph.output(network.forward(new ForwardBuilder(ctx, graph), x));
  network.release();
  return { ...graphCost(graph), graph };
}

describe('network graphs', () => {
  const sinsrSmall = { ...SINSR_ARCH7, firstFeat: 8, numFeat: 8, numLayers: 2, numRDBs: 2, numRRDBs: 1, reduction: 2 };
  const networks: [string, () => Network, number, number][] = [
    ['DnCNN R', () => new DnCNN({ inChannels: 1, outChannels: 1, nc: 8, nb: 4, actMode: 'R' }), 13, 11],
    ['DnCNN BR', () => new DnCNN({ inChannels: 3, outChannels: 3, nc: 8, nb: 4, actMode: 'BR' }), 13, 11],
    ['DnCNN cszn', () => new DnCNNVariant({ layout: 'cszn', imageChannels: 1, features: 8, depth: 4, output: 'clean' }), 13, 11],
    ['DnCNN SaoYan', () => new DnCNNVariant({ layout: 'saoyan', imageChannels: 3, features: 8, depth: 4, output: 'noise' }), 13, 11],
    ['SCUNet', () => new SCUNet({ inChannels: 1, dim: 64, blocks: [2, 2, 2, 2, 2, 2, 2] }), 40, 36],
    ['U-Net transposed', () => new UNet({ inChannels: 1, outChannels: 2, bilinear: false, baseChannels: 8, sigmoid: false }), 37, 29],
    ['U-Net bilinear', () => new UNet({ inChannels: 3, outChannels: 1, bilinear: true, baseChannels: 8, sigmoid: true }), 37, 29],
    ['ResNet34 U-Net SCSE', () => new ResNet34UNet(resnet34UNetConfig(1, 1, { decoderChannels: [64, 32, 32, 16, 16] })), 40, 36],
    ['MSRResNet ×3', () => new MSRResNet({ inChannels: 3, outChannels: 3, features: 8, blocks: 2, scale: 3 }), 9, 7],
    ['MSRResNet ×4', () => new MSRResNet({ inChannels: 1, outChannels: 1, features: 8, blocks: 2, scale: 4 }), 9, 7],
    [
      'SRResNet ×2',
      () => new SRResNet({ inChannels: 3, outChannels: 3, features: 8, blocks: 2, scale: 2, prelu: 'channel', clampOutput: true }),
      9,
      7,
    ],
    ['RRDBNet ×2', () => new RRDBNet({ inChannels: 3, outChannels: 3, numFeat: 8, numGrowCh: 4, numBlock: 1, scale: 2 }), 10, 6],
    ['RRDBNet ×4', () => new RRDBNet({ inChannels: 1, outChannels: 1, numFeat: 8, numGrowCh: 4, numBlock: 2, scale: 4 }), 9, 7],
    ['SINSR', () => new SINSR(sinsrSmall), 10, 6],
    ['SINSR CBAM', () => new SINSR({ ...sinsrSmall, attention: 'cbam' }), 10, 6],
  ];
  for (const [name, make, h, w] of networks) {
    it(`${name}: every dispatch has a cost`, async () => {
      const { graph, uncountedDispatches, flops, bytes } = await costOf(withWeights(make()), h, w);
      expect(graph.nodes.filter((n) => !n.cost).map((n) => `${n.label} (${n.kernel.label})`)).toEqual([]);
      expect(uncountedDispatches).toBe(0);
      expect(flops).toBeGreaterThan(0);
      expect(bytes).toBeGreaterThan(0);
      for (const n of graph.nodes) expect(Number.isInteger(n.cost!.flops) && Number.isInteger(n.cost!.bytes)).toBe(true);
    }, 120_000);
  }

  it('DnCNN-17 totals match the analytic formula', async () => {
    const [h, w, nc, c] = [45, 37, 64, 1];
    const { flops, bytes, dispatches } = await costOf(
      withWeights(new DnCNN({ inChannels: c, outChannels: c, nc, nb: 17, actMode: 'R' })),
      h,
      w,
    );
    const px = h * w;
    // 17 3×3 convolutions (1→64, 15 × 64→64, 64→1) and the residual x − model(x).
    expect(dispatches).toBe(18);
    expect(flops).toBe(2 * px * 9 * (c * nc + 15 * nc * nc + nc * c) + px * c);
    const convBytes = (cin: number, cout: number) => px * cin + cout * cin * 9 + cout + px * cout;
    expect(bytes).toBe((convBytes(c, nc) + 15 * convBytes(nc, nc) + convBytes(nc, c) + 3 * px * c) * F32);
  });
});
