import { InvalidInputError } from '../errors';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { TensorValue } from '../gpu/graph';
import { paddedChannels } from '../gpu/tensor';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from '../kernels/kernel-source';
import { layerNormWgsl } from '../kernels/layernorm';
import { layerNormBackward } from '../kernels/layernorm-backward';
import type { ForwardBuilder } from './forward-builder';
import type { LayerNorm } from './layernorm';

const WORKGROUP = 64;
const PACKED_DECLARATION = '@group(0) @binding(2) var<storage, read> params: array<vec4<f32>>;';

/**
 * The inference LayerNorm shader (kernels/layernorm.ts, so training computes exactly what inference does) with
 * its packed [weight | bias] buffer replaced by the two arena ranges, which change every step.
 */
function layerNormTrainingWgsl(io: TensorAccess = WHOLE_BINDINGS): string {
  const source = layerNormWgsl(io);
  if (!source.includes(PACKED_DECLARATION) || !source.includes('params[p.c4 + ')) {
    throw new InvalidInputError('layernorm-training: the LayerNorm shader no longer reads a packed params buffer');
  }
  return source
    .replace(
      PACKED_DECLARATION,
      `@group(0) @binding(2) var<storage, read> ln_weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> ln_bias: array<vec4<f32>>;`,
    )
    .replaceAll('params[p.c4 + ', 'ln_bias[')
    .replaceAll('params[', 'ln_weight[');
}

/**
 * nn.LayerNorm(C) over the channels of a channels-last map in a training graph: γ and β from the training arena;
 * backward (docs/training.md §1.5) by kernels/layernorm-backward.ts, which recomputes the statistics from x.
 */
export function layerNormTrainingForward(b: ForwardBuilder, ln: LayerNorm, x: TensorValue, label: string): TensorValue {
  const training = b.training!;
  const c = ln.normalizedShape;
  if (!training.learns(ln.weight) || !training.learns(ln.bias)) {
    throw new InvalidInputError(`${label}: a LayerNorm with a frozen weight or bias is not supported in training yet`);
  }
  const weight = training.value(ln.weight, `${label}.weight`);
  const bias = training.value(ln.bias, `${label}.bias`);
  const [n, h, w] = x.shape;
  const pixels = n * h * w;
  const y = b.graph.tensor(x.shape, label);
  b.graph.add({
    label,
    kernel: kernelShader('layernorm[train]', { family: 'layernorm_train' }, (io) => layerNormTrainingWgsl(io)),
    uniforms: { pixels, c4: paddedChannels(c) / 4, c, eps: ln.eps, inv_c: 1 / c },
    bindings: { x, ln_weight: weight, y, ln_bias: bias },
    workgroups: Math.ceil(pixels / WORKGROUP),
    cost: { flops: 8 * logicalElements(x.shape), bytes: 2 * logicalBytes(x.shape) + 2 * c * 4 },
  });
  training.tape.record(label, [x], [y], true, (t) => {
    const dx = layerNormBackward(b.graph, t.gradOf(y)!, x, {
      weight,
      dWeight: training.grad(ln.weight, `${label}.weight`),
      dBias: training.grad(ln.bias, `${label}.bias`),
      eps: ln.eps,
      label: `${label} backward`,
    });
    if (t.needsGrad(x)) t.addGrad(x, dx);
  });
  return y;
}
