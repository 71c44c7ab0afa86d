import type { TensorValue } from '../gpu/graph';
import { pixelShuffle, pixelUnshuffle } from '../kernels/pixel-shuffle';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from '../kernels/pool';
import { pixelShuffleBackward } from '../kernels/layout-backward';
import { globalAvgPool2dBackward, maxPool2dBackward, maxPool2dWithIndices } from '../kernels/pool-backward';
import { resample, type ResampleOptions } from '../kernels/resample';
import { resampleBackward } from '../kernels/resample-backward';
import type { ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';

/**
 * Parameter-free PyTorch modules, so models can be written as their PyTorch counterparts are
 * (`self.pool = nn.MaxPool2d(2)`, `nn.PixelShuffle(2)`, `nn.Upsample(scale_factor=2, mode='nearest')`). Each is
 * one dispatch that fuses nothing.
 */
abstract class SpatialModule extends Module {
  protected abstract readonly defaultLabel: string;
  protected abstract dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue;

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? this.defaultLabel;
    this.checkOptions(options, label);
    return this.dispatch(b, x, label);
  }
}

/**
 * nn.MaxPool2d(kernel, stride = kernel, padding = 0, ceil_mode = false). Training keeps each window's argmax and
 * routes the gradient there (ties to the first, as PyTorch).
 */
export class MaxPool2d extends SpatialModule {
  protected readonly defaultLabel = 'maxpool';
  constructor(readonly options: Pool2dOptions) {
    super();
  }

  override get supportsTraining(): boolean {
    return true;
  }

  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    if (!b.training) return maxPool2d(b.graph, x, this.options, label);
    const { y, indices } = maxPool2dWithIndices(b.graph, x, this.options, label);
    b.training.tape.record(label, [x], [y], false, (t) => {
      t.addGrad(x, maxPool2dBackward(b.graph, t.gradOf(y)!, indices, x.shape, this.options, `${label} backward`));
    });
    return y;
  }
}

/** nn.AvgPool2d(kernel, stride = kernel, padding = 0, ceil_mode = false, count_include_pad = true). */
export class AvgPool2d extends SpatialModule {
  protected readonly defaultLabel = 'avgpool';
  constructor(readonly options: Pool2dOptions) {
    super();
  }
  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    return avgPool2d(b.graph, x, this.options, label);
  }
}

/** nn.AdaptiveAvgPool2d(1): the global average, [n, 1, 1, c]; its gradient is g/(H·W) at every pixel. */
export class AdaptiveAvgPool2d extends SpatialModule {
  protected readonly defaultLabel = 'gap';

  override get supportsTraining(): boolean {
    return true;
  }

  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    const y = globalAvgPool2d(b.graph, x, label);
    b.training?.tape.record(label, [x], [y], false, (t) => {
      t.addGrad(x, globalAvgPool2dBackward(b.graph, t.gradOf(y)!, x.shape, `${label} backward`));
    });
    return y;
  }
}

/** nn.Upsample / F.interpolate with mode 'nearest' (legacy floor index) or 'bilinear'. */
export class Upsample extends SpatialModule {
  protected readonly defaultLabel = 'upsample';
  constructor(readonly options: ResampleOptions) {
    super();
  }

  override get supportsTraining(): boolean {
    return true;
  }

  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    const y = resample(b.graph, x, this.options, label);
    b.training?.tape.record(label, [x], [y], false, (t) => {
      t.addGrad(x, resampleBackward(b.graph, t.gradOf(y)!, x.shape, this.options, `${label} backward`));
    });
    return y;
  }
}

/** nn.PixelShuffle(r): [n, h, w, c·r²] → [n, h·r, w·r, c] in PyTorch's channel order. */
export class PixelShuffle extends SpatialModule {
  protected readonly defaultLabel = 'pixel_shuffle';
  constructor(readonly upscaleFactor: number) {
    super();
  }

  override get supportsTraining(): boolean {
    return true;
  }

  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    const y = pixelShuffle(b.graph, x, this.upscaleFactor, label);
    b.training?.tape.record(label, [x], [y], false, (t) => {
      t.addGrad(x, pixelShuffleBackward(b.graph, t.gradOf(y)!, x.shape, this.upscaleFactor, `${label} backward`));
    });
    return y;
  }
}

/** nn.PixelUnshuffle(r): the inverse of PixelShuffle. */
export class PixelUnshuffle extends SpatialModule {
  protected readonly defaultLabel = 'pixel_unshuffle';
  constructor(readonly downscaleFactor: number) {
    super();
  }
  protected dispatch(b: ForwardBuilder, x: TensorValue, label: string): TensorValue {
    return pixelUnshuffle(b.graph, x, this.downscaleFactor, label);
  }
}
