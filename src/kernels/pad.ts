import { InvalidInputError } from '../errors';
import { logicalBytes, placedExtent } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, type Shape4 } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { linearEntry } from './wgsl-common';

/**
 * Spatial padding and cropping of NHWC vec4 channel groups, as F.pad(x, (left, right, top, bottom), mode):
 * - `zeros` ('constant', value 0): negative amounts crop, as in F.pad (milesial U-Net's skip alignment).
 * - `replicate`: the edge pixel repeats (clamp on read); SCUNet pads right/bottom to a multiple of 64.
 * - `reflect`: mirror without repeating the edge (PyTorch 'reflect'); each amount must be < that dimension.
 * `crop2d` takes the window [y0, y0 + h) × [x0, x0 + w). One shader for all modes (the mode is a uniform).
 * Padded channels stay 0: every output lane is the same lane of some input pixel, or 0.
 */
export type PadMode = 'zeros' | 'replicate' | 'reflect';

export interface Pad2d {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

const MODE_ID: Record<PadMode, number> = { zeros: 0, replicate: 1, reflect: 2 };
const WORKGROUP = 64;

export function pad2dOutputShape(input: Shape4, pads: Pad2d, mode: PadMode, label = 'pad2d'): Shape4 {
  const [n, h, w, c] = input;
  if (!(mode in MODE_ID)) throw new InvalidInputError(`${label}: unknown padding mode '${String(mode)}'`);
  const { top, bottom, left, right } = pads;
  if (![top, bottom, left, right].every((v) => Number.isInteger(v))) {
    throw new InvalidInputError(`${label}: padding ${JSON.stringify(pads)} must be integers`);
  }
  if (mode !== 'zeros' && Math.min(top, bottom, left, right) < 0) {
    throw new InvalidInputError(`${label}: negative padding ${JSON.stringify(pads)} is only supported in 'zeros' mode (use crop2d)`);
  }
  if (mode === 'reflect' && (top >= h || bottom >= h || left >= w || right >= w)) {
    throw new InvalidInputError(`${label}: reflect padding ${JSON.stringify(pads)} must be smaller than the input size ${h}x${w}`);
  }
  const ho = h + top + bottom;
  const wo = w + left + right;
  if (ho < 1 || wo < 1) {
    throw new InvalidInputError(`${label}: padding ${JSON.stringify(pads)} leaves no output of a ${h}x${w} input`);
  }
  return [n, ho, wo, c];
}

export function pad2dWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  return `struct Params { count: u32, c4: u32, h: i32, w: i32, ho: u32, wo: u32, top: i32, left: i32, mode: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${io.declare('y', 2, 'read_write')}

fn source(o: i32, n: i32) -> i32 {
  if (p.mode == 1u) { return clamp(o, 0, n - 1); }
  if (p.mode == 2u) {
    // Single reflection suffices: the amounts are < n.
    var s = abs(o);
    if (s >= n) { s = 2 * (n - 1) - s; }
    return s;
  }
  return o;
}

${linearEntry(WORKGROUP)}
  let c = i % p.c4;
  let pix = i / p.c4;
  let ox = i32(pix % p.wo);
  let oy = i32((pix / p.wo) % p.ho);
  let b = pix / (p.wo * p.ho);
  let iy = source(oy - p.top, p.h);
  let ix = source(ox - p.left, p.w);
  var v = vec4<f32>(0.0);
  if (iy >= 0 && iy < p.h && ix >= 0 && ix < p.w) {
    v = ${io.load('x', '((b * u32(p.h) + u32(iy)) * u32(p.w) + u32(ix)) * p.c4 + c')};
  }
  ${io.store('y', 'i', 'v')}
}`;
}

/** F.pad(x, (left, right, top, bottom), mode) for zeros (constant 0), replicate and reflect. */
export function pad2d(graph: Graph, x: TensorValue, pads: Pad2d, mode: PadMode, label: string): TensorValue {
  const outShape = pad2dOutputShape(x.shape, pads, mode, label);
  const [n, h, w, ch] = x.shape;
  const [, ho, wo] = outShape;
  const y = graph.tensor(outShape, label);
  const c4 = paddedChannels(ch) / 4;
  const count = n * ho * wo * c4;
  graph.add({
    label,
    kernel: kernelShader('pad2d', { family: 'pad2d' }, (io) => pad2dWgsl(io)),
    uniforms: { count, c4, h, w, ho, wo, top: pads.top, left: pads.left, mode: MODE_ID[mode] },
    bindings: { x, y },
    workgroups: Math.ceil(count / WORKGROUP),
    // A copy: the input pixels that reach the output (all of them unless it crops) read, the output written.
    cost: {
      flops: 0,
      bytes: n * placedExtent(h, ho, pads.top) * placedExtent(w, wo, pads.left) * ch * 4 + logicalBytes(outShape),
    },
  });
  return y;
}

/** Replicate-pads right and bottom up to the next multiple of `multiple` (SCUNet: 64); a no-op size stays a copy. */
export function replicatePadToMultiple(graph: Graph, x: TensorValue, multiple: number, label: string): TensorValue {
  if (!Number.isInteger(multiple) || multiple < 1) {
    throw new InvalidInputError(`${label}: multiple ${multiple} must be a positive integer`);
  }
  const [, h, w] = x.shape;
  const bottom = Math.ceil(h / multiple) * multiple - h;
  const right = Math.ceil(w / multiple) * multiple - w;
  return pad2d(graph, x, { top: 0, bottom, left: 0, right }, 'replicate', label);
}

/** Sizes replicatePadToMultiple pads to, so callers can crop back. */
export function paddedToMultiple(size: number, multiple: number): number {
  return Math.ceil(size / multiple) * multiple;
}

export interface CropWindow {
  y0: number;
  x0: number;
  h: number;
  w: number;
}

/** x[:, :, y0:y0+h, x0:x0+w]; the window must lie inside the input. */
export function crop2d(graph: Graph, x: TensorValue, win: CropWindow, label: string): TensorValue {
  const [, h, w] = x.shape;
  const { y0, x0 } = win;
  const ok = [y0, x0, win.h, win.w].every((v) => Number.isInteger(v)) && y0 >= 0 && x0 >= 0 && win.h >= 1 && win.w >= 1;
  if (!ok || y0 + win.h > h || x0 + win.w > w) {
    throw new InvalidInputError(`${label}: crop window ${JSON.stringify(win)} does not lie inside the input ${formatShape(x.shape)}`);
  }
  const pads: Pad2d = { top: -y0, bottom: y0 + win.h - h, left: -x0, right: x0 + win.w - w };
  return pad2d(graph, x, pads, 'zeros', label);
}
