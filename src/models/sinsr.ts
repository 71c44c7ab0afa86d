import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { RELU } from '../kernels/activation';
import { copyChannels } from '../kernels/channel-slice';
import { depthToSpace } from '../kernels/pixel-shuffle';
import { avgPool2d } from '../kernels/pool';
import { addScaled, averagePool2d, concatPieces, depthToSpaceOp } from '../layers/autograd-ops';
import { CBAM } from '../layers/cbam';
import { ConcatConv2d, concatLayout } from '../layers/concat-conv2d';
import { Conv2d } from '../layers/conv2d';
import type { Epilogue, ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { loadStateDict, Module } from '../layers/module';
import { ModuleList } from '../layers/module-list';
import { checkKeysMatch } from '../layers/module-tree';
import type { StateDict } from '../weights/state-dict';
import { requireIntegers, requireOneOf } from './config-checks';
import { type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

/**
 * The SINSR generator (aaivu/CSM-SR, Final-Model/SINSR/code/architectures/architecture_7.py, a TensorFlow/Keras
 * model; networks.md §5.1) re-expressed as a PyTorch module of our own (tools/torch/nets/sinsr.py), and its CBAM
 * variant. No trained weights exist anywhere, so the parameter names below are ours; a Keras .keras/.h5 file
 * would need its HWIO kernels transposed to OIHW and renamed onto them.
 *
 *   x  = relu(conv_first(img))                                   img in [-1, 1], first_feat channels, LR
 *   s1 = branch1(x)                                              F channels, LR
 *   s2 = d2s(branch2(avgpool2(s1)))                              F/4, LR      (branch2 runs at LR/2)
 *   s4 = avgpool2(branch4(d2s(s1)))                              F, LR        (branch4 runs at 2·LR on F/4 channels)
 *   y  = relu(conv_fuse(cat(s1, s2, s4))); y = relu(conv_up1(d2s(y))); y = conv_up2(d2s(y))
 *   out = tanh(conv_last(y))                                     4·LR, in [-1, 1]
 * d2s is tf.nn.depth_to_space (DCR channel order), avgpool2 a 2×2 average pool, so LR height and width must be
 * even. A branch is `numRRDBs` RRDBs in sequence:
 *   RRDB(x) = rdb_N(…rdb_1(x)) + 0.2·conv_res(x)        (the residual is a conv of the input, as in Keras)
 *   RDB(x)  = conv_fuse(cat(x, h_1, …, h_L)), h_l = DenseLayer(cat(x, h_1, …, h_{l−1}))   (no residual inside)
 *   DenseLayer = relu(conv 3×3) → relu(conv_dilated 3×3, dilation 2) → depthwise 3×3 (no bias) → relu(pointwise 1×1)
 * With attention 'cbam' every RDB is followed by a CBAM (architecture_2.py's placement inside its RRDB):
 *   g_c = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x))), g_s = sigmoid(conv7×7(cat(mean_c, max_c)(x·g_c))),
 *   out = (x·g_c)·g_s.
 * Where the Keras code is silent or inconsistent (see networks.md): channel counts follow architecture_7 (128 →
 * 64, growth 4, 5 layers per RDB, 5 RDBs per RRDB, 2 RRDBs per branch: 2,212,711 parameters, the count in
 * networks.md; commit 1e960fac of architecture_7.py has 4 and 4: set numLayers/numRDBs), CBAM's reduction is 8 with bias in both
 * MLP layers, its 7×7 conv has no bias.
 *
 * State dict (all convs zero-padded 'same', weight [Cout, Cin/groups, kH, kW], bias [Cout]; F = numFeat,
 * g = growth, q = F/4; for branch b ∈ {1, 2, 4}, RRDB i, RDB k, dense layer l, with cin the RRDB's input width
 * (first_feat for branch1.0, F for branch2.0, q for branch4.0, F for every later RRDB) and c_k = cin for k = 0,
 * else F):
 *   conv_first.weight                                  [first_feat, in, 3, 3]      .bias
 *   branch{b}.{i}.conv_res.weight                      [F, cin, 3, 3]              .bias
 *   branch{b}.{i}.rdbs.{k}.layers.{l}.conv.weight      [g, c_k + l·g, 3, 3]        .bias
 *   branch{b}.{i}.rdbs.{k}.layers.{l}.conv_dilated.weight   [g, g, 3, 3]           .bias
 *   branch{b}.{i}.rdbs.{k}.layers.{l}.depthwise.weight      [g, 1, 3, 3]           (no bias)
 *   branch{b}.{i}.rdbs.{k}.layers.{l}.pointwise.weight      [g, g, 1, 1]           .bias
 *   branch{b}.{i}.rdbs.{k}.conv_fuse.weight            [F, c_k + L·g, 3, 3]        .bias
 *   branch{b}.{i}.cbams.{k}.channel_mlp.0.weight       [F/r, F]                    .bias    (CBAM only)
 *   branch{b}.{i}.cbams.{k}.channel_mlp.2.weight       [F, F/r]                    .bias    (CBAM only)
 *   branch{b}.{i}.cbams.{k}.spatial_conv.weight        [1, 2, 7, 7]                         (CBAM only)
 *   conv_fuse.weight [F, F + q + F, 3, 3], conv_up1.weight [F, q, 3, 3], conv_up2.weight [out, q, 3, 3],
 *   conv_last.weight [out, out, 3, 3], each with .bias
 */
export interface SINSRConfig {
  inChannels: number;
  outChannels: number;
  /** Width of conv_first (128). */
  firstFeat: number;
  /** Width of the RRDBs (64); a multiple of 4 (depth_to_space by 2). */
  numFeat: number;
  /** Channels each dense layer adds (4). */
  growth: number;
  /** Dense layers per RDB (5). */
  numLayers: number;
  /** RDBs per RRDB (5). */
  numRDBs: number;
  /** RRDBs per branch (2). */
  numRRDBs: number;
  attention: 'none' | 'cbam';
  /** CBAM MLP reduction (8); hidden = ⌊numFeat / reduction⌋. */
  reduction: number;
}

export const SINSR_ARCH7: SINSRConfig = {
  inChannels: 3,
  outChannels: 3,
  firstFeat: 128,
  numFeat: 64,
  growth: 4,
  numLayers: 5,
  numRDBs: 5,
  numRRDBs: 2,
  attention: 'none',
  reduction: 8,
};

export const SINSR_CBAM: SINSRConfig = { ...SINSR_ARCH7, attention: 'cbam' };

/**
 * nn.ModuleList whose owner runs its items in a training graph too (a plain ModuleList never trains: see
 * Module.supportsTraining).
 */
class TrainedList<T extends Module> extends ModuleList<T> {
  override get supportsTraining(): boolean {
    return true;
  }
}

function refuseSliceInTraining(options: ForwardOptions, label: string): void {
  if (options.output) throw new InvalidInputError(`${label}: in a training graph the result cannot go into a channel slice`);
}

/**
 * relu(conv) → relu(dilated conv) → depthwise → relu(pointwise). `forward` takes the RDB's concatenation buffer
 * (conv reads its prefix) and writes h_l into `options.output`, the buffer's next slice.
 */
class DenseLayer extends Module {
  override get writesChannelSlice(): boolean {
    return true;
  }

  /** In a training graph `forward` takes the dense concatenation itself and returns h_l as a new tensor. */
  override get supportsTraining(): boolean {
    return true;
  }

  readonly conv: ConcatConv2d;
  readonly convDilated: Conv2d;
  readonly depthwise: Conv2d;
  readonly pointwise: Conv2d;

  constructor(pieces: number[], g: number) {
    super();
    this.conv = new ConcatConv2d(pieces, g, 3, { padding: 1 });
    this.convDilated = new Conv2d(g, g, 3, { padding: 2, dilation: 2 });
    this.depthwise = new Conv2d(g, g, 3, { padding: 1, groups: g, bias: false });
    this.pointwise = new Conv2d(g, g, 1);
  }

  override children(): [string, Module][] {
    return [
      ['conv', this.conv],
      ['conv_dilated', this.convDilated],
      ['depthwise', this.depthwise],
      ['pointwise', this.pointwise],
    ];
  }

  forward(b: ForwardBuilder, buffer: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'dense_layer';
    this.checkOptions(options, label);
    if (b.training) refuseSliceInTraining(options, label);
    const relu = { activation: RELU };
    let h = this.conv.forward(b, buffer, { epilogue: relu, label: `${label}.conv` });
    h = this.convDilated.forward(b, h, { epilogue: relu, label: `${label}.conv_dilated` });
    h = this.depthwise.forward(b, h, { label: `${label}.depthwise` });
    // The pointwise conv reads only its own input, so it may write into the buffer the others read.
    return this.pointwise.forward(b, h, { epilogue: relu, label: `${label}.pointwise`, output: options.output });
  }
}

/**
 * conv_fuse(cat(x, h_1, …, h_L)); the concatenation is one buffer with x first (see ConcatConv2d), which `forward`
 * takes. conv_fuse fuses the caller's epilogue and can write into a channel slice.
 */
class RDB extends Module {
  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  readonly layers: ModuleList<DenseLayer>;
  readonly convFuse: ConcatConv2d;

  constructor(cin: number, nf: number, g: number, numLayers: number) {
    super();
    const pieces = [cin, ...Array<number>(numLayers).fill(g)];
    this.layers = new TrainedList(Array.from({ length: numLayers }, (_, l) => new DenseLayer(pieces.slice(0, l + 1), g)));
    this.convFuse = new ConcatConv2d(pieces, nf, 3, { padding: 1 });
  }

  get width(): number {
    return this.convFuse.layout.width;
  }

  override children(): [string, Module][] {
    return [
      ['layers', this.layers],
      ['conv_fuse', this.convFuse],
    ];
  }

  forward(b: ForwardBuilder, buffer: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'rdb';
    if (b.training) return this.trainingForward(b, buffer, options, label);
    const offsets = this.convFuse.layout.offsets;
    this.layers.items.forEach((layer, l) =>
      layer.forward(b, buffer, { label: `${label}.layers.${l}`, output: { tensor: buffer, channelOffset: offsets[l + 1] } }),
    );
    return this.convFuse.forward(b, buffer, { epilogue: options.epilogue, label: `${label}.conv_fuse`, output: options.output });
  }

  /**
   * In a training graph `x` is a plain tensor and every concatenation is an explicit, recorded torch.cat
   * (concat-conv2d.ts says why), so each piece's gradient is summed over all the layers that read it.
   */
  private trainingForward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions, label: string): TensorValue {
    refuseSliceInTraining(options, label);
    const feats = [x];
    this.layers.items.forEach((layer, l) =>
      feats.push(layer.forward(b, concatPieces(b, feats, `${label}.layers.${l}.cat`), { label: `${label}.layers.${l}` })),
    );
    return this.convFuse.forward(b, concatPieces(b, feats, `${label}.cat`), { epilogue: options.epilogue, label: `${label}.conv_fuse` });
  }
}

/**
 * rdb_N(…rdb_1(x)) (each followed by a CBAM in the attention variant) + 0.2·conv_res(x), with x in the first
 * channels of the buffer `forward` takes (`inputBuffer`); the result can go into a channel slice.
 */
class RRDB extends Module {
  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  readonly convRes: ConcatConv2d;
  readonly rdbs: ModuleList<RDB>;
  readonly cbams: ModuleList<CBAM> | undefined;

  constructor(cin: number, c: SINSRConfig) {
    super();
    this.convRes = new ConcatConv2d([cin], c.numFeat, 3, { padding: 1 });
    this.rdbs = new TrainedList(
      Array.from({ length: c.numRDBs }, (_, k) => new RDB(k === 0 ? cin : c.numFeat, c.numFeat, c.growth, c.numLayers)),
    );
    this.cbams =
      c.attention === 'cbam' ? new TrainedList(Array.from({ length: c.numRDBs }, () => new CBAM(c.numFeat, c.reduction))) : undefined;
  }

  override children(): [string, Module][] {
    const out: [string, Module][] = [
      ['conv_res', this.convRes],
      ['rdbs', this.rdbs],
    ];
    if (this.cbams) out.push(['cbams', this.cbams]);
    return out;
  }

  /** The buffer the block input must be written into (at channel 0) by its producer. */
  inputBuffer(b: ForwardBuilder, [n, h, w]: readonly number[], label: string): TensorValue {
    return b.tensor([n, h, w, this.rdbs.items[0].width], label);
  }

  forward(b: ForwardBuilder, buffer: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'rrdb';
    this.checkOptions(options, label);
    if (b.training) return this.trainingForward(b, buffer, options, label);
    const r = this.convRes.forward(b, buffer, { epilogue: { scale: 0.2 }, label: `${label}.conv_res` });
    const rdbs = this.rdbs.items;
    let cur = buffer;
    let y = buffer;
    rdbs.forEach((rdb, k) => {
      const last = k === rdbs.length - 1;
      const next = last
        ? undefined
        : b.tensor([buffer.shape[0], buffer.shape[1], buffer.shape[2], rdbs[k + 1].width], `${label}.rdbs.${k + 1}.cat`);
      const output = next ? { tensor: next, channelOffset: 0 } : options.output;
      const residual: Epilogue | undefined = last ? { residual: { tensor: r, mode: 'afterActivation' } } : undefined;
      const name = `${label}.rdbs.${k}`;
      if (this.cbams) {
        const z = rdb.forward(b, cur, { label: name });
        y = this.cbams.items[k].forward(b, z, { epilogue: residual, label: `${label}.cbams.${k}`, output });
      } else {
        y = rdb.forward(b, cur, { epilogue: residual, label: name, output });
      }
      cur = next ?? y;
    });
    return y;
  }

  /**
   * On plain tensors: `x + r * 0.2` as nets/sinsr.py writes it, with r = conv_res(input) (its own tensor, the
   * 0.2 applied by addScaled: one f32 product then one sum per element, as PyTorch's mul and add).
   */
  private trainingForward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions, label: string): TensorValue {
    refuseSliceInTraining(options, label);
    const r = this.convRes.forward(b, x, { label: `${label}.conv_res` });
    let h = x;
    this.rdbs.items.forEach((rdb, k) => {
      h = rdb.forward(b, h, { label: `${label}.rdbs.${k}` });
      if (this.cbams) h = this.cbams.items[k].forward(b, h, { label: `${label}.cbams.${k}` });
    });
    return addScaled(b, h, r, 0.2, `${label} (x + r·0.2)`);
  }
}

function checkConfig(c: SINSRConfig): void {
  requireIntegers('SINSR', {
    inChannels: [c.inChannels, 1],
    outChannels: [c.outChannels, 1],
    firstFeat: [c.firstFeat, 1],
    numFeat: [c.numFeat, 1],
    growth: [c.growth, 1],
    numLayers: [c.numLayers, 1],
    numRDBs: [c.numRDBs, 1],
    numRRDBs: [c.numRRDBs, 1],
    reduction: [c.reduction, 1],
  });
  if (c.numFeat % 4 !== 0) throw new InvalidInputError(`SINSR numFeat must be a multiple of 4 (depth_to_space by 2), got ${c.numFeat}`);
  requireOneOf('SINSR', 'attention', c.attention, ['none', 'cbam']);
}

/** The SINSR generator (see the comment at the top of this file). ×4, input in [-1, 1], output tanh. */
export class SINSR extends Module implements Network {
  readonly architecture: string;
  readonly scale = 4;
  /** Trained on images scaled to [-1, 1], with a tanh output. */
  readonly valueRange = 'symmetric' as const;
  readonly convFirst: Conv2d;
  readonly branch1: ModuleList<RRDB>;
  readonly branch2: ModuleList<RRDB>;
  readonly branch4: ModuleList<RRDB>;
  readonly convFuse: ConcatConv2d;
  readonly convUp1: Conv2d;
  readonly convUp2: Conv2d;
  readonly convLast: Conv2d;

  override get supportsTraining(): boolean {
    return true;
  }

  constructor(readonly config: SINSRConfig) {
    super();
    checkConfig(config);
    this.architecture = config.attention === 'cbam' ? 'SINSR-CBAM' : 'SINSR';
    const f = config.numFeat;
    const q = f / 4;
    const branch = (cin: number) => new TrainedList(Array.from({ length: config.numRRDBs }, (_, i) => new RRDB(i === 0 ? cin : f, config)));
    const conv = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1 });
    this.convFirst = conv(config.inChannels, config.firstFeat);
    this.branch1 = branch(config.firstFeat);
    this.branch2 = branch(f);
    this.branch4 = branch(q);
    this.convFuse = new ConcatConv2d([f, q, f], f, 3, { padding: 1 });
    this.convUp1 = conv(q, f);
    this.convUp2 = conv(q, config.outChannels);
    this.convLast = conv(config.outChannels, config.outChannels);
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  override children(): [string, Module][] {
    return [
      ['conv_first', this.convFirst],
      ['branch1', this.branch1],
      ['branch2', this.branch2],
      ['branch4', this.branch4],
      ['conv_fuse', this.convFuse],
      ['conv_up1', this.convUp1],
      ['conv_up2', this.convUp2],
      ['conv_last', this.convLast],
    ];
  }

  /** Runs the RRDBs of a branch on `buffer` (the first one's input buffer, filled); returns the last output. */
  private runBranch(b: ForwardBuilder, branch: ModuleList<RRDB>, buffer: TensorValue, label: string): TensorValue {
    const blocks = branch.items;
    let cur = buffer;
    let y = buffer;
    blocks.forEach((block, i) => {
      const next = i + 1 < blocks.length ? blocks[i + 1].inputBuffer(b, buffer.shape, `${label}.${i + 1}.cat`) : undefined;
      y = block.forward(b, cur, { label: `${label}.${i}`, output: next && { tensor: next, channelOffset: 0 } });
      cur = next ?? y;
    });
    return y;
  }

  /** Puts a tensor an op without channel-offset writes produced into a fresh input buffer of `branch`. */
  private placeInto(b: ForwardBuilder, branch: ModuleList<RRDB>, t: TensorValue, label: string): TensorValue {
    const buffer = branch.items[0].inputBuffer(b, t.shape, `${label}.0.cat`);
    copyChannels(b.graph, t, buffer, 0, `${label}.input`);
    return buffer;
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const { inChannels, numFeat: f } = this.config;
    const graph = b.graph;
    if (x.shape[3] !== inChannels)
      throw new InvalidInputError(`${this.architecture} expects ${inChannels} image channel(s), got ${x.shape[3]}`);
    if (x.shape[1] % 2 !== 0 || x.shape[2] % 2 !== 0) {
      throw new InvalidInputError(
        `${this.architecture} needs an even height and width (its 2×2 average pools), got ${x.shape[1]}×${x.shape[2]}`,
      );
    }
    if (b.training) return this.trainingForward(b, x);
    const relu = { activation: RELU };
    const b1 = this.branch1.items[0].inputBuffer(b, x.shape, 'branch1.0.cat');
    this.convFirst.forward(b, x, { epilogue: relu, label: 'conv_first', output: { tensor: b1, channelOffset: 0 } });
    const s1 = this.runBranch(b, this.branch1, b1, 'branch1');

    const half = avgPool2d(graph, s1, { kernel: 2 }, 'branch2.pool');
    const t2 = this.runBranch(b, this.branch2, this.placeInto(b, this.branch2, half, 'branch2'), 'branch2');
    const s2 = depthToSpace(graph, t2, 2, 'branch2.d2s');

    const double = depthToSpace(graph, s1, 2, 'branch4.d2s');
    const t4 = this.runBranch(b, this.branch4, this.placeInto(b, this.branch4, double, 'branch4'), 'branch4');
    const s4 = avgPool2d(graph, t4, { kernel: 2 }, 'branch4.pool');

    const { offsets, width } = concatLayout([f, f / 4, f]);
    const cat = b.tensor([x.shape[0], x.shape[1], x.shape[2], width], 'fuse.cat');
    [s1, s2, s4].forEach((t, i) => copyChannels(graph, t, cat, offsets[i], `fuse.cat${i}`));
    let y = this.convFuse.forward(b, cat, { epilogue: relu, label: 'conv_fuse' });
    y = this.convUp1.forward(b, depthToSpace(graph, y, 2, 'up1.d2s'), { epilogue: relu, label: 'conv_up1' });
    y = this.convUp2.forward(b, depthToSpace(graph, y, 2, 'up2.d2s'), { label: 'conv_up2' });
    return this.convLast.forward(b, y, { epilogue: { activation: { kind: 'tanh' } }, label: 'conv_last' });
  }

  /** The same network on plain tensors, every op recording its backward (nets/sinsr.py's forward, step by step). */
  private trainingForward(b: ForwardBuilder, img: TensorValue): TensorValue {
    const relu = { activation: RELU };
    const run = (branch: ModuleList<RRDB>, t: TensorValue, label: string) =>
      branch.items.reduce((h, block, i) => block.forward(b, h, { label: `${label}.${i}` }), t);
    const x = this.convFirst.forward(b, img, { epilogue: relu, label: 'conv_first' });
    const s1 = run(this.branch1, x, 'branch1');
    const t2 = run(this.branch2, averagePool2d(b, s1, { kernel: 2 }, 'branch2.pool'), 'branch2');
    const s2 = depthToSpaceOp(b, t2, 2, 'branch2.d2s');
    const t4 = run(this.branch4, depthToSpaceOp(b, s1, 2, 'branch4.d2s'), 'branch4');
    const s4 = averagePool2d(b, t4, { kernel: 2 }, 'branch4.pool');
    let y = this.convFuse.forward(b, concatPieces(b, [s1, s2, s4], 'fuse.cat'), { epilogue: relu, label: 'conv_fuse' });
    y = this.convUp1.forward(b, depthToSpaceOp(b, y, 2, 'up1.d2s'), { epilogue: relu, label: 'conv_up1' });
    y = this.convUp2.forward(b, depthToSpaceOp(b, y, 2, 'up2.d2s'), { label: 'conv_up2' });
    return this.convLast.forward(b, y, { epilogue: { activation: { kind: 'tanh' } }, label: 'conv_last' });
  }
}

function count(keys: Iterable<string>, pattern: RegExp): number {
  let n = 0;
  for (const k of keys) {
    const m = pattern.exec(k);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/**
 * Recognises a state_dict of our SINSR module (the names above) and infers its configuration from names and
 * shapes. Returns null when the keys are not a SINSR generator's; throws InvalidInputError when they look like
 * one but a shape or a count is inconsistent, or a key of the inferred network is missing or unexpected
 * (checkKeysMatch).
 */
export function recogniseSINSR(keys: KeyShapes): SINSRConfig | null {
  if (!keys.has('conv_first.weight') || !keys.has('branch1.0.rdbs.0.layers.0.conv.weight')) return null;
  const shape = (name: string, dims: number) => shapeOf(keys, name, 'SINSR', dims);
  const first = shape('conv_first.weight', 4);
  const numFeat = shape('branch1.0.conv_res.weight', 4)[0];
  const attention = keys.has('branch1.0.cbams.0.channel_mlp.0.weight') ? 'cbam' : 'none';
  const hidden = attention === 'cbam' ? shape('branch1.0.cbams.0.channel_mlp.0.weight', 2)[0] : 0;
  const names = [...keys.keys()];
  const config: SINSRConfig = {
    inChannels: first[1],
    outChannels: shape('conv_last.weight', 4)[0],
    firstFeat: first[0],
    numFeat,
    growth: shape('branch1.0.rdbs.0.layers.0.conv.weight', 4)[0],
    numLayers: count(names, /^branch1\.0\.rdbs\.0\.layers\.(\d+)\./),
    numRDBs: count(names, /^branch1\.0\.rdbs\.(\d+)\./),
    numRRDBs: count(names, /^branch1\.(\d+)\./),
    attention,
    reduction: attention === 'cbam' && hidden > 0 ? Math.floor(numFeat / hidden) : SINSR_ARCH7.reduction,
  };
  let model: SINSR;
  try {
    model = new SINSR(config);
  } catch (e) {
    throw new InvalidInputError(`SINSR checkpoint: inconsistent configuration ${JSON.stringify(config)}: ${(e as Error).message}`);
  }
  checkKeysMatch(model, keys, `SINSR (${JSON.stringify(config)})`);
  return config;
}

/** Builds a SINSR generator from a state_dict (config given, or recognised from the keys) and loads it strictly. */
export function sinsrFromStateDict(sd: StateDict, config?: SINSRConfig): SINSR {
  const c = config ?? recogniseSINSR(sd);
  if (!c) throw new InvalidInputError('not a SINSR checkpoint: no conv_first / branch1.0.rdbs.0.layers.0.conv keys');
  const network = new SINSR(c);
  loadStateDict(network, sd);
  return network;
}
