import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements, placedExtent } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { type ConcatOptions, type ConcatPlacement, placement } from './concat';
import { kernelShader } from './kernel-source';
import { type CropWindow, type Pad2d, type PadMode, pad2dOutputShape, paddedToMultiple } from './pad';
import { depthToSpace, type PixelShuffleMode, pixelShuffle, pixelShuffleOutputShape, pixelUnshuffle, spaceToDepth } from './pixel-shuffle';
import { linearEntry } from './wgsl-common';

/**
 * Backward of the layout ops (training.md §1.7): every one moves or repeats values, so each dx element gathers
 * the gy elements it went to, summed in output row-major order (no atomics, bitwise reproducible):
 * - pixel shuffle family: a permutation, so dx is the inverse rearrangement of gy (nn.PixelShuffle ↔
 *   nn.PixelUnshuffle, depth_to_space ↔ space_to_depth), done by the forward kernels of pixel-shuffle.ts;
 * - pad2d / crop2d: zero padding crops gy, a crop (or negative zero padding) zero-embeds it, replicate padding adds
 *   the whole border band into each edge pixel, reflect padding adds the mirrored gradients back;
 * - concatChannels: gy split into the two parts' channel ranges, each undoing its placement (offset: a crop or an
 *   embed; nearest ×s: the sum of each s×s block), any channel split (lane gathers when Ca is not a multiple of 4);
 * - channel slices (copyChannels, scaledAddChannels, prefix reads of dense-block buffers): extract, zero-embed or
 *   add a channel window at any offset.
 * Padded channels of every result are written 0.
 */
const WORKGROUP = 64;

function sameShape(a: Shape4, b: Shape4): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkGrad(label: string, gy: TensorValue, expected: Shape4, what: string, inputShape: Shape4): void {
  if (!sameShape(gy.shape, expected)) {
    throw new InvalidInputError(
      `${label}: gradient ${formatShape(gy.shape)} does not match the ${what} output ${formatShape(expected)} of input ${formatShape(inputShape)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Pixel shuffle family

const INVERSE_MODE: Record<PixelShuffleMode, (graph: Graph, x: TensorValue, r: number, label: string) => TensorValue> = {
  pixel_shuffle: pixelUnshuffle,
  pixel_unshuffle: pixelShuffle,
  depth_to_space: spaceToDepth,
  space_to_depth: depthToSpace,
};

function rearrangeBackward(
  graph: Graph,
  gy: TensorValue,
  inputShape: Shape4,
  mode: PixelShuffleMode,
  r: number,
  label: string,
): TensorValue {
  checkGrad(label, gy, pixelShuffleOutputShape(inputShape, mode, r, label), mode, inputShape);
  return INVERSE_MODE[mode](graph, gy, r, label);
}

/** dx [inputShape] of nn.PixelShuffle(r): nn.PixelUnshuffle(r) of gy. */
export function pixelShuffleBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, r: number, label: string): TensorValue {
  return rearrangeBackward(graph, gy, inputShape, 'pixel_shuffle', r, label);
}

/** dx [inputShape] of nn.PixelUnshuffle(r): nn.PixelShuffle(r) of gy. */
export function pixelUnshuffleBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, r: number, label: string): TensorValue {
  return rearrangeBackward(graph, gy, inputShape, 'pixel_unshuffle', r, label);
}

/** dx [inputShape] of tf depth_to_space(r) (DCR): space_to_depth(r) of gy. */
export function depthToSpaceBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, r: number, label: string): TensorValue {
  return rearrangeBackward(graph, gy, inputShape, 'depth_to_space', r, label);
}

/** dx [inputShape] of tf space_to_depth(r) (DCR): depth_to_space(r) of gy. */
export function spaceToDepthBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, r: number, label: string): TensorValue {
  return rearrangeBackward(graph, gy, inputShape, 'space_to_depth', r, label);
}

// ---------------------------------------------------------------------------------------------------------------
// Padding and cropping

const PAD_MODE_ID: Record<PadMode, number> = { zeros: 0, replicate: 1, reflect: 2 };

/**
 * WGSL: `sources_a(i)` gives, for input index i along axis a, up to three half-open ranges of output indices that
 * read it, in increasing order: [left reflection] [direct copy, or the whole replicated band] [right reflection].
 */
function padAxisWgsl(a: 'y' | 'x', n: string, out: string, before: string): string {
  return `fn sources_${a}(i: i32) -> array<vec2<i32>, 3> {
  var r = array<vec2<i32>, 3>(vec2<i32>(0), vec2<i32>(0), vec2<i32>(0));
  let d = i + ${before};
  if (p.mode == 1u) {
    // Replicate: the first and last input also feed every output of their border band.
    r[1] = vec2<i32>(select(d, 0, i == 0), select(d + 1, ${out}, i == ${n} - 1));
  } else {
    r[1] = vec2<i32>(d, d + 1);
    if (p.mode == 2u) {
      // Reflect (amounts < n): output before − i mirrors i ≥ 1; output before + 2(n − 1) − i mirrors i ≤ n − 2.
      if (i >= 1 && i <= ${before}) { r[0] = vec2<i32>(${before} - i, ${before} - i + 1); }
      let o = ${before} + 2 * (${n} - 1) - i;
      if (i <= ${n} - 2 && o < ${out}) { r[2] = vec2<i32>(o, o + 1); }
    }
  }
  for (var k = 0; k < 3; k++) { r[k] = clamp(r[k], vec2<i32>(0), vec2<i32>(${out})); }
  return r;
}`;
}

export function pad2dBackwardWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, h: i32, w: i32, ho: i32, wo: i32, top: i32, left: i32, mode: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('dx', 2, 'read_write')}

${padAxisWgsl('y', 'p.h', 'p.ho', 'p.top')}

${padAxisWgsl('x', 'p.w', 'p.wo', 'p.left')}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ix = i32(pix % u32(p.w));
  let iy = i32((pix / u32(p.w)) % u32(p.h));
  let b = pix / u32(p.w * p.h);
  var ys = sources_y(iy);
  var xs = sources_x(ix);
  var acc = vec4<f32>(0.0);
  for (var a = 0; a < 3; a++) {
    for (var oy = ys[a].x; oy < ys[a].y; oy++) {
      let row = (b * u32(p.ho) + u32(oy)) * u32(p.wo);
      for (var e = 0; e < 3; e++) {
        for (var ox = xs[e].x; ox < xs[e].y; ox++) {
          acc += ${io.load('gy', '(row + u32(ox)) * p.c4 + c')};
        }
      }
    }
  }
  // gy's padded lanes are 0, so dx's are too.
  ${io.store('dx', 'i', 'acc')}
}`;
}

/** dx [inputShape] of F.pad(x, (left, right, top, bottom), mode) ('zeros' with negative amounts crops). */
export function pad2dBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, pads: Pad2d, mode: PadMode, label: string): TensorValue {
  const outShape = pad2dOutputShape(inputShape, pads, mode, label);
  checkGrad(label, gy, outShape, `${mode} pad`, inputShape);
  const [n, h, w, c] = inputShape;
  const [, ho, wo] = outShape;
  const dx = graph.tensor(inputShape, label);
  const c4 = paddedChannels(c) / 4;
  const count = n * h * w * c4;
  // Zero padding reads only the gy window it maps to; replicate and reflect read all of gy once.
  const readBytes = mode === 'zeros' ? n * placedExtent(h, ho, pads.top) * placedExtent(w, wo, pads.left) * c * 4 : logicalBytes(outShape);
  graph.add({
    label,
    kernel: kernelShader('pad2d_backward', { family: 'pad2d_backward' }, (io) => pad2dBackwardWgsl(io)),
    uniforms: { count, c4, h, w, ho, wo, top: pads.top, left: pads.left, mode: PAD_MODE_ID[mode] },
    bindings: { gy, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // A copy for zeros; the border bands (replicate) or mirrored strips (reflect) add one FLOP per extra term.
    cost: {
      flops: mode === 'zeros' ? 0 : Math.max(0, n * (ho * wo - h * w) * c),
      bytes: readBytes + logicalBytes(inputShape),
    },
  });
  return dx;
}

/** dx [inputShape] of crop2d(x, win): gy zero-embedded at the window. */
export function crop2dBackward(graph: Graph, gy: TensorValue, inputShape: Shape4, win: CropWindow, label: string): TensorValue {
  const [, h, w] = inputShape;
  const { y0, x0 } = win;
  const ok = [y0, x0, win.h, win.w].every((v) => Number.isInteger(v)) && y0 >= 0 && x0 >= 0 && win.h >= 1 && win.w >= 1;
  if (!ok || y0 + win.h > h || x0 + win.w > w) {
    throw new InvalidInputError(`${label}: crop window ${JSON.stringify(win)} does not lie inside the input ${formatShape(inputShape)}`);
  }
  return pad2dBackward(graph, gy, inputShape, { top: -y0, bottom: y0 + win.h - h, left: -x0, right: x0 + win.w - w }, 'zeros', label);
}

/** dx [inputShape] of replicatePadToMultiple(x, multiple) (SCUNet): the right/bottom bands added into the edges. */
export function replicatePadToMultipleBackward(
  graph: Graph,
  gy: TensorValue,
  inputShape: Shape4,
  multiple: number,
  label: string,
): TensorValue {
  if (!Number.isInteger(multiple) || multiple < 1) {
    throw new InvalidInputError(`${label}: multiple ${multiple} must be a positive integer`);
  }
  const [, h, w] = inputShape;
  const pads = { top: 0, bottom: paddedToMultiple(h, multiple) - h, left: 0, right: paddedToMultiple(w, multiple) - w };
  return pad2dBackward(graph, gy, inputShape, pads, 'replicate', label);
}

// ---------------------------------------------------------------------------------------------------------------
// Channel concatenation

/**
 * WGSL: gradient of one concatenation part [n, h, w, c] placed at (top, left) with nearest ×scale, whose channels
 * start at channel `ch_off` of gy: the sum over the part pixel's scale×scale block of output pixels (clipped to
 * the output). `aligned`: ch_off is a multiple of 4, so whole vec4s are read (and lanes past c masked);
 * otherwise each lane is gathered on its own.
 */
export function concatPartBackwardWgsl(aligned: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const add = aligned
    ? `v += ${io.load('gy', 'o * p.gy_c4 + p.ch_off / 4u + c')};`
    : `for (var l = 0u; l < 4u; l++) {
          let k = c * 4u + l;
          if (k < p.c) {
            let kk = p.ch_off + k;
            v[l] += ${io.load('gy', 'o * p.gy_c4 + kk / 4u')}[kk % 4u];
          }
        }`;
  return `struct Params { count: u32, c4: u32, c: u32, gy_c4: u32, ch_off: u32, h: u32, w: u32, ho: i32, wo: i32,
  top: i32, left: i32, scale: i32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('dx', 2, 'read_write')}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let sx = i32(pix % p.w);
  let sy = i32((pix / p.w) % p.h);
  let b = pix / (p.w * p.h);
  let oy0 = p.top + sy * p.scale;
  let ox0 = p.left + sx * p.scale;
  var v = vec4<f32>(0.0);
  for (var oy = max(oy0, 0); oy < min(oy0 + p.scale, p.ho); oy++) {
    for (var ox = max(ox0, 0); ox < min(ox0 + p.scale, p.wo); ox++) {
      let o = (b * u32(p.ho) + u32(oy)) * u32(p.wo) + u32(ox);
      ${add}
    }
  }
  let real = (c * 4u + vec4<u32>(0u, 1u, 2u, 3u)) < vec4<u32>(p.c);
  ${io.store('dx', 'i', 'select(vec4<f32>(0.0), v, real)')}
}`;
}

function concatPartBackward(
  graph: Graph,
  gy: TensorValue,
  shape: Shape4,
  place: Required<ConcatPlacement>,
  channelOffset: number,
  label: string,
): TensorValue {
  const [n, h, w, c] = shape;
  const [, ho, wo, cy] = gy.shape;
  const dx = graph.tensor(shape, label);
  const c4 = paddedChannels(c) / 4;
  const count = n * h * w * c4;
  const aligned = channelOffset % 4 === 0;
  graph.add({
    label,
    kernel: kernelShader(`concat_backward[${aligned ? 'vec4' : 'lanes'}]`, { family: 'concat_backward', aligned }, (io) =>
      concatPartBackwardWgsl(aligned, io),
    ),
    uniforms: {
      count,
      c4,
      c,
      gy_c4: paddedChannels(cy) / 4,
      ch_off: channelOffset,
      h,
      w,
      ho,
      wo,
      top: place.top,
      left: place.left,
      scale: place.scale,
    },
    bindings: { gy, dx },
    workgroups: Math.ceil(count / WORKGROUP),
    // The part's channels of the gy pixels it landed on read once, dx written; an upsampled part adds s² terms.
    cost: {
      flops: place.scale > 1 ? n * h * w * c * place.scale * place.scale : 0,
      bytes:
        n * placedExtent(h, ho, place.top, place.scale) * place.scale * placedExtent(w, wo, place.left, place.scale) * place.scale * c * 4 +
        logicalBytes(shape),
    },
  });
  return dx;
}

/**
 * dfirst, dsecond of `concatChannels(first, second, options)` from gy: channels [0, Ca) and [Ca, Ca + Cb) of gy,
 * each with its placement undone (crop / zero-embed for offsets, s×s block sums for a nearest ×s part).
 */
export function concatChannelsBackward(
  graph: Graph,
  gy: TensorValue,
  firstShape: Shape4,
  secondShape: Shape4,
  options: ConcatOptions,
  label: string,
): { first: TensorValue; second: TensorValue } {
  const pa = placement(options.first, 'first input', label);
  const pb = placement(options.second, 'second input', label);
  const [n, ha, wa, ca] = firstShape;
  const [nb, , , cb] = secondShape;
  if (n !== nb) {
    throw new InvalidInputError(`${label}: batch sizes differ (${formatShape(firstShape)} and ${formatShape(secondShape)})`);
  }
  const [ho, wo] = options.size ?? [ha * pa.scale, wa * pa.scale];
  checkGrad(label, gy, [n, ho, wo, ca + cb], 'concatenation', firstShape);
  return {
    first: concatPartBackward(graph, gy, firstShape, pa, 0, `${label}.first`),
    second: concatPartBackward(graph, gy, secondShape, pb, ca, `${label}.second`),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Channel windows

export interface ChannelWindowOptions {
  /** First channel read from the source; default 0. */
  srcOffset?: number;
  /** Channels moved; default all of the source from srcOffset on. */
  channels?: number;
  /** Factor applied to the moved values (a scaled residual's branch); default 1. */
  scale?: number;
}

/**
 * WGSL: y[:, k] = (accumulate ? y[:, k] : 0) + scale · src[:, k − dst_off + src_off] for k ∈ [dst_off, dst_off + cnt),
 * y[:, k] (or 0) elsewhere; lanes past y's channels 0. `aligned`: both offsets are multiples of 4.
 */
export function channelWindowWgsl(aligned: boolean, accumulate: boolean, io: TensorAccess = WHOLE_BINDINGS): string {
  const move = aligned
    ? `let g = i32(k4) - i32(p.dst_off / 4u);
  if (g >= 0 && g < i32((p.cnt + 3u) / 4u)) {
    let s = ${io.load('src', 'pix * p.src_c4 + p.src_off / 4u + u32(g)')};
    v += select(vec4<f32>(0.0), p.scale * s, inside);
  }`
    : `for (var l = 0u; l < 4u; l++) {
    if (inside[l]) {
      let j = k4 * 4u + l - p.dst_off + p.src_off;
      v[l] += p.scale * ${io.load('src', 'pix * p.src_c4 + j / 4u')}[j % 4u];
    }
  }`;
  return `struct Params { count: u32, c4: u32, cy: u32, src_c4: u32, src_off: u32, dst_off: u32, cnt: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('src', 1, 'read')}
${io.declare('y', 2, 'read_write')}

${linearEntry(WORKGROUP)}
  let k4 = i % p.c4;
  let pix = i / p.c4;
  let k = k4 * 4u + vec4<u32>(0u, 1u, 2u, 3u);
  let inside = (k >= vec4<u32>(p.dst_off)) & (k < vec4<u32>(p.dst_off + p.cnt));
  var v = ${accumulate ? io.load('y', 'i') : 'vec4<f32>(0.0)'};
  ${move}
  ${io.store('y', 'i', 'select(vec4<f32>(0.0), v, k < vec4<u32>(p.cy))')}
}`;
}

function channelWindow(
  graph: Graph,
  src: TensorValue,
  y: TensorValue,
  accumulate: boolean,
  dstOffset: number,
  opts: ChannelWindowOptions,
  label: string,
): TensorValue {
  const srcOffset = opts.srcOffset ?? 0;
  const cs = src.shape[3];
  const cnt = opts.channels ?? cs - srcOffset;
  const scale = opts.scale ?? 1;
  const cy = y.shape[3];
  if (!sameShape([src.shape[0], src.shape[1], src.shape[2], 1], [y.shape[0], y.shape[1], y.shape[2], 1])) {
    throw new InvalidInputError(`${label}: source ${formatShape(src.shape)} and destination ${formatShape(y.shape)} differ in n, h or w`);
  }
  const ints = [srcOffset, cnt, dstOffset].every((v) => Number.isInteger(v));
  if (!ints || srcOffset < 0 || dstOffset < 0 || cnt < 1 || srcOffset + cnt > cs || dstOffset + cnt > cy) {
    throw new InvalidInputError(
      `${label}: channels [${srcOffset}, ${srcOffset + cnt}) of ${formatShape(src.shape)} to [${dstOffset}, ${dstOffset + cnt}) of ` +
        `${formatShape(y.shape)} do not fit`,
    );
  }
  if (!Number.isFinite(scale)) throw new InvalidInputError(`${label}: scale ${scale} is not finite`);
  if (src.id === y.id) throw new InvalidInputError(`${label}: the destination cannot also be the source`);
  const c4 = paddedChannels(cy) / 4;
  const count = y.shape[0] * y.shape[1] * y.shape[2] * c4;
  const aligned = srcOffset % 4 === 0 && dstOffset % 4 === 0;
  const variant = `${aligned ? 'vec4' : 'lanes'},${accumulate ? 'add' : 'set'}`;
  graph.add({
    label,
    kernel: kernelShader(`channel_window[${variant}]`, { family: 'channel_window', aligned, accumulate }, (io) =>
      channelWindowWgsl(aligned, accumulate, io),
    ),
    uniforms: { count, c4, cy, src_c4: paddedChannels(cs) / 4, src_off: srcOffset, dst_off: dstOffset, cnt, scale },
    bindings: { src, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // The window read; y written whole (and read whole when accumulating); a scale or an add is one FLOP each.
    cost: {
      flops: ((accumulate ? 1 : 0) + (scale !== 1 ? 1 : 0)) * logicalElements(src.shape, cnt),
      bytes: logicalBytes(src.shape, cnt) + (accumulate ? 2 : 1) * logicalBytes(y.shape),
    },
  });
  return y;
}

/** `scale · src[:, offset : offset + channels]` as a new [n, h, w, channels] tensor (any offset). */
export function extractChannels(graph: Graph, src: TensorValue, offset: number, channels: number, label: string, scale = 1): TensorValue {
  const [n, h, w] = src.shape;
  if (!Number.isInteger(channels) || channels < 1)
    throw new InvalidInputError(`${label}: channel count ${channels} must be a positive integer`);
  const y = graph.tensor([n, h, w, channels], label);
  return channelWindow(graph, src, y, false, 0, { srcOffset: offset, channels, scale }, label);
}

/**
 * A new [n, h, w, totalChannels] tensor, zero except channels [offset, offset + C) = scale · (window of src): the
 * gradient of a channel slice (a prefix read of a dense-block buffer, a channel crop) in the wider tensor.
 */
export function embedChannels(
  graph: Graph,
  src: TensorValue,
  totalChannels: number,
  offset: number,
  label: string,
  opts: ChannelWindowOptions = {},
): TensorValue {
  const [n, h, w] = src.shape;
  if (!Number.isInteger(totalChannels) || totalChannels < 1) {
    throw new InvalidInputError(`${label}: channel count ${totalChannels} must be a positive integer`);
  }
  const y = graph.tensor([n, h, w, totalChannels], label);
  return channelWindow(graph, src, y, false, offset, opts, label);
}

/**
 * In place: `target[:, offset : offset + C] += scale · (window of src)`, returning `target` (which must already be
 * written): accumulates a slice's gradient into the gradient of the wider tensor it was read from.
 */
export function addIntoChannels(
  graph: Graph,
  target: TensorValue,
  src: TensorValue,
  offset: number,
  label: string,
  opts: ChannelWindowOptions = {},
): TensorValue {
  return channelWindow(graph, src, target, true, offset, opts, label);
}

/** d src of `copyChannels(src, dst, dstOffset)` from the gradient of dst: its channels [dstOffset, dstOffset + C). */
export function copyChannelsBackward(graph: Graph, gDst: TensorValue, srcShape: Shape4, dstOffset: number, label: string): TensorValue {
  const [n, h, w, c] = srcShape;
  if (gDst.shape[0] !== n || gDst.shape[1] !== h || gDst.shape[2] !== w) {
    throw new InvalidInputError(
      `${label}: gradient ${formatShape(gDst.shape)} does not match the source ${formatShape(srcShape)} in n, h or w`,
    );
  }
  return extractChannels(graph, gDst, dstOffset, c, label);
}

/**
 * dx, dr of `scaledAddChannels(x, r, alpha, channels, out?)` (y = x[:, :channels] + alpha · r[:, :channels], written
 * at channel `outOffset` of its output) from that output's gradient gy: dx = gy's window in x's width (zeros past
 * `channels`), dr = alpha · the same in r's width. To accumulate into an existing gradient instead, use
 * `addIntoChannels(target, gy, 0, …, { srcOffset: outOffset, channels, scale })`.
 */
export function scaledAddChannelsBackward(
  graph: Graph,
  gy: TensorValue,
  xShape: Shape4,
  rShape: Shape4,
  alpha: number,
  channels: number,
  label: string,
  outOffset = 0,
): { dx: TensorValue; dr: TensorValue } {
  for (const [s, what] of [
    [xShape, 'input'],
    [rShape, 'second input'],
  ] as const) {
    if (s[0] !== gy.shape[0] || s[1] !== gy.shape[1] || s[2] !== gy.shape[2]) {
      throw new InvalidInputError(`${label}: ${what} ${formatShape(s)} does not match the gradient ${formatShape(gy.shape)} in n, h or w`);
    }
  }
  const window = { srcOffset: outOffset, channels };
  const dx = embedChannels(graph, gy, xShape[3], 0, `${label}.dx`, window);
  const dr = embedChannels(graph, gy, rShape[3], 0, `${label}.dr`, { ...window, scale: alpha });
  return { dx, dr };
}
