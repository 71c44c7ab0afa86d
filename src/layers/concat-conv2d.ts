import type { TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { InvalidInputError } from '../errors';
import { Conv2d, type Conv2dOptions } from './conv2d';
import { conv2dTrainingForward } from './conv2d-training';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, type Parameter, parameter, requireData } from './module';

/**
 * Dense blocks concatenate their input and every layer's output, `cat(x, x1, x2, …)`, and each layer reads all
 * of it. Here the pieces share one buffer: piece k starts at channel `offsets[k]` (a multiple of 4, as channel
 * offset writes need), so a piece whose width is not a multiple of 4 leaves a gap of zeros behind it. A layer
 * reading the first m pieces reads the buffer's first `offsets[m]` channels (a prefix read), and its weights get
 * zero columns at the gaps. With widths that are multiples of 4 (ESRGAN's 64 and 32) there are no gaps.
 */
export interface ConcatLayout {
  /** Channel offset of every piece, then the total width. */
  offsets: number[];
  width: number;
}

export function concatLayout(pieces: readonly number[]): ConcatLayout {
  const offsets: number[] = [];
  let width = 0;
  for (const c of pieces) {
    if (!Number.isInteger(c) || c < 1) throw new InvalidInputError(`concatenation piece width ${c} must be a positive integer`);
    offsets.push(width);
    width += paddedChannels(c);
  }
  return { offsets, width };
}

/**
 * nn.Conv2d over `cat(pieces)` with PyTorch's parameters (`weight` [Cout, Σpieces, kH, kW], `bias`), run on the
 * first `concatLayout(pieces).width` channels of a concatenation buffer without copying anything.
 */
export class ConcatConv2d extends Module {
  override get fusesEpilogue(): boolean {
    return true;
  }

  override get writesChannelSlice(): boolean {
    return true;
  }

  /** In a training graph it runs as a plain convolution over an explicit concatenation (see `forward`). */
  override get supportsTraining(): boolean {
    return true;
  }

  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  readonly layout: ConcatLayout;
  private readonly logicalIn: number;
  private readonly conv: Conv2d;
  private expandedFrom: Float64Array | undefined;

  constructor(
    readonly pieces: readonly number[],
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Omit<Conv2dOptions, 'groups'> = {},
  ) {
    super();
    this.layout = concatLayout(pieces);
    this.logicalIn = pieces.reduce((a, b) => a + b, 0);
    this.weight = parameter([outChannels, this.logicalIn, kernelSize, kernelSize]);
    this.bias = (options.bias ?? true) ? parameter([outChannels]) : undefined;
    this.conv = new Conv2d(this.layout.width, outChannels, kernelSize, { ...options, readsInputPrefix: true });
  }

  override parameters(): Record<string, Parameter> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** PyTorch weight → the buffer layout: input channel i of piece k moves to offsets[k] + i; gaps get zeros. */
  private expand(w: Float64Array): Float64Array {
    const { offsets, width } = this.layout;
    if (width === this.logicalIn) return w;
    const k2 = this.kernelSize * this.kernelSize;
    const out = new Float64Array(this.outChannels * width * k2);
    for (let co = 0; co < this.outChannels; co++) {
      let ci = 0;
      this.pieces.forEach((c, k) => {
        for (let i = 0; i < c; i++, ci++) {
          const src = (co * this.logicalIn + ci) * k2;
          out.set(w.subarray(src, src + k2), (co * width + offsets[k] + i) * k2);
        }
      });
    }
    return out;
  }

  protected override internals(): Module[] {
    return [this.conv];
  }

  /** Gives the buffer-layout convolution the expanded weights, again whenever new ones were loaded. */
  private prepare(): void {
    const w = requireData(this.weight, 'ConcatConv2d weight');
    if (this.expandedFrom === w) return;
    this.conv.release();
    this.conv.weight.data = this.expand(w);
    if (this.bias && this.conv.bias) this.conv.bias.data = requireData(this.bias, 'ConcatConv2d bias');
    this.expandedFrom = w;
  }

  /**
   * Inference: reads the first `layout.width` channels of the concatenation buffer `x`; fuses an epilogue, can write
   * a slice.
   *
   * Training: `x` is the dense concatenation itself, `cat(pieces)` with Σpieces channels (autograd-ops
   * `concatPieces`), and the layer is an ordinary Conv2d over it with the PyTorch weight as it is: no zero gaps
   * (so any piece widths train, e.g. SINSR's 4-channel growth), no weight expansion, and no prefix reads or slice
   * writes, whose gradients would have to be gathered from every later reader of the shared buffer. Each
   * concatenation records its own backward, so the tape sums a piece's gradient over all the layers that read it.
   * The cost is one extra copy of the concatenation per layer, which PyTorch's torch.cat pays as well.
   */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'concat_conv2d';
    if (b.training) {
      if (options.output)
        throw new InvalidInputError(`${label}: training a ConcatConv2d that writes into a channel slice is not supported`);
      if (x.shape[3] !== this.logicalIn) {
        throw new InvalidInputError(
          `${label}: in training, a ConcatConv2d reads the dense concatenation of its pieces (${this.pieces.join('+')} = ` +
            `${this.logicalIn} channels), got ${x.shape[3]}`,
        );
      }
      const trained = {
        geometry: { ...this.conv.geometry, inChannels: this.logicalIn },
        weight: this.weight,
        bias: this.bias,
        inChannels: this.logicalIn,
        readsPrefix: false,
      };
      return conv2dTrainingForward(b, trained, x, options, label);
    }
    this.prepare();
    return this.conv.forward(b, x, options);
  }
}
