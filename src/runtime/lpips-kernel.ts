import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Binding, Graph, TensorValue } from '../gpu/graph';
import { formatShape, paddedChannels, tensorElements } from '../gpu/tensor';
import type { TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from '../kernels/kernel-source';
import { linearEntry } from '../kernels/wgsl-common';

const WORKGROUP = 64;

/** The `lpips` package's normalize_tensor eps: x / (√Σx² + eps). */
export const LPIPS_EPS = 1e-10;

function lpipsLayerWgsl(io: TensorAccess): string {
  return `struct Params { count: u32, n4: u32, n_real: u32, hw: u32, c4: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('f0', 1, 'read')}
${io.declare('f1', 2, 'read')}
@group(0) @binding(3) var<storage, read> head: array<vec4<f32>>;
${io.declare('d', 4, 'read_write')}

// Image n at pixel pix: Σ_c w_c (f0_c/(‖f0‖+eps) − f1_c/(‖f1‖+eps))², channels in a fixed order (padding is 0 in
// the features and in the head, so it adds nothing).
fn distance(n: u32, pix: u32) -> f32 {
  let base = (n * p.hw + pix) * p.c4;
  var s0 = 0.0;
  var s1 = 0.0;
  for (var k = 0u; k < p.c4; k++) {
    let a = ${io.load('f0', 'base + k')};
    let b = ${io.load('f1', 'base + k')};
    s0 += dot(a, a);
    s1 += dot(b, b);
  }
  let n0 = sqrt(s0) + p.eps;
  let n1 = sqrt(s1) + p.eps;
  var acc = 0.0;
  for (var k = 0u; k < p.c4; k++) {
    let e = ${io.load('f0', 'base + k')} / n0 - ${io.load('f1', 'base + k')} / n1;
    acc += dot(head[k], e * e);
  }
  return acc;
}

${linearEntry(WORKGROUP)}
  let pix = i / p.n4;
  let first = (i % p.n4) * 4u;
  var v = vec4<f32>(0.0);
  for (var l = 0u; l < 4u; l++) {
    if (first + l < p.n_real) { v[l] = distance(first + l, pix); }
  }
  ${io.store('d', 'i', 'v')}
}`;
}

/**
 * One LPIPS layer before its spatial mean: the per-pixel distance of two feature maps [N, H, W, C] (unit-normalised
 * over channels, squared difference, weighted by the 1×1 head `head`, C floats padded to vec4 with zeros), laid out
 * as [1, H, W, N]: image n in channel n, so per-image means are channel sums over the pixels (reduce.ts).
 */
export function lpipsLayerDistance(graph: Graph, f0: TensorValue, f1: TensorValue, head: Binding, label: string): TensorValue {
  if (f0.shape.some((v, i) => v !== f1.shape[i])) {
    throw new InvalidInputError(`${label}: feature maps ${formatShape(f0.shape)} and ${formatShape(f1.shape)} differ`);
  }
  const [n, h, w, c] = f0.shape;
  const d = graph.tensor([1, h, w, n], label);
  const count = tensorElements(d.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader('lpips_layer', { family: 'lpips_layer' }, lpipsLayerWgsl),
    uniforms: { count, n4: paddedChannels(n) / 4, n_real: n, hw: h * w, c4: paddedChannels(c) / 4, eps: LPIPS_EPS },
    bindings: { f0, f1, head, d },
    workgroups: Math.ceil(count / WORKGROUP),
    // Per feature element: two squares for the norms, two divisions, a difference, its square and the weighted add.
    cost: { flops: 8 * logicalElements(f0.shape), bytes: 4 * logicalBytes(f0.shape) + c * 4 + logicalBytes(d.shape) },
  });
  return d;
}
