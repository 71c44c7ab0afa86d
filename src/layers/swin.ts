import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { Graph, TensorValue } from '../gpu/graph';
import { formatShape } from '../gpu/tensor';
import type { Activation } from '../kernels/activation';
import {
  packRelativePositionBias,
  selectWindowAttentionVariant,
  WINDOW_ATTENTION_HEAD_DIM,
  WINDOW_ATTENTION_SIZE,
  windowAttention,
} from '../kernels/window-attention';
import { GELU } from './activations';
import { LayerNorm } from './layernorm';
import { Linear } from './linear';
import { Module, type Parameter, parameter, requireData } from './module';
import { Sequential } from './sequential';

const GELU_ACTIVATION: Activation = { kind: 'gelu' };
/** 2·8 − 1 relative offsets per axis. */
const REL = 2 * WINDOW_ATTENTION_SIZE - 1;

/** Where a layer writes its result: a new tensor, or channels [channelOffset, …) of a wider one. */
export interface OutputSlice {
  tensor: TensorValue;
  channelOffset: number;
}

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
  private gpu: { ctx: GPUContext; bias: GPUBuffer } | undefined;

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

  upload(ctx: GPUContext): void {
    if (this.gpu?.ctx === ctx) return;
    this.gpu?.bias.destroy();
    const packed = packRelativePositionBias(requireData(this.relativePositionParams, 'relative_position_params'), this.heads);
    this.gpu = { ctx, bias: ctx.createBufferWithData(packed, BufferUsage.STORAGE, `wmsa ${this.dim} bias`) };
  }

  /** `residual + WMSA(x)`: the output projection's epilogue adds the block's shortcut. */
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, residual: TensorValue, label = 'msa'): TensorValue {
    this.upload(ctx);
    const qkv = this.embeddingLayer.forward(ctx, graph, x, {}, `${label}.embedding_layer`);
    const attention = windowAttention(
      graph,
      qkv,
      {
        bias: this.gpu!.bias,
        heads: this.heads,
        shifted: this.shifted,
        variant: selectWindowAttentionVariant(ctx.adapter),
        label: `${label}.attention${this.shifted ? '[SW]' : '[W]'}`,
      },
      undefined,
      ctx.limits.maxComputeWorkgroupsPerDimension,
    );
    return this.linear.forward(ctx, graph, attention, { residual: { tensor: residual, mode: 'afterActivation' } }, `${label}.linear`);
  }

  release(): void {
    this.gpu?.bias.destroy();
    this.gpu = undefined;
    this.embeddingLayer.release();
    this.linear.release();
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
  private readonly mlpIn: Linear;
  private readonly mlpOut: Linear;

  constructor(
    readonly dim: number,
    readonly shifted: boolean,
  ) {
    super();
    this.ln1 = new LayerNorm(dim, 1e-5);
    this.msa = new WMSA(dim, shifted);
    this.ln2 = new LayerNorm(dim, 1e-5);
    this.mlpIn = new Linear(dim, 4 * dim);
    this.mlpOut = new Linear(4 * dim, dim);
    this.mlp = new Sequential(this.mlpIn, new GELU(), this.mlpOut);
  }

  override children(): [string, Module][] {
    return [
      ['ln1', this.ln1],
      ['msa', this.msa],
      ['ln2', this.ln2],
      ['mlp', this.mlp],
    ];
  }

  /** With `output`, the block's result goes into a channel slice of that tensor (a concatenation buffer). */
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'trans_block', output?: OutputSlice): TensorValue {
    if (x.shape[3] !== this.dim) {
      throw new InvalidInputError(`${label}: Swin block of ${this.dim} channels got ${formatShape(x.shape)}`);
    }
    const attended = this.msa.forward(ctx, graph, this.ln1.forward(ctx, graph, x, `${label}.ln1`), x, `${label}.msa`);
    const hidden = this.mlpIn.forward(ctx, graph, this.ln2.forward(ctx, graph, attended, `${label}.ln2`), { activation: GELU_ACTIVATION }, `${label}.mlp.0`);
    return this.mlpOut.forward(
      ctx,
      graph,
      hidden,
      { residual: { tensor: attended, mode: 'afterActivation' }, outChannelOffset: output?.channelOffset ?? 0 },
      `${label}.mlp.2`,
      output?.tensor,
    );
  }

  release(): void {
    this.ln1.release();
    this.msa.release();
    this.ln2.release();
    this.mlpIn.release();
    this.mlpOut.release();
  }
}
