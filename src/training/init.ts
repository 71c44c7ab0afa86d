import { createRng } from '../io/noise';
import { type Module, namedModules } from '../layers/module';
import { PReLU } from '../layers/prelu';

/**
 * Fresh parameters as PyTorch's constructors make them, from a seeded generator: convolution and linear
 * weights kaiming_uniform(a=√5), i.e. U(±1/√fan_in) with fan_in = shape[1]·kH·kW, their biases U(±1/√fan_in);
 * normalisation layers γ = 1, β = 0, running mean 0 and variance 1; PReLU slopes nn.PReLU's 0.25.
 */
export function initializeParameters(model: Module, seed: number): void {
  const rng = createRng(seed);
  const uniform = (n: number, bound: number) => Float64Array.from({ length: n }, () => (rng.next() * 2 - 1) * bound);
  for (const [, module] of namedModules(model)) {
    const params = module.parameters();
    const weight = params.weight;
    const fanIn = weight && weight.shape.length >= 2 ? weight.shape.slice(1).reduce((a, b) => a * b, 1) : 0;
    for (const [name, p] of Object.entries(params)) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (module instanceof PReLU) p.data = new Float64Array(n).fill(0.25);
      else if (name === 'running_var' || (name === 'weight' && p.shape.length === 1)) p.data = new Float64Array(n).fill(1);
      else if (name === 'weight' || (name === 'bias' && fanIn > 0)) p.data = uniform(n, 1 / Math.sqrt(fanIn));
      else p.data = new Float64Array(n);
    }
  }
  model.release();
}
