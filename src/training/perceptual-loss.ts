import { InvalidInputError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { logicalBytes, logicalElements } from '../gpu/cost';
import type { Graph, TensorValue } from '../gpu/graph';
import { ParameterArena } from '../gpu/parameter-arena';
import { formatShape, tensorElements } from '../gpu/tensor';
import type { TensorAccess } from '../gpu/tensor-access';
import { kernelShader } from '../kernels/kernel-source';
import { pixelLoss } from '../kernels/loss';
import { sumTensors } from '../kernels/reduce';
import { linearEntry } from '../kernels/wgsl-common';
import { ForwardBuilder } from '../layers/forward-builder';
import { GradientTape } from '../layers/gradient-tape';
import { namedParameters, type Parameter } from '../layers/module';
import { TrainingGraph } from '../layers/training-graph';
import { channelAffineConv, type FeatureNetwork } from '../models/vgg';

/**
 * BasicSR's PerceptualLoss (basicsr/losses/basic_loss.py with VGGFeatureExtractor, training.md §2.5): the prediction
 * and the target go through a frozen VGG; the loss is `perceptual_weight · Σ_layers w_layer · criterion(φ(pred),
 * φ(target))`, the target branch without gradient. ESRGAN: `{conv5_4: 1}` (before the ReLU), vgg19, input norm,
 * no range norm, L1, weight 1.
 */
export interface PerceptualLossOptions {
  /** BasicSR's `layer_weights`: layer name (`conv5_4`, `relu3_4`, …, as VGGFeatureExtractor names them) → weight. */
  layerWeights: Readonly<Record<string, number>>;
  /** `use_input_norm` (default true): (x − ImageNet mean) / std, for x in [0, 1]. */
  useInputNorm?: boolean;
  /** `range_norm` (default false): x = (x + 1) / 2 first, for x in [−1, 1]. */
  rangeNorm?: boolean;
  /**
   * `criterion` (default 'l1'): nn.L1Loss, nn.MSELoss ('l2', or 'mse'), both reduction 'mean' over each feature
   * map, or 'fro', `torch.norm(φ(p) − φ(t), p='fro')` over the whole batch's map.
   */
  criterion?: 'l1' | 'l2' | 'mse' | 'fro';
  /** `perceptual_weight` (default 1). */
  perceptualWeight?: number;
  label?: string;
}

/** The loss ([1, 1, 1, 1]), its gradient with respect to the prediction, and the VGG weights' GPU memory. */
export interface PerceptualLossResult {
  loss: TensorValue;
  grad: TensorValue;
  /** Frees the frozen weights' arena: call it once the plan that uses them is disposed. */
  dispose(): void;
}

/** torchvision's ImageNet statistics, as BasicSR's VGGFeatureExtractor registers them. */
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

const CRITERIA = ['l1', 'l2', 'mse', 'fro'];

/** The input transform of BasicSR's VGGFeatureExtractor as one affine per channel: range norm, then input norm. */
function inputAffine(useInputNorm: boolean, rangeNorm: boolean): { scale: number[]; shift: number[] } {
  const scale: number[] = [];
  const shift: number[] = [];
  for (let c = 0; c < 3; c++) {
    // x ↦ a·x + b for the range norm, then ↦ (· − mean) / std.
    const [a, b] = rangeNorm ? [0.5, 0.5] : [1, 0];
    const [m, s] = useInputNorm ? [IMAGENET_MEAN[c], IMAGENET_STD[c]] : [0, 1];
    scale.push(a / s);
    shift.push((b - m) / s);
  }
  return { scale, shift };
}

/**
 * Adds the perceptual loss of `prediction` against `target` (NHWC, 1 or 3 channels, same shape) to `graph`. The
 * VGG runs on its own tape with a fixed arena of its weights (uploaded here): the prediction is tracked, the
 * target is not (no backward for it), and the tape played back from the feature losses' gradients gives the
 * gradient with respect to the prediction. `vgg` must hold loaded weights (loadFeatureNetwork).
 *
 * A gray (1-channel) image is repeated to 3 channels before the normalisation, as VGG needs (BasicSR has no gray
 * path); its gradient is the sum over the three copies. The input transform runs as a frozen 1×1 convolution
 * (channelAffineConv), so it costs one small dispatch per branch and shares the convolutions' backward.
 */
export function addPerceptualLoss(
  ctx: GPUContext,
  graph: Graph,
  vgg: FeatureNetwork,
  prediction: TensorValue,
  target: TensorValue,
  options: PerceptualLossOptions,
): PerceptualLossResult {
  const label = options.label ?? 'perceptual loss';
  const criterion = options.criterion ?? 'l1';
  if (!CRITERIA.includes(criterion)) {
    throw new InvalidInputError(`${label}: unknown criterion '${String(criterion)}' (expected l1, l2, mse or fro)`);
  }
  const perceptualWeight = options.perceptualWeight ?? 1;
  if (!Number.isFinite(perceptualWeight)) throw new InvalidInputError(`${label}: perceptual_weight must be a finite number`);
  if (prediction.shape.some((d, i) => d !== target.shape[i])) {
    throw new InvalidInputError(`${label}: target ${formatShape(target.shape)} does not match prediction ${formatShape(prediction.shape)}`);
  }
  const entries = Object.entries(options.layerWeights ?? {});
  if (entries.length === 0) throw new InvalidInputError(`${label}: layerWeights names no layer`);
  const features = vgg.features;
  const layers = entries.map(([name, w]) => {
    if (!Number.isFinite(w)) throw new InvalidInputError(`${label}: the weight of ${name} must be a finite number, got ${w}`);
    return features.layerIndex(name);
  });
  const last = Math.max(...layers);
  features.checkInputSize(prediction.shape[1], prediction.shape[2], last, label);

  const { scale, shift } = inputAffine(options.useInputNorm ?? true, options.rangeNorm ?? false);
  const adapter = channelAffineConv(prediction.shape[3], scale, shift);
  const frozen: [string, Parameter][] = [
    ...namedParameters(adapter, 'input_norm.'),
    ...namedParameters(vgg).filter(([, p]) => features.convsUpTo(last).some((c) => c.weight === p || c.bias === p)),
  ];
  const arena = new ParameterArena(
    ctx,
    frozen.map(([name, p]) => ({ key: p, numel: p.shape.reduce((a, b) => a * b, 1), label: name })),
    `${label} VGG weights`,
  );
  try {
    for (const [name, p] of frozen) {
      if (!p.data) throw new InvalidInputError(`${label}: ${name} has no weights loaded`);
      arena.write(p, 'value', p.data);
    }
    const tape = new GradientTape(graph);
    const builder = new ForwardBuilder(ctx, graph, new TrainingGraph(tape, [], arena, 'frozen'));
    tape.track(prediction);
    const run = (x: TensorValue, which: string) =>
      features.extract(builder, adapter.forward(builder, x, { label: `${label} ${which} input norm` }), layers, {
        label: `${label} ${which} vgg.features`,
      });
    const predicted = run(prediction, 'prediction');
    const wanted = run(target, 'target');
    const terms = entries.map(([name, w], k) =>
      featureLoss(graph, criterion, predicted[k], wanted[k], w * perceptualWeight, `${label} ${name}`),
    );
    tape.backward(terms.map((t, k) => [predicted[k], t.grad] as const));
    const grad = tape.gradient(prediction);
    if (!grad) throw new InvalidInputError(`${label}: no gradient reached the prediction`);
    const loss = sumTensors(
      graph,
      terms.map((t) => t.loss),
      `${label} sum`,
    );
    return { loss, grad, dispose: () => arena.dispose() };
  } catch (e) {
    arena.dispose();
    throw e;
  }
}

/** `weight · criterion(p, t)` and its gradient with respect to p. */
function featureLoss(
  graph: Graph,
  criterion: NonNullable<PerceptualLossOptions['criterion']>,
  p: TensorValue,
  t: TensorValue,
  weight: number,
  label: string,
): { loss: TensorValue; grad: TensorValue } {
  if (criterion !== 'fro') return pixelLoss(graph, criterion === 'l1' ? 'l1' : 'mse', p, t, { label, weight });
  // Σd² (the 'mean' MSE times numel) and its gradient 2d, finished into w·‖d‖ and w·d/‖d‖.
  const squares = pixelLoss(graph, 'mse', p, t, { label: `${label} Σd²`, weight: logicalElements(p.shape) });
  return frobeniusFinish(graph, squares.loss, squares.grad, weight, label);
}

function frobeniusWgsl(io: TensorAccess): string {
  return `struct Params { count: u32, weight: f32 }
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('squares', 1, 'read')}
${io.declare('g2', 2, 'read')}
${io.declare('grad', 3, 'read_write')}
${io.declare('loss', 4, 'read_write')}

${linearEntry(64)}
  let norm = sqrt(${io.load('squares', '0u')}.x);
  // torch.norm's backward is 0 where the norm is 0 (identical maps), not NaN.
  let k = select(0.0, 0.5 * p.weight / norm, norm > 0.0);
  ${io.store('grad', 'i', `${io.load('g2', 'i')} * k`)}
  if (i == 0u) { ${io.store('loss', '0u', 'vec4<f32>(p.weight * norm, 0.0, 0.0, 0.0)')} }
}`;
}

/** From Σd² ([1, 1, 1, 1]) and 2d: the loss w·√Σd² and its gradient w·d/√Σd² (PyTorch's norm backward). */
function frobeniusFinish(
  graph: Graph,
  squares: TensorValue,
  twiceDiff: TensorValue,
  weight: number,
  label: string,
): { loss: TensorValue; grad: TensorValue } {
  const grad = graph.tensor(twiceDiff.shape, `${label} grad`);
  const loss = graph.tensor([1, 1, 1, 1], label);
  const count = tensorElements(twiceDiff.shape) / 4;
  graph.add({
    label,
    kernel: kernelShader('frobenius_finish', { family: 'frobenius_finish' }, frobeniusWgsl),
    uniforms: { count, weight },
    bindings: { squares, g2: twiceDiff, grad, loss },
    workgroups: Math.ceil(count / 64),
    cost: { flops: logicalElements(twiceDiff.shape), bytes: 2 * logicalBytes(twiceDiff.shape) },
  });
  return { loss, grad };
}
