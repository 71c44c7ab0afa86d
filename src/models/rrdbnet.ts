import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { Activation } from '../kernels/activation';
import { copyChannels, scaledAddChannels } from '../kernels/channel-slice';
import { pixelUnshuffleBackward } from '../kernels/layout-backward';
import { pixelUnshuffle } from '../kernels/pixel-shuffle';
import { addScaled, concatPieces } from '../layers/autograd-ops';
import { ConcatConv2d, type ConcatLayout } from '../layers/concat-conv2d';
import { Conv2d } from '../layers/conv2d';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { loadStateDict, Module } from '../layers/module';
import { ModuleList } from '../layers/module-list';
import { checkKeysMatch } from '../layers/module-tree';
import { Upsample } from '../layers/spatial';
import type { StateDict } from '../weights/state-dict';
import { requireIntegers, requireOneOf } from './config-checks';
import { type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';
import { canonicaliseRRDBNetKeys, detectRRDBNetKeyScheme, type RRDBNetKeyScheme } from './rrdbnet-keys';

/** BasicSR's RRDBNet constructor arguments (num_in_ch, num_out_ch, num_feat, num_grow_ch, num_block, scale). */
export interface RRDBNetConfig {
  inChannels: number;
  outChannels: number;
  /** Trunk width (64 in ESRGAN). */
  numFeat: number;
  /** Growth channels of each dense-block layer (32). */
  numGrowCh: number;
  /** Number of RRDBs (23). */
  numBlock: number;
  /**
   * Output / input size. The network always upsamples ×4; for scale 2 and 1 BasicSR first pixel-unshuffles the
   * input by 2 or 4 (so H and W must be multiples of 2 or 4), which multiplies conv_first's input channels.
   */
  scale: 1 | 2 | 4;
}

export const ESRGAN_X4: RRDBNetConfig = { inChannels: 3, outChannels: 3, numFeat: 64, numGrowCh: 32, numBlock: 23, scale: 4 };

const LRELU: Activation = { kind: 'leakyRelu', alpha: 0.2 };
/** pixel_unshuffle factor in front of conv_first, per scale. */
const UNSHUFFLE: Record<1 | 2 | 4, number> = { 4: 1, 2: 2, 1: 4 };

/**
 * ResidualDenseBlock (5 convs): x1..x4 = lrelu(conv_j(cat(x, x1, …))), x5 = conv5(cat(x, x1, …, x4)),
 * return x5·0.2 + x. The concatenation lives in one buffer (see ConcatConv2d): x is its first piece, placed there
 * by whoever produced it, and `forward` takes that buffer. Each conv_j reads the buffer's prefix, and its output
 * goes to a tensor of its own and is copied in (WebGPU forbids a dispatch to read and write the same buffer; the
 * copy is gc channels per pixel, against the 9·Cin·gc multiply-adds of the conv). conv5 reads the whole buffer,
 * adds x from its prefix, and can write into a channel slice (the next block's buffer).
 */
class ResidualDenseBlock extends Module {
  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  readonly convs: ConcatConv2d[];

  constructor(
    readonly numFeat: number,
    readonly growCh: number,
  ) {
    super();
    const pieces = [numFeat, growCh, growCh, growCh, growCh];
    this.convs = [1, 2, 3, 4, 5].map((j) => new ConcatConv2d(pieces.slice(0, j), j < 5 ? growCh : numFeat, 3, { padding: 1 }));
  }

  get layout(): ConcatLayout {
    return this.convs[4].layout;
  }

  override children(): [string, Module][] {
    return this.convs.map((c, i) => [`conv${i + 1}`, c]);
  }

  forward(b: ForwardBuilder, buffer: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'rdb';
    this.checkOptions(options, label);
    if (b.training) return this.trainingForward(b, buffer, options, label);
    for (let j = 0; j < 4; j++) {
      const xj = this.convs[j].forward(b, buffer, { epilogue: { activation: LRELU }, label: `${label}.conv${j + 1}` });
      copyChannels(b.graph, xj, buffer, this.layout.offsets[j + 1], `${label}.cat${j + 1}`);
    }
    return this.convs[4].forward(b, buffer, {
      epilogue: { scale: 0.2, residual: { tensor: buffer, mode: 'afterActivation', prefix: true } },
      label: `${label}.conv5`,
      output: options.output,
    });
  }

  /**
   * In a training graph `x` is a plain [n, h, w, numFeat] tensor and the concatenations are explicit, recorded
   * tensors (ConcatConv2d says why); the result is `conv5(cat) · 0.2 + x` as a new tensor.
   */
  private trainingForward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions, label: string): TensorValue {
    refuseSliceInTraining(options, label);
    const feats = [x];
    for (let j = 0; j < 4; j++) {
      const cat = concatPieces(b, feats, `${label}.cat${j + 1}`);
      feats.push(this.convs[j].forward(b, cat, { epilogue: { activation: LRELU }, label: `${label}.conv${j + 1}` }));
    }
    const x5 = this.convs[4].forward(b, concatPieces(b, feats, `${label}.cat5`), { label: `${label}.conv5` });
    return addScaled(b, x, x5, 0.2, `${label} (x5·0.2 + x)`);
  }
}

function refuseSliceInTraining(options: ForwardOptions, label: string): void {
  if (options.output) throw new InvalidInputError(`${label}: in a training graph the result cannot go into a channel slice`);
}

/** nn.ModuleList of RRDBs; RRDBNet runs them itself, in training as in inference. */
class RRDBList extends ModuleList<RRDB> {
  override get supportsTraining(): boolean {
    return true;
  }
}

/**
 * RRDB: RDB3(RDB2(RDB1(x)))·0.2 + x, with x in channels [0, numFeat) of the buffer `forward` takes (`inputBuffer`).
 * Each RDB writes its output straight into the next one's buffer; the result can go into a channel slice.
 */
class RRDB extends Module {
  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  readonly rdbs: ResidualDenseBlock[];

  constructor(numFeat: number, growCh: number) {
    super();
    this.rdbs = [0, 1, 2].map(() => new ResidualDenseBlock(numFeat, growCh));
  }

  override children(): [string, Module][] {
    return this.rdbs.map((r, i) => [`rdb${i + 1}`, r]);
  }

  /** The buffer the block input must be written into (at channel 0) by its producer. */
  inputBuffer(b: ForwardBuilder, [n, h, w]: readonly number[], label: string): TensorValue {
    return b.tensor([n, h, w, this.rdbs[0].layout.width], label);
  }

  forward(b: ForwardBuilder, buffer: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'rrdb';
    this.checkOptions(options, label);
    if (b.training) {
      // Plain tensors in training: RDB3(RDB2(RDB1(x))) · 0.2 + x.
      refuseSliceInTraining(options, label);
      let h = buffer;
      this.rdbs.forEach((rdb, k) => (h = rdb.forward(b, h, { label: `${label}.rdb${k + 1}` })));
      return addScaled(b, buffer, h, 0.2, `${label} (·0.2 + x)`);
    }
    let cur = buffer;
    for (let k = 0; k < 2; k++) {
      const next = this.inputBuffer(b, buffer.shape, `${label}.rdb${k + 2}.cat`);
      this.rdbs[k].forward(b, cur, { label: `${label}.rdb${k + 1}`, output: { tensor: next, channelOffset: 0 } });
      cur = next;
    }
    const t = this.rdbs[2].forward(b, cur, { label: `${label}.rdb3` });
    const nf = this.rdbs[0].numFeat;
    const out = options.output && { tensor: options.output.tensor, offset: options.output.channelOffset };
    return scaledAddChannels(b.graph, buffer, t, 0.2, nf, label, out);
  }
}

function checkConfig(c: RRDBNetConfig): void {
  requireIntegers('RRDBNet', {
    inChannels: [c.inChannels, 1],
    outChannels: [c.outChannels, 1],
    numFeat: [c.numFeat, 1],
    numGrowCh: [c.numGrowCh, 1],
    numBlock: [c.numBlock, 0],
  });
  requireOneOf('RRDBNet', 'scale', c.scale, [1, 2, 4]);
}

/**
 * ESRGAN's generator as BasicSR writes it (basicsr/archs/rrdbnet_arch.py; networks.md §5.2), with BasicSR's
 * parameter names (rrdbnet-keys.ts maps the xinntao and 2018 layouts onto them):
 *   [pixel_unshuffle by 4/scale] → fea = conv_first(x); fea = fea + conv_body(body(fea))
 *   → lrelu(conv_up1(nearest×2)) → lrelu(conv_up2(nearest×2)) → conv_last(lrelu(conv_hr(·)))
 * LeakyReLU slope 0.2, residual scale 0.2 in every RDB and RRDB, every conv 3×3 with bias. Output unclamped.
 */
export class RRDBNet extends Module implements Network {
  readonly architecture = 'RRDBNet';
  readonly convFirst: Conv2d;
  readonly body: RRDBList;
  readonly convBody: Conv2d;
  readonly convUp1: Conv2d;
  readonly convUp2: Conv2d;
  readonly convHr: Conv2d;
  readonly convLast: Conv2d;
  private readonly upsample = new Upsample({ mode: 'nearest', scaleFactor: 2 });

  constructor(readonly config: RRDBNetConfig) {
    super();
    checkConfig(config);
    const { inChannels, outChannels, numFeat: nf, numGrowCh, numBlock, scale } = config;
    const conv = (cin: number, cout: number) => new Conv2d(cin, cout, 3, { padding: 1 });
    const r = UNSHUFFLE[scale];
    this.convFirst = conv(inChannels * r * r, nf);
    this.body = new RRDBList(Array.from({ length: numBlock }, () => new RRDB(nf, numGrowCh)));
    this.convBody = conv(nf, nf);
    this.convUp1 = conv(nf, nf);
    this.convUp2 = conv(nf, nf);
    this.convHr = conv(nf, nf);
    this.convLast = conv(nf, outChannels);
  }

  override get supportsTraining(): boolean {
    return true;
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.outChannels;
  }

  get scale(): number {
    return this.config.scale;
  }

  override children(): [string, Module][] {
    return [
      ['conv_first', this.convFirst],
      ['body', this.body],
      ['conv_body', this.convBody],
      ['conv_up1', this.convUp1],
      ['conv_up2', this.convUp2],
      ['conv_hr', this.convHr],
      ['conv_last', this.convLast],
    ];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const { inChannels, numBlock, scale } = this.config;
    if (x.shape[3] !== inChannels) {
      throw new InvalidInputError(`RRDBNet expects ${inChannels} image channel(s), got ${x.shape[3]}`);
    }
    const r = UNSHUFFLE[scale];
    if (r > 1) {
      if (x.shape[1] % r !== 0 || x.shape[2] % r !== 0) {
        throw new InvalidInputError(
          `RRDBNet ×${scale} pixel-unshuffles its input by ${r}: height and width must be multiples of ${r}, got ${x.shape[1]}×${x.shape[2]}`,
        );
      }
      const input = x;
      x = pixelUnshuffle(b.graph, input, r, 'pixel_unshuffle');
      const unshuffled = x;
      b.training?.tape.record('pixel_unshuffle', [input], [unshuffled], false, (t) => {
        t.addGrad(input, pixelUnshuffleBackward(b.graph, t.gradOf(unshuffled)!, input.shape, r, 'pixel_unshuffle backward'));
      });
    }
    if (b.training) return this.trainingForward(b, x);
    const blocks = this.body.items;
    // fea goes straight into the first RRDB's concatenation buffer; conv_body adds it back from there.
    const fea = numBlock > 0 ? blocks[0].inputBuffer(b, x.shape, 'body.0.cat') : undefined;
    const first = this.convFirst.forward(b, x, { label: 'conv_first', output: fea && { tensor: fea, channelOffset: 0 } });
    let cur = first;
    blocks.forEach((block, i) => {
      const next = i + 1 < numBlock ? blocks[i + 1].inputBuffer(b, x.shape, `body.${i + 1}.cat`) : undefined;
      const y = block.forward(b, cur, { label: `body.${i}`, output: next && { tensor: next, channelOffset: 0 } });
      cur = next ?? y;
    });
    const h = this.convBody.forward(b, cur, {
      epilogue: { residual: { tensor: first, mode: 'afterActivation', prefix: true } },
      label: 'conv_body',
    });
    return this.tail(b, h);
  }

  /** conv_up1/conv_up2 after nearest ×2 each, conv_hr, conv_last: the same in training and inference. */
  private tail(b: ForwardBuilder, fea: TensorValue): TensorValue {
    const lrelu = { activation: LRELU };
    let h = this.convUp1.forward(b, this.upsample.forward(b, fea, { label: 'up1' }), { epilogue: lrelu, label: 'conv_up1' });
    h = this.convUp2.forward(b, this.upsample.forward(b, h, { label: 'up2' }), { epilogue: lrelu, label: 'conv_up2' });
    h = this.convHr.forward(b, h, { epilogue: lrelu, label: 'conv_hr' });
    return this.convLast.forward(b, h, { label: 'conv_last' });
  }

  /** The trunk on plain tensors (each block returns a new one), every step recording its backward. */
  private trainingForward(b: ForwardBuilder, x: TensorValue): TensorValue {
    const fea = this.convFirst.forward(b, x, { label: 'conv_first' });
    let h = fea;
    this.body.items.forEach((block, i) => (h = block.forward(b, h, { label: `body.${i}` })));
    h = this.convBody.forward(b, h, { epilogue: { residual: { tensor: fea, mode: 'afterActivation' } }, label: 'conv_body' });
    return this.tail(b, h);
  }
}

export interface RecognisedRRDBNet {
  config: RRDBNetConfig;
  scheme: RRDBNetKeyScheme;
}

const SCALE_BY_UNSHUFFLED_CHANNELS: Record<number, 1 | 2 | 4> = { 1: 4, 4: 2, 16: 1 };

/**
 * Recognises an RRDBNet state_dict (any of the three key layouts) from its names and shapes: num_feat from
 * conv_first, num_grow_ch from the first dense conv, num_block from the body indices, and the scale from
 * conv_first's input channels relative to conv_last's output channels (1, 4 or 16 times: no, 2× or 4×
 * pixel_unshuffle; every released model has num_in_ch = num_out_ch). Returns null when the keys are not an
 * RRDBNet's; throws InvalidInputError when they look like one but some shape or block is inconsistent, or a key
 * of the inferred network is missing or one it lacks is present (checkKeysMatch).
 */
export function recogniseRRDBNet(keys: KeyShapes): RecognisedRRDBNet | null {
  const scheme = detectRRDBNetKeyScheme(keys);
  if (!scheme) return null;
  const net = `RRDBNet (${scheme} layout)`;
  const k = canonicaliseRRDBNetKeys(keys, scheme);
  const first = shapeOf(k, 'conv_first.weight', net, 4);
  const last = shapeOf(k, 'conv_last.weight', net, 4);
  const conv1 = shapeOf(k, 'body.0.rdb1.conv1.weight', net, 4);
  const blocks = new Set<number>();
  for (const name of k.keys()) {
    const m = /^body\.(\d+)\./.exec(name);
    if (m) blocks.add(Number(m[1]));
  }
  const numBlock = Math.max(...blocks) + 1;
  if (blocks.size !== numBlock) {
    const missing = Array.from({ length: numBlock }, (_, i) => i).filter((i) => !blocks.has(i));
    throw new InvalidInputError(`RRDBNet checkpoint (${scheme} layout): blocks ${missing.join(', ')} of ${numBlock} are missing`);
  }
  const outChannels = last[0];
  const ratio = first[1] / outChannels;
  const scale = SCALE_BY_UNSHUFFLED_CHANNELS[ratio];
  if (scale === undefined) {
    throw new InvalidInputError(
      `RRDBNet checkpoint: conv_first reads ${first[1]} channels and conv_last writes ${outChannels}; expected 1, 4 or 16 times as many (scale 4, 2 or 1)`,
    );
  }
  const config: RRDBNetConfig = { inChannels: outChannels, outChannels, numFeat: first[0], numGrowCh: conv1[0], numBlock, scale };
  let model: RRDBNet;
  try {
    model = new RRDBNet(config);
  } catch (e) {
    throw new InvalidInputError(`RRDBNet checkpoint: inconsistent configuration ${JSON.stringify(config)}: ${(e as Error).message}`);
  }
  checkKeysMatch(model, k, `RRDBNet (${scheme} layout, ${JSON.stringify(config)})`);
  return { config, scheme };
}

/** Builds an RRDBNet from a state_dict in any key layout (config from `config`, or recognised from the keys). */
export function rrdbNetFromStateDict(sd: StateDict, config?: RRDBNetConfig): RRDBNet {
  const scheme = detectRRDBNetKeyScheme(sd);
  if (!config) {
    const found = recogniseRRDBNet(sd);
    if (!found) throw new InvalidInputError('not an RRDBNet checkpoint: no conv_first/body, RRDB_trunk or model.1.sub keys');
    config = found.config;
  }
  const network = new RRDBNet(config);
  loadStateDict(network, scheme ? canonicaliseRRDBNetKeys(sd, scheme) : sd);
  return network;
}
