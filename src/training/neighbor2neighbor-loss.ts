import { InvalidInputError } from '../errors';
import type { Graph, TensorValue } from '../gpu/graph';
import type { ForwardBuilder } from '../layers/forward-builder';
import { binary } from '../kernels/elementwise';
import { pixelLoss } from '../kernels/loss';
import { neighborSubimages } from '../kernels/neighbor-subsample';
import { scalarWeightedAdd } from '../kernels/scalar-weighted-add';
import type { Network } from '../models/network';

/**
 * Neighbor2Neighbor's step (Huang et al. 2021, train.py) on a noisy batch y [N, H, W, C] with even H and W, in
 * its order: the full image through the network first (its f(y) has no gradient, but BatchNorm in train mode
 * moves its statistics, as PyTorch's no_grad forward does), then the prediction f(g1(y)), and
 *   L = mean((f(g1 y) − g2 y)²) + γ·mean((f(g1 y) − g2 y − (g1 f(y) − g2 f(y)))²).
 * The second term is an MSE against g2 y + g1 f(y) − g2 f(y), a target that holds nothing that learns, so the
 * tape never plays the full image's forward back. The plan's inputs are y, the cells' pair choices
 * [N, H/2, W/2, 1] and γ [1, 1, 1, 1] (an input, since it grows with the epoch).
 */
export function neighbor2NeighborLoss(
  builder: ForwardBuilder,
  model: Network,
  graph: Graph,
  noisy: TensorValue,
): { prediction: TensorValue; loss: TensorValue; grad: TensorValue; choices: TensorValue; gamma: TensorValue } {
  const [n, h, w] = noisy.shape;
  if (h % 2 !== 0 || w % 2 !== 0) throw new InvalidInputError(`Neighbor2Neighbor needs even patch sides, got ${h}×${w}`);
  const choices = graph.input([n, h / 2, w / 2, 1], 'neighbour choices');
  const gamma = graph.input([1, 1, 1, 1], 'gamma');
  const label = model.architecture;
  const denoised = model.forward(builder, noisy, { label: `${label} on y (no gradient)` });
  const sub = neighborSubimages(graph, noisy, choices, 'g(y)');
  const subDenoised = neighborSubimages(graph, denoised, choices, 'g(f(y))');
  const prediction = model.forward(builder, sub.first, { label });
  const expected = binary(graph, 'sub', subDenoised.first, subDenoised.second, 'g1 f(y) − g2 f(y)');
  const regularised = binary(graph, 'add', sub.second, expected, 'regulariser target');
  const reconstruction = pixelLoss(graph, 'mse', prediction, sub.second, { label: 'Neighbor2Neighbor reconstruction' });
  const regulariser = pixelLoss(graph, 'mse', prediction, regularised, { label: 'Neighbor2Neighbor regulariser' });
  return {
    prediction,
    loss: scalarWeightedAdd(graph, reconstruction.loss, regulariser.loss, gamma, 'Neighbor2Neighbor loss'),
    grad: scalarWeightedAdd(graph, reconstruction.grad, regulariser.grad, gamma, 'Neighbor2Neighbor loss gradient'),
    choices,
    gamma,
  };
}
