import { InvalidInputError } from '../errors';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import { packRelativePositionBias, WINDOW_ATTENTION_HEAD_DIM, WINDOW_ATTENTION_SIZE, windowAttention } from '../kernels/window-attention';
import { selectWindowAttentionVariant } from '../kernels/window-attention-variants';
import { GELU } from './activations';
import { LayerNorm } from './layernorm';
import { Linear } from './linear';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, type Parameter, parameter, requireData } from './module';
import { Sequential } from './sequential';
import { wmsaTrainingForward } from './swin-training';

/** 2·8 − 1 relative offsets per axis. */
const REL = 2 * WINDOW_ATTENTION_SIZE - 1;

/**
 * SCUNet's WMSA (models/network_scunet.py): window ('W') or shifted-window ('SW') multi-head self-attention on
 * 8×8 windows with 32-wide heads, on a channels-last map. PyTorch children `embedding_layer` (Linear C→3C) and
 * `linear` (C→C), and the parameter `relative_position_params` [heads, 15, 15]. The attention core (shift,
 * window partition, bias, SW mask, softmax, reverse shift) is one fused kernel, src/kernels/window-attention.ts.
 */
export class WMSA extends Module {
  readonly heads: number;
  readonly embeddingLayer: Linear;
  readonly linear: Linear;
  readonly relativePositionParams: Parameter;

  constructor(
    readonly dim: number,
    readonly shifted: boolean,
  ) {
    super();
    if (!Number.isInteger(dim) || dim < WINDOW_ATTENTION_HEAD_DIM || dim % WINDOW_ATTENTION_HEAD_DIM !== 0) {
      throw new InvalidInputError(`WMSA: ${dim} channels are not a whole number of ${WINDOW_ATTENTION_HEAD_DIM}-wide heads`);
    }
    this.heads = dim / WINDOW_ATTENTION_HEAD_DIM;
    this.embeddingLayer = new Linear(dim, 3 * dim);
    this.linear = new Linear(dim, dim);
    this.relativePositionParams = parameter([this.heads, REL, REL]);
  }

  override parameters(): Record<string, Parameter> {
    return { relative_position_params: this.relativePositionParams };
  }

  override children(): [string, Module][] {
    return [
      ['embedding_layer', this.embeddingLayer],
      ['linear', this.linear],
    ];
  }

  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  /** WMSA(x), with `options` (e.g. the block's shortcut as a residual) fused into the output projection. */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'msa';
    if (b.training) return wmsaTrainingForward(b, this, x, options, label);
    const { bias } = this.onDevice(b.ctx, () => {
      const packed = packRelativePositionBias(requireData(this.relativePositionParams, 'relative_position_params'), this.heads);
      return { bias: b.ctx.createBufferWithData(packed, BufferUsage.STORAGE, `wmsa ${this.dim} bias`) };
    });
    const qkv = this.embeddingLayer.forward(b, x, { label: `${label}.embedding_layer` });
    const attention = windowAttention(
      b.graph,
      qkv,
      {
        bias,
        heads: this.heads,
        shifted: this.shifted,
        variant: selectWindowAttentionVariant(b.ctx),
        label: `${label}.attention${this.shifted ? '[SW]' : '[W]'}`,
      },
      undefined,
    );
    return this.linear.forward(b, attention, { ...options, label: `${label}.linear` });
  }
}

/**
 * SCUNet's Swin `Block` on a channels-last map [n, H, W, C] (H, W multiples of 8):
 *   x = x + WMSA(LN1(x));  x = x + Linear(4C→C)(GELU(Linear(C→4C)(LN2(x))))
 * LayerNorm eps 1e-5 (PyTorch's default), GELU exact (erf). Children `ln1`, `msa`, `ln2`, `mlp` (0, 1, 2).
 */
export class SwinBlock extends Module {
  readonly ln1: LayerNorm;
  readonly msa: WMSA;
  readonly ln2: LayerNorm;
  readonly mlp: Sequential;

  constructor(
    readonly dim: number,
    readonly shifted: boolean,
  ) {
    super();
    this.ln1 = new LayerNorm(dim, 1e-5);
    this.msa = new WMSA(dim, shifted);
    this.ln2 = new LayerNorm(dim, 1e-5);
    this.mlp = new Sequential(new Linear(dim, 4 * dim), new GELU(), new Linear(4 * dim, dim));
  }

  override children(): [string, Module][] {
    return [
      ['ln1', this.ln1],
      ['msa', this.msa],
      ['ln2', this.ln2],
      ['mlp', this.mlp],
    ];
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  /** In training its children record their backward (the shortcuts are their fused residuals). */
  override get supportsTraining(): boolean {
    return true;
  }

  /** With `options.output`, the block's result goes into a channel slice of that tensor (a concatenation buffer). */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'trans_block';
    this.checkOptions(options, label);
    if (x.shape[3] !== this.dim) {
      throw new InvalidInputError(`${label}: Swin block of ${this.dim} channels got ${formatShape(x.shape)}`);
    }
    const shortcut = (tensor: TensorValue) => ({ residual: { tensor, mode: 'afterActivation' as const } });
    const attended = this.msa.forward(b, this.ln1.forward(b, x, { label: `${label}.ln1` }), {
      epilogue: shortcut(x),
      label: `${label}.msa`,
    });
    const normed = this.ln2.forward(b, attended, { label: `${label}.ln2` });
    return this.mlp.forward(b, normed, { epilogue: shortcut(attended), output: options.output, label: `${label}.mlp` });
  }
}
