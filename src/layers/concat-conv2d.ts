import type { TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { InvalidInputError } from '../errors';
import { Conv2d, type Conv2dOptions } from './conv2d';
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

  /** Reads the first `layout.width` channels of the concatenation buffer `x`; fuses an epilogue, can write a slice. */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    this.prepare();
    return this.conv.forward(b, x, options);
  }
}
