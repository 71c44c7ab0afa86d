import type { GPUContext } from '../gpu/context';
import type { Graph, TensorValue } from '../gpu/graph';
import { pixelShuffle, pixelUnshuffle } from '../kernels/pixel-shuffle';
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from '../kernels/pool';
import { resample, type ResampleOptions } from '../kernels/resample';
import { Module } from './module';

/**
 * Parameter-free PyTorch modules, so models can be written as their PyTorch counterparts are
 * (`self.pool = nn.MaxPool2d(2)`, `nn.PixelShuffle(2)`, `nn.Upsample(scale_factor=2, mode='nearest')`).
 */
abstract class SpatialModule extends Module {
  abstract forward(ctx: GPUContext, graph: Graph, x: TensorValue, label?: string): TensorValue;
}

const maxWG = (ctx: GPUContext) => ctx.limits.maxComputeWorkgroupsPerDimension;

/** nn.MaxPool2d(kernel, stride = kernel, padding = 0, ceil_mode = false). */
export class MaxPool2d extends SpatialModule {
  constructor(readonly options: Pool2dOptions) {
    super();
  }
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'maxpool'): TensorValue {
    return maxPool2d(graph, x, this.options, label, maxWG(ctx));
  }
}

/** nn.AvgPool2d(kernel, stride = kernel, padding = 0, ceil_mode = false, count_include_pad = true). */
export class AvgPool2d extends SpatialModule {
  constructor(readonly options: Pool2dOptions) {
    super();
  }
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'avgpool'): TensorValue {
    return avgPool2d(graph, x, this.options, label, maxWG(ctx));
  }
}

/** nn.AdaptiveAvgPool2d(1): the global average, [n, 1, 1, c]. */
export class AdaptiveAvgPool2d extends SpatialModule {
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'gap'): TensorValue {
    return globalAvgPool2d(graph, x, label, maxWG(ctx));
  }
}

/** nn.Upsample / F.interpolate with mode 'nearest' (legacy floor index) or 'bilinear'. */
export class Upsample extends SpatialModule {
  constructor(readonly options: ResampleOptions) {
    super();
  }
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'upsample'): TensorValue {
    return resample(graph, x, this.options, label, maxWG(ctx));
  }
}

/** nn.PixelShuffle(r): [n, h, w, c·r²] → [n, h·r, w·r, c] in PyTorch's channel order. */
export class PixelShuffle extends SpatialModule {
  constructor(readonly upscaleFactor: number) {
    super();
  }
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'pixel_shuffle'): TensorValue {
    return pixelShuffle(graph, x, this.upscaleFactor, label, maxWG(ctx));
  }
}

/** nn.PixelUnshuffle(r): the inverse of PixelShuffle. */
export class PixelUnshuffle extends SpatialModule {
  constructor(readonly downscaleFactor: number) {
    super();
  }
  forward(ctx: GPUContext, graph: Graph, x: TensorValue, label = 'pixel_unshuffle'): TensorValue {
    return pixelUnshuffle(graph, x, this.downscaleFactor, label, maxWG(ctx));
  }
}
