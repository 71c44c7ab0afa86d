import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import { type Graph, type TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, tensorElements } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from './kernel-source';
import { reduceRows } from './reduce';
import { linearEntry } from './wgsl-common';

/**
 * Training side of the SE / SCSE gates (training.md §1.8): the gate branches themselves (global average pool,
 * 1×1 convolutions, sigmoids) train as ordinary modules, so what is left is the broadcast product that applies
 * them, smp's `x·cSE(x) + x·sSE(x)`:
 *   y[n,p,c] = x[n,p,c]·a[n,c] + x[n,p,c]·s[n,p]        a: per-channel gate [N,1,1,C]; s: per-pixel gate [N,H,W,1]
 * (either gate may be absent). Its backward:
 *   dx = g·a + g·s;   da[n,c] = Σ_p g·x (over the pixels of item n);   ds[n,p] = Σ_c g·x (over the channels).
 * ds is one invocation per pixel looping over its channels; da, a sum over pixels, is the split-K reduction of
 * reduce.ts (fixed order, no atomics), so every run gives the same bits.
 */
const WORKGROUP = 64;

/** The gates of a broadcast product: a per-channel scale [N,1,1,C] and/or a per-pixel scale [N,H,W,1]. */
export interface Gates {
  channel?: TensorValue;
  pixel?: TensorValue;
}

function checkGates(label: string, x: TensorValue, gates: Gates): void {
  const [n, h, w, c] = x.shape;
  if (!gates.channel && !gates.pixel) throw new InvalidInputError(`${label}: a gate product needs a channel gate, a pixel gate or both`);
  const check = (t: TensorValue | undefined, what: string, shape: number[]) => {
    if (t && t.shape.some((d, i) => d !== shape[i])) {
      throw new InvalidInputError(
        `${label}: ${what} '${t.label}' is ${formatShape(t.shape)}, expected ${formatShape(shape)} for x ${formatShape(x.shape)}`,
      );
    }
  };
  check(gates.channel, 'channel gate', [n, 1, 1, c]);
  check(gates.pixel, 'pixel gate', [n, h, w, 1]);
}

/** `x·a` + `x·s` for vec4 `v` of item `item`, channel group `k`, pixel `px` (the terms in smp's order). */
function productTerms(v: string, gates: Gates, io: TensorAccess): string {
  const terms: string[] = [];
  if (gates.channel) terms.push(`${v} * ${io.load('a', 'item * p.c4 + k')}`);
  if (gates.pixel) terms.push(`${v} * ${io.load('s', 'px')}.x`);
  return terms.join(' + ');
}

function gateDeclarations(gates: Gates, io: TensorAccess, first: number): string {
  const lines: string[] = [];
  if (gates.channel) lines.push(io.declare('a', first, 'read'));
  if (gates.pixel) lines.push(io.declare('s', first + lines.length, 'read'));
  return lines.join('\n');
}

export function gateProductWgsl(gates: Gates, io: TensorAccess = WHOLE_BINDINGS): string {
  const yBinding = 2 + (gates.channel ? 1 : 0) + (gates.pixel ? 1 : 0);
  return `struct Params { count: u32, c4: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('x', 1, 'read')}
${gateDeclarations(gates, io, 2)}
${io.declare('y', yBinding, 'read_write')}

${linearEntry(WORKGROUP)}
  let k = i % p.c4;
  let px = i / p.c4;
  let item = px / p.hw;
  let v = ${io.load('x', 'i')};
  // Padded lanes of x are 0, so they stay 0 whatever the gates hold.
  ${io.store('y', 'i', productTerms('v', gates, io))}
}`;
}

/** The forward of a broadcast gate product: `x·a + x·s` (smp SCSE), `x·a` (SE) or `x·s`. */
export function gateProduct(graph: Graph, x: TensorValue, gates: Gates, label: string): TensorValue {
  checkGates(label, x, gates);
  const [, h, w, c] = x.shape;
  const y = graph.tensor(x.shape, label);
  const count = tensorElements(x.shape) / 4;
  const key = { channel: !!gates.channel, pixel: !!gates.pixel };
  const bindings: Record<string, TensorValue> = { x };
  if (gates.channel) bindings.a = gates.channel;
  if (gates.pixel) bindings.s = gates.pixel;
  bindings.y = y;
  const terms = (gates.channel ? 1 : 0) + (gates.pixel ? 1 : 0);
  graph.add({
    label,
    kernel: kernelShader(`gate_product[${key.channel ? 'c' : ''}${key.pixel ? 's' : ''}]`, { family: 'gate_product', ...key }, (io) =>
      gateProductWgsl(gates, io),
    ),
    uniforms: { count, c4: paddedChannels(c) / 4, hw: h * w },
    bindings,
    workgroups: Math.ceil(count / WORKGROUP),
    // A multiply per term and an add between terms, per element; x read, y written, the gates read once.
    cost: {
      flops: (2 * terms - 1) * logicalElements(x.shape),
      bytes:
        2 * logicalBytes(x.shape) +
        (gates.channel ? logicalBytes(gates.channel.shape) : 0) +
        (gates.pixel ? logicalBytes(gates.pixel.shape) : 0),
    },
  });
  return y;
}

export function gateProductDxWgsl(gates: Gates, io: TensorAccess = WHOLE_BINDINGS): string {
  const gateCount = (gates.channel ? 1 : 0) + (gates.pixel ? 1 : 0);
  const dsStore = gates.pixel ? io.store('ds', 'px', 'vec4<f32>((acc.x + acc.y) + (acc.z + acc.w), 0.0, 0.0, 0.0)') : '';
  return `struct Params { pixels: u32, c4: u32, c: u32, hw: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('gy', 1, 'read')}
${io.declare('x', 2, 'read')}
${gateDeclarations(gates, io, 3)}
${io.declare('dx', 3 + gateCount, 'read_write')}
${gates.pixel ? io.declare('ds', 4 + gateCount, 'read_write') : ''}

${linearEntry(WORKGROUP, 'px', 'p.pixels')}
  let item = px / p.hw;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < p.c4; k++) {
    let i = px * p.c4 + k;
    let g = ${io.load('gy', 'i')};
    ${io.store('dx', 'i', productTerms('g', gates, io))}
    let real = k * 4u + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.c);
    acc += select(vec4<f32>(0.0), g * ${io.load('x', 'i')}, real);
  }
  ${dsStore}
}`;
}

/** What `gateProductBackward` returns: dx always, and the gradient of each gate that was given. */
export interface GateProductGrads {
  dx: TensorValue;
  /** [N,1,1,C]: Σ over each item's pixels of g·x. */
  dChannel?: TensorValue;
  /** [N,H,W,1]: Σ over channels of g·x. */
  dPixel?: TensorValue;
}

/**
 * Backward of `gateProduct` from the upstream gradient `gy`: dx = g·a + g·s, and the gates' gradients (see the
 * top of this file). Padded channels of dx and of dChannel are 0; a pixel gate's padded lanes 1..3 are 0.
 */
export function gateProductBackward(graph: Graph, gy: TensorValue, x: TensorValue, gates: Gates, label: string): GateProductGrads {
  checkGates(label, x, gates);
  if (gy.shape.some((d, i) => d !== x.shape[i])) {
    throw new InvalidInputError(`${label}: gradient ${formatShape(gy.shape)} does not match x ${formatShape(x.shape)}`);
  }
  const [n, h, w, c] = x.shape;
  const c4 = paddedChannels(c) / 4;
  const pixels = n * h * w;
  const dx = graph.tensor(x.shape, `${label}.dx`);
  const dPixel = gates.pixel ? graph.tensor([n, h, w, 1], `${label}.dpixel`) : undefined;
  const key = { channel: !!gates.channel, pixel: !!gates.pixel };
  const bindings: Record<string, TensorValue> = { gy, x };
  if (gates.channel) bindings.a = gates.channel;
  if (gates.pixel) bindings.s = gates.pixel;
  bindings.dx = dx;
  if (dPixel) bindings.ds = dPixel;
  graph.add({
    label: `${label} dx`,
    kernel: kernelShader(`gate_product_dx[${key.channel ? 'c' : ''}${key.pixel ? 's' : ''}]`, { family: 'gate_product_dx', ...key }, (io) =>
      gateProductDxWgsl(gates, io),
    ),
    uniforms: { pixels, c4, c, hw: h * w },
    bindings,
    workgroups: Math.ceil(pixels / WORKGROUP),
    // Per element: the dx terms (a multiply each, an add between) and g·x accumulated; gy and x read, dx written.
    cost: {
      flops: (key.channel && key.pixel ? 5 : 3) * logicalElements(x.shape),
      bytes: 3 * logicalBytes(x.shape) + (dPixel ? 2 * logicalBytes(dPixel.shape) : 0),
    },
  });
  let dChannel: TensorValue | undefined;
  if (gates.channel) {
    dChannel = graph.tensor([n, 1, 1, c], `${label}.dchannel`);
    // Rows are the pixels of one item; each of the N·c4 channel groups of the result sums its own item's rows, so
    // the [N,1,1,C] result is laid out as the reduction's one output row of N·c4 groups.
    reduceRows(graph, {
      rows: h * w,
      groups: n * c4,
      body: {
        tag: 'gate_channel_grad',
        key: 'gate_channel_grad',
        bindings: { gy: { binding: gy, mode: 'read' }, x: { binding: x, mode: 'read' } },
        params: { c4: { type: 'u32', value: c4 }, c_real: { type: 'u32', value: c } },
        statements: (io) => `let k = grp % p.c4;
      let j = ((grp / p.c4) * p.rows + row) * p.c4 + k;
      let real = k * 4u + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.c_real);
      term = select(vec4<f32>(0.0), ${io.load('gy', 'j')} * ${io.load('x', 'j')}, real);`,
        cost: { flops: 2 * logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) },
      },
      finish: { kind: 'channels', channels: n * c4 * 4, scale: 1 },
      into: dChannel,
      label: `${label} dchannel`,
    });
  }
  return { dx, ...(dChannel ? { dChannel } : {}), ...(dPixel ? { dPixel } : {}) };
}
