import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { BufferUsage } from '../gpu/flags';
import type { TensorValue } from '../gpu/graph';
import { packPreluSlopes } from '../kernels/conv2d-geometry';
import { preluForward } from '../kernels/prelu';
import type { Epilogue, ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module, type Parameter, parameter, requireData } from './module';
import { preluTrainingForward } from './prelu-training';

/**
 * nn.PReLU(num_parameters): `weight` [1] (one slope shared by every channel, PyTorch's default) or [C] (one per
 * channel). For inference a convolution runs it in its epilogue (`epilogue()`); `forward` dispatches it on its
 * own, which training always does (prelu-training.ts: its backward needs the input).
 *
 * A PReLU may sit behind a PixelShuffle(r) (SRResNet's upsample blocks: conv → PixelShuffle → PReLU). PixelShuffle
 * only moves values, and conv channel k lands in shuffled channel ⌊k / r²⌋, so the PReLU can run in the conv's
 * epilogue with each slope repeated r² times (`repeat`).
 */
export class PReLU extends Module {
  readonly weight: Parameter;

  override get supportsTraining(): boolean {
    return true;
  }

  constructor(readonly numParameters = 1) {
    super();
    if (!Number.isInteger(numParameters) || numParameters < 1) {
      throw new InvalidInputError(`PReLU num_parameters must be a positive integer, got ${numParameters}`);
    }
    this.weight = parameter([numParameters]);
  }

  override parameters(): Record<string, Parameter> {
    return { weight: this.weight };
  }

  /**
   * The vec4-padded slopes for a convolution with `channels` outputs, where output k gets the slope of PReLU
   * channel ⌊k / repeat⌋. Uploaded once per (context, channels, repeat).
   */
  private slopes(ctx: GPUContext, channels: number, repeat = 1): GPUBuffer {
    return this.onDevice(
      ctx,
      () => {
        const w = requireData(this.weight, 'PReLU weight');
        if (w.length !== 1 && w.length * repeat !== channels) {
          throw new InvalidInputError(
            `PReLU with ${w.length} slopes cannot follow ${channels} channels` + (repeat > 1 ? ` shuffled by ${repeat}` : ''),
          );
        }
        const perChannel = w.length === 1 ? w : Float64Array.from({ length: channels }, (_, k) => w[Math.floor(k / repeat)]);
        return { slopes: ctx.createBufferWithData(packPreluSlopes(perChannel, channels), BufferUsage.STORAGE, `prelu ${channels} slopes`) };
      },
      `${channels}/${repeat}`,
    ).slopes;
  }

  /** The epilogue a convolution with `channels` outputs runs this PReLU in (see `slopes`). */
  epilogue(b: ForwardBuilder, channels: number, repeat = 1): Epilogue {
    return { prelu: this.slopes(b.ctx, channels, repeat) };
  }

  /** A dispatch of its own (kernels/prelu.ts); in a training graph it records its backward. */
  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'prelu';
    this.checkOptions(options, label);
    if (b.training) return preluTrainingForward(b, this, x, label);
    return preluForward(b.graph, x, this.slopes(b.ctx, x.shape[3]), label);
  }
}
