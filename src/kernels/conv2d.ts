import { InvalidInputError } from '../errors';
import { type BindingLimits, convRowBands } from './conv2d-bands';
import { shareOf } from '../gpu/cost';
import { type Binding, type Graph, type TensorValue } from '../gpu/graph';
import type { LazyShaderSource } from '../gpu/shader';
import { paddedChannels } from '../gpu/tensor';
import { type Activation, activationAlpha, NO_ACTIVATION } from './activation';
import { conv2dCost } from './conv2d-cost';
import { type Conv2dGeometry, conv2dOutputShape, isDepthwiseConv2d } from './conv2d-geometry';
import type { Conv2dVariant } from './conv2d-variants';
import { kernelShader } from './kernel-source';
import { conv2dLanesLabel, conv2dLanesWgsl } from './conv2d-lanes.wgsl';
import {
  type Conv2dEpilogueKey,
  conv2dLabel,
  conv2dWgsl,
  depthwiseConv2dLabel,
  depthwiseConv2dWgsl,
  type ResidualMode,
} from './conv2d.wgsl';

/*
 * Graph emission of a convolution: one dispatch (or one per row band) with its shader variant, uniforms and
 * bindings. The geometry and weight packing live in conv2d-geometry.ts, the variant table in conv2d-variants.ts.
 */

export type { ResidualMode } from './conv2d.wgsl';

/**
 * What is fused after the convolution, in this order: conv → + bias → (+ residual, 'beforeActivation') →
 * activation or PReLU → × scale → (+ residual, 'afterActivation') → padded channels zeroed.
 * ResNet BasicBlock's second conv is `{ activation: relu, residual: { tensor: identity, mode: 'beforeActivation' } }`;
 * ESRGAN's `x5 * 0.2 + x` is `{ scale: 0.2, residual: { tensor: x, mode: 'afterActivation' } }`.
 */
export interface Conv2dEpilogue {
  activation?: Activation;
  /** PReLU slopes (a buffer from `packPreluSlopes`); replaces `activation`, which must then be none. */
  prelu?: Binding;
  /** Multiplies the activated value (default 1). */
  scale?: number;
  /**
   * A tensor with the convolution's output shape [n, ho, wo, Cout], added before or after the activation. With
   * `prefix`, the tensor may have more channels and its first Cout are added (a dense block's concatenation
   * buffer, whose first piece is the block input).
   */
  residual?: { tensor: TensorValue; mode: ResidualMode; prefix?: boolean };
  /** Write into channels [offset, offset + outChannels) of `output` (concatenation without a copy). */
  outChannelOffset?: number;
}

/**
 * Adds one convolution dispatch to `graph`: `output` (or a new tensor) = the epilogue (see `Conv2dEpilogue`) of
 * conv(input). `weight`, `bias` and `epilogue.prelu` are GPU buffers in the packed layouts above. Depthwise
 * geometries (groups = Cin = Cout) run the depthwise kernel with the same tiling parameters.
 */
export function conv2d(
  graph: Graph,
  input: TensorValue,
  params: {
    weight: Binding;
    bias?: Binding;
    geometry: Conv2dGeometry;
    variant: Conv2dVariant;
    label: string;
    /**
     * Read only the first `geometry.inChannels` channels of a wider input (groups = 1): a dense block's layer
     * reads the prefix of the concatenation buffer that later layers keep writing into.
     */
    readInputPrefix?: boolean;
    /** With these, a convolution over tensors larger than one binding runs in row bands (conv2d-bands.ts). */
    bindingLimits?: BindingLimits;
  },
  epilogue: Conv2dEpilogue = {},
  output?: TensorValue,
): TensorValue {
  const g = params.geometry;
  const v = { ...params.variant };
  if (params.readInputPrefix) {
    if ((g.groups ?? 1) !== 1) throw new InvalidInputError(`${params.label}: reading an input channel prefix needs groups = 1`);
    if (input.shape[3] < g.inChannels) {
      throw new InvalidInputError(
        `${params.label}: input has ${input.shape[3]} channels, fewer than the ${g.inChannels} the convolution reads`,
      );
    }
  }
  const [n, h, w, cin] = input.shape;
  const outShape = conv2dOutputShape(params.readInputPrefix ? [n, h, w, g.inChannels] : input.shape, g);
  const offset = epilogue.outChannelOffset ?? 0;
  const out = output ?? graph.tensor(outShape, params.label);
  if (out.shape[0] !== outShape[0] || out.shape[1] !== outShape[1] || out.shape[2] !== outShape[2]) {
    throw new InvalidInputError(`${params.label}: output tensor ${out.shape.join('x')} does not match ${outShape.join('x')}`);
  }
  if (offset % 4 !== 0 || offset + g.outChannels > out.shape[3]) {
    throw new InvalidInputError(
      `${params.label}: channel offset ${offset} (+${g.outChannels}) must be a multiple of 4 inside ${out.shape[3]} channels`,
    );
  }
  const activation = epilogue.activation ?? NO_ACTIVATION;
  if (epilogue.prelu && activation.kind !== 'none') {
    throw new InvalidInputError(`${params.label}: PReLU replaces the activation, got both prelu and ${activation.kind}`);
  }
  const scale = epilogue.scale ?? 1;
  if (!Number.isFinite(scale)) throw new InvalidInputError(`${params.label}: scale ${scale} is not finite`);
  const residual = epilogue.residual;
  if (residual) {
    const r = residual.tensor.shape;
    const channelsOk = residual.prefix ? r[3] >= outShape[3] : r[3] === outShape[3];
    if (r.length !== 4 || r.some((d, i) => i < 3 && d !== outShape[i]) || !channelsOk) {
      throw new InvalidInputError(`${params.label}: residual ${r.join('x')} does not match the output ${outShape.join('x')}`);
    }
    if (residual.tensor.id === out.id) {
      throw new InvalidInputError(`${params.label}: the residual cannot be the output tensor itself (write to a new tensor)`);
    }
    if (residual.mode !== 'beforeActivation' && residual.mode !== 'afterActivation') {
      throw new InvalidInputError(
        `${params.label}: residual mode '${String(residual.mode)}' (expected beforeActivation or afterActivation)`,
      );
    }
  }
  const [, ho, wo] = outShape;
  const cout4 = paddedChannels(g.outChannels) / 4;
  const groups = g.groups ?? 1;
  const depthwise = isDepthwiseConv2d(g);
  // Channel blocks: depthwise and groups = 1 tile all output vec4s; grouped convs tile within each group.
  const coutg4 = depthwise ? cout4 : cout4 / groups;
  const gblocks = Math.ceil(coutg4 / v.cb);
  const coBlocks = depthwise ? gblocks : groups * gblocks;
  const tilesX = Math.ceil(wo / v.px);
  // `total` counts what the linear invocation index runs over: (pixel tile, channel block) pairs, or only
  // pixel tiles when the channel block comes from the workgroup index.
  const tiles = n * ho * tilesX;
  const total = v.uniformWeights ? tiles : tiles * coBlocks;
  const epilogueKey: Conv2dEpilogueKey = {
    hasBias: params.bias !== undefined,
    activation,
    ...(epilogue.prelu ? { prelu: true } : {}),
    ...(residual ? { residual: residual.mode } : {}),
  };
  const common = {
    n,
    h,
    w,
    ho,
    wo,
    cout4,
    cout: g.outChannels,
    pad_y: g.padding[0],
    pad_x: g.padding[1],
    co_blocks: coBlocks,
    tiles_x: tilesX,
    total,
    out_c4_offset: offset / 4,
    out_c4_total: paddedChannels(out.shape[3]) / 4,
    alpha: activationAlpha(activation),
    scale,
    // Channel stride of the residual tensor (wider than the output when it is a prefix).
    res_c4_total: residual ? paddedChannels(residual.tensor.shape[3]) / 4 : cout4,
  };
  let kernel: LazyShaderSource;
  // Shader keys name the activation by kind: LeakyReLU's slope is a uniform, so every slope shares one shader.
  const keyParts = (family: string, key: Conv2dEpilogueKey) => ({ family, variant: v, epilogue: { ...key, activation: activation.kind } });
  let uniforms: Record<string, number>;
  // Workgroups and the uniforms that follow the number of output rows (row bands run fewer).
  let grid = (rows: number): { workgroups: number; uniforms: Record<string, number> } => {
    const t = n * rows * tilesX;
    const tot = v.uniformWeights ? t : t * coBlocks;
    return {
      workgroups: v.uniformWeights ? coBlocks * Math.ceil(t / v.workgroupSize) : Math.ceil(tot / v.workgroupSize),
      uniforms: { total: tot },
    };
  };
  if (v.channelLanes && !depthwise) {
    if (groups !== 1) throw new InvalidInputError(`${params.label}: channel-lanes convolution needs groups = 1, got ${groups}`);
    const key = {
      ...epilogueKey,
      kernelH: g.kernelSize[0],
      kernelW: g.kernelSize[1],
      maskChannels: g.outChannels % 4 !== 0,
      stride: g.stride,
      dilation: g.dilation,
    };
    kernel = kernelShader(conv2dLanesLabel(key, v), keyParts('conv2d_lanes', key), (io) => conv2dLanesWgsl(key, v, io));
    const rowsPerTile = v.rows ?? 1;
    const chanWgs = Math.ceil(cout4 / (v.workgroupSize * v.cb));
    const { co_blocks: _c, total: _t, ...rest } = common;
    grid = (rows) => {
      const tilesY = Math.ceil(rows / rowsPerTile);
      return { workgroups: n * tilesY * tilesX * chanWgs, uniforms: { tiles_y: tilesY } };
    };
    uniforms = { ...rest, cin4: paddedChannels(cin) / 4, cing4: paddedChannels(g.inChannels) / 4, chan_wgs: chanWgs, ...grid(ho).uniforms };
  } else if (depthwise) {
    const key = { ...epilogueKey, kernelH: g.kernelSize[0], kernelW: g.kernelSize[1], stride: g.stride, dilation: g.dilation };
    kernel = kernelShader(depthwiseConv2dLabel(key, v), keyParts('dwconv2d', key), (io) => depthwiseConv2dWgsl(key, v, io));
    uniforms = { ...common, c4: cout4 };
  } else {
    const key = {
      ...epilogueKey,
      kernelH: g.kernelSize[0],
      kernelW: g.kernelSize[1],
      maskChannels: g.outChannels % 4 !== 0,
      ...(v.rowReuse ? { stride: g.stride, dilation: g.dilation } : {}),
    };
    kernel = kernelShader(conv2dLabel(key, v), keyParts('conv2d', key), (io) => conv2dWgsl(key, v, io));
    uniforms = {
      ...common,
      cin4: paddedChannels(cin) / 4,
      stride: g.stride,
      dilation: g.dilation,
      // cin4 is the input's channel stride; cing4 counts the channels read (fewer for a prefix read).
      cing4: paddedChannels(g.inChannels / groups) / 4,
      coutg4,
      gblocks,
    };
  }
  const constants = {
    weight: params.weight,
    ...(params.bias ? { bias: params.bias } : {}),
    ...(epilogue.prelu ? { slope: epilogue.prelu } : {}),
  };
  const bands =
    n === 1 && params.bindingLimits
      ? convRowBands(
          {
            h,
            ho,
            kernelH: g.kernelSize[0],
            stride: g.stride,
            dilation: g.dilation,
            padTop: g.padding[0],
            inRowBytes: w * paddedChannels(cin) * 4,
            outRowBytes: wo * paddedChannels(out.shape[3]) * 4,
            ...(residual ? { resRowBytes: wo * paddedChannels(residual.tensor.shape[3]) * 4 } : {}),
          },
          params.bindingLimits,
        )
      : null;
  const cost = conv2dCost(input.shape, outShape, g, { bias: !!params.bias, prelu: !!epilogue.prelu, residual: !!residual });
  if (!bands) {
    graph.add({
      label: params.label,
      kernel,
      uniforms,
      bindings: { x: input, ...constants, y: out, ...(residual ? { res: residual.tensor } : {}) },
      workgroups: grid(ho).workgroups,
      cost,
    });
    return out;
  }
  const slice = (tensor: TensorValue, row0: number, rows: number) => {
    const rowBytes = tensor.shape[2] * paddedChannels(tensor.shape[3]) * 4;
    return { tensor, offset: row0 * rowBytes, size: rows * rowBytes };
  };
  for (const band of bands) {
    const bandRows = band.oy1 - band.oy0;
    const bandGrid = grid(bandRows);
    graph.add({
      label: `${params.label} rows ${band.oy0}-${band.oy1 - 1}`,
      kernel,
      uniforms: { ...uniforms, h: band.rows, ho: bandRows, pad_y: band.padY, ...bandGrid.uniforms },
      bindings: {
        x: slice(input, band.r0, band.rows),
        ...constants,
        y: slice(out, band.oy0, bandRows),
        ...(residual ? { res: slice(residual.tensor, band.oy0, bandRows) } : {}),
      },
      workgroups: bandGrid.workgroups,
      // Each band its share by output rows, so the bands sum to the whole convolution.
      cost: { flops: shareOf(cost.flops, band.oy0, band.oy1, ho), bytes: shareOf(cost.bytes, band.oy0, band.oy1, ho) },
    });
  }
  return out;
}
