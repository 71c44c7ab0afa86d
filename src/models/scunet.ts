import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { crop2dBackward, replicatePadToMultipleBackward } from '../kernels/layout-backward';
import { crop2d, paddedToMultiple, replicatePadToMultiple } from '../kernels/pad';
import { WINDOW_ATTENTION_HEAD_DIM, WINDOW_ATTENTION_SIZE } from '../kernels/window-attention';
import { add as addRecorded } from '../layers/autograd-ops';
import { Conv2d } from '../layers/conv2d';
import { ConvTranspose2d } from '../layers/conv-transpose2d';
import { ConvTransBlock } from '../layers/conv-trans-block';
import type { ForwardBuilder, ForwardOptions } from '../layers/forward-builder';
import { Module } from '../layers/module';
import { checkKeysMatch } from '../layers/module-tree';
import { Sequential } from '../layers/sequential';
import { requireIntegers } from './config-checks';
import { expectShape, type KeyShapes, shapeOf } from './key-shapes';
import type { Network } from './network';

export interface SCUNetConfig {
  /** Image channels in and out (PyTorch `in_nc`): 1 for the gray models, 3 for the colour ones. */
  inChannels: number;
  /** Channels at full resolution (PyTorch `dim`, 64 in every release); a multiple of 64. */
  dim: number;
  /**
   * ConvTransBlocks per stage (PyTorch `config`), in the order m_down1, m_down2, m_down3, m_body, m_up3, m_up2,
   * m_up1; [4, 4, 4, 4, 4, 4, 4] in every release.
   */
  blocks: number[];
  /**
   * PyTorch `input_resolution` (default 256). The reference decides at construction that a stage whose
   * resolution (256, 128, 64, 32 from level 1 to the body) is <= 8 has only W blocks; with the default every odd
   * block stays SW for any image size, even when its feature map is a single window.
   */
  inputResolution?: number;
}

/** scunet_gray_15/25/50.pth. */
export const SCUNET_GRAY: SCUNetConfig = { inChannels: 1, dim: 64, blocks: [4, 4, 4, 4, 4, 4, 4] };
/** scunet_color_15/25/50.pth and scunet_color_real_psnr/gan.pth. */
export const SCUNET_COLOR: SCUNetConfig = { inChannels: 3, dim: 64, blocks: [4, 4, 4, 4, 4, 4, 4] };

/** The input is padded to a multiple of this: three stride-2 levels (÷8) and 8×8 windows at the deepest one. */
const PAD_MULTIPLE = 64;
const STAGES = ['m_down1', 'm_down2', 'm_down3', 'm_body', 'm_up3', 'm_up2', 'm_up1'] as const;
type StageName = (typeof STAGES)[number];
/** Width of each stage in units of dim, and its resolution divisor. */
const STAGE_WIDTH: Record<StageName, number> = { m_down1: 1, m_down2: 2, m_down3: 4, m_body: 8, m_up3: 4, m_up2: 2, m_up1: 1 };
const STAGE_SCALE: Record<StageName, number> = { m_down1: 1, m_down2: 2, m_down3: 4, m_body: 8, m_up3: 4, m_up2: 2, m_up1: 1 };

function checkConfig(config: SCUNetConfig): void {
  const { inChannels, dim, blocks } = config;
  requireIntegers('SCUNet', { inChannels: [inChannels, 1], inputResolution: [config.inputResolution ?? 256, 1] });
  if (!Number.isInteger(dim) || dim < 2 * WINDOW_ATTENTION_HEAD_DIM || dim % (2 * WINDOW_ATTENTION_HEAD_DIM) !== 0) {
    throw new InvalidInputError(
      `SCUNet dim must be a multiple of ${2 * WINDOW_ATTENTION_HEAD_DIM} (its level-1 Swin half, dim/2 channels, is made of ` +
        `${WINDOW_ATTENTION_HEAD_DIM}-wide heads), got ${dim}`,
    );
  }
  if (!Array.isArray(blocks) || blocks.length !== STAGES.length || !blocks.every((b) => Number.isInteger(b) && b >= 0)) {
    throw new InvalidInputError(`SCUNet config must list ${STAGES.length} non-negative block counts, got ${JSON.stringify(blocks)}`);
  }
}

/**
 * SCUNet (cszn/SCUNet models/network_scunet.py), a U-Net of Swin-Conv blocks:
 *   x0 = ReplicationPad(x) to a multiple of 64 (right and bottom)
 *   x1 = m_head(x0)                       3×3 conv in_nc→dim, no bias
 *   x2 = m_down1(x1), x3 = m_down2(x2), x4 = m_down3(x3)     blocks, then a 2×2 stride-2 conv (no bias)
 *   x  = m_body(x4)
 *   x  = m_up3(x + x4), m_up2(x + x3), m_up1(x + x2)         2×2 stride-2 transposed conv (no bias), then blocks
 *   y  = m_tail(x + x1)[:H, :W]           3×3 conv dim→in_nc, no bias; no global residual, no clamp
 * Block i of a stage is W when i is even and SW when it is odd (see SCUNetConfig.inputResolution). Children
 * and keys are the authors' (m_head.0.weight, m_down1.0.trans_block.msa.relative_position_params, …).
 */
export class SCUNet extends Module implements Network {
  readonly architecture = 'SCUNet';
  readonly scale = 1;
  readonly mHead: Sequential;
  readonly stages: Record<StageName, Sequential>;
  readonly mTail: Sequential;

  constructor(readonly config: SCUNetConfig) {
    super();
    checkConfig(config);
    const { inChannels, dim, blocks } = config;
    const resolution = config.inputResolution ?? 256;
    const stage = (name: StageName, count: number): ConvTransBlock[] => {
      const width = STAGE_WIDTH[name] * dim;
      const singleWindowOnly = Math.floor(resolution / STAGE_SCALE[name]) <= WINDOW_ATTENTION_SIZE;
      return Array.from({ length: count }, (_, i) => new ConvTransBlock(width / 2, width / 2, i % 2 === 1 && !singleWindowOnly));
    };
    const down = (from: number) => new Conv2d(from, 2 * from, 2, { stride: 2, bias: false });
    const up = (from: number) => new ConvTranspose2d(from, from / 2, 2, { stride: 2, bias: false });
    this.mHead = new Sequential(new Conv2d(inChannels, dim, 3, { padding: 1, bias: false }));
    this.stages = {
      m_down1: new Sequential(...stage('m_down1', blocks[0]), down(dim)),
      m_down2: new Sequential(...stage('m_down2', blocks[1]), down(2 * dim)),
      m_down3: new Sequential(...stage('m_down3', blocks[2]), down(4 * dim)),
      m_body: new Sequential(...stage('m_body', blocks[3])),
      m_up3: new Sequential(up(8 * dim), ...stage('m_up3', blocks[4])),
      m_up2: new Sequential(up(4 * dim), ...stage('m_up2', blocks[5])),
      m_up1: new Sequential(up(2 * dim), ...stage('m_up1', blocks[6])),
    };
    this.mTail = new Sequential(new Conv2d(dim, inChannels, 3, { padding: 1, bias: false }));
  }

  /** Every child trains (convolutions, ConvTransBlocks); the skips, padding and crop record their backward here. */
  override get supportsTraining(): boolean {
    return true;
  }

  get inChannels(): number {
    return this.config.inChannels;
  }

  get outChannels(): number {
    return this.config.inChannels;
  }

  override children(): [string, Module][] {
    return [['m_head', this.mHead], ...STAGES.map((s): [string, Module] => [s, this.stages[s]]), ['m_tail', this.mTail]];
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.checkOptions(options, options.label ?? this.architecture);
    const [, h, w, c] = x.shape;
    if (c !== this.config.inChannels) {
      throw new InvalidInputError(`SCUNet expects ${this.config.inChannels} image channel(s), got ${c} (input ${formatShape(x.shape)})`);
    }
    // Records its backward (both inputs get the gradient) when the graph is a training step's.
    const add = (p: TensorValue, q: TensorValue, label: string) => addRecorded(b, p, q, label);
    // Each stage is a Sequential of ConvTransBlocks and its strided (transposed) convolution, run in order.
    const stage = (name: StageName, t: TensorValue) => this.stages[name].forward(b, t, { label: name });
    const padded = paddedToMultiple(h, PAD_MULTIPLE) !== h || paddedToMultiple(w, PAD_MULTIPLE) !== w;
    const x0 = padded ? replicatePadToMultiple(b.graph, x, PAD_MULTIPLE, 'replication pad') : x;
    if (padded) {
      b.training?.tape.record('replication pad', [x], [x0], false, (t) => {
        t.addGrad(x, replicatePadToMultipleBackward(b.graph, t.gradOf(x0)!, x.shape, PAD_MULTIPLE, 'replication pad backward'));
      });
    }
    const x1 = this.mHead.forward(b, x0, { label: 'm_head' });
    const x2 = stage('m_down1', x1);
    const x3 = stage('m_down2', x2);
    const x4 = stage('m_down3', x3);
    let y = stage('m_body', x4);
    y = stage('m_up3', add(y, x4, 'x + x4'));
    y = stage('m_up2', add(y, x3, 'x + x3'));
    y = stage('m_up1', add(y, x2, 'x + x2'));
    y = this.mTail.forward(b, add(y, x1, 'x + x1'), { label: 'm_tail' });
    if (!padded) return y;
    const window = { y0: 0, x0: 0, h, w };
    const out = crop2d(b.graph, y, window, 'crop');
    b.training?.tape.record('crop', [y], [out], false, (t) => {
      t.addGrad(y, crop2dBackward(b.graph, t.gradOf(out)!, y.shape, window, 'crop backward'));
    });
    return out;
  }
}

/** Keys of a ConvTransBlock's own submodules: how a block index is told apart from a stage's strided conv. */
const BLOCK_KEY = /^(m_down[123]|m_body|m_up[123])\.(\d+)\.(trans_block|conv1_1|conv1_2|conv_block)\./;

const NET = 'SCUNet';

/**
 * Recognises an SCUNet state_dict from its key names and shapes alone. Returns null when the keys are not
 * SCUNet's (no `m_head.0.*` / `m_tail.0.*` and no ConvTransBlock keys); otherwise the config: in_nc and dim from
 * `m_head.0.weight` [dim, in_nc, 3, 3], and each stage's block count from its ConvTransBlock indices. Then every
 * key and shape is checked against the network that config builds, and an InvalidInputError names what is
 * missing, unexpected or of the wrong shape.
 */
export function recogniseSCUNet(keys: KeyShapes): SCUNetConfig | null {
  const names = [...keys.keys()];
  const looksLikeSCUNet = names.some((k) => k.startsWith('m_head.0.') || k.startsWith('m_tail.0.') || BLOCK_KEY.test(k));
  if (!looksLikeSCUNet) return null;
  const [dim, inChannels] = shapeOf(keys, 'm_head.0.weight', NET, 4);
  expectShape(keys, 'm_head.0.weight', [dim, inChannels, 3, 3], NET, '[dim, in_nc, 3, 3]');
  const blockIndices = new Map<string, Set<number>>(STAGES.map((s) => [s, new Set<number>()]));
  for (const k of names) {
    const m = BLOCK_KEY.exec(k);
    if (m) blockIndices.get(m[1])!.add(Number(m[2]));
  }
  const config: SCUNetConfig = { inChannels, dim, blocks: STAGES.map((s) => blockIndices.get(s)!.size) };
  checkConfig(config);
  checkKeysMatch(new SCUNet(config), keys, `${NET} (in_nc=${inChannels}, dim=${dim}, config=[${config.blocks.join(',')}])`);
  return config;
}
