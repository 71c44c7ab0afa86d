import { InvalidInputError } from '../errors';
import type { TensorValue } from '../gpu/graph';
import type { Epilogue, ForwardBuilder, ForwardOptions } from './forward-builder';
import { Module } from './module';

/**
 * nn.Sequential: children named by their index, which is what the state_dict keys carry (`model.3.weight`).
 *
 * `forward` runs the children in order, fusing what it can: a module that fuses epilogues takes the activation
 * after it into its own last dispatch, looking past modules that are the identity (a BatchNorm folded
 * into the convolution before it). So conv → BatchNorm → ReLU is one dispatch. The options given to the
 * Sequential itself (epilogue, output slice) apply to its last step.
 */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
  }

  override get supportsTraining(): boolean {
    return true;
  }

  /** True when the last step can take the caller's epilogue (it has not fused an activation of its own). */
  override get fusesEpilogue(): boolean {
    const last = this.fusedSteps().at(-1);
    return last !== undefined && last.epilogue === undefined && last.module.fusesEpilogue;
  }

  override get writesChannelSlice(): boolean {
    return this.fusedSteps().at(-1)?.module.writesChannelSlice ?? false;
  }

  override children(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }

  forward(b: ForwardBuilder, x: TensorValue, options: ForwardOptions = {}): TensorValue {
    const label = options.label ?? 'seq';
    this.checkOptions(options, label);
    const steps = this.fusedSteps();
    steps.forEach(({ index, module, epilogue }, s) => {
      const last = s === steps.length - 1;
      const childOptions: ForwardOptions = { label: `${label}.${index}` };
      if (last && options.epilogue && epilogue) {
        throw new InvalidInputError(`${label}.${index}: cannot fuse both the activation after it and the caller's epilogue`);
      }
      const fused = last ? (options.epilogue ?? epilogue) : epilogue;
      if (fused) childOptions.epilogue = fused;
      if (last && options.output) childOptions.output = options.output;
      x = module.forward(b, x, childOptions);
    });
    return x;
  }

  /** The modules to run, in order, each with the epilogue it absorbs from the activation following it. */
  private fusedSteps(): { index: number; module: Module; epilogue?: Epilogue }[] {
    const steps: { index: number; module: Module; epilogue?: Epilogue }[] = [];
    let i = 0;
    while (i < this.layers.length) {
      const module = this.layers[i];
      let next = i + 1;
      if (module.isIdentity) {
        i = next;
        continue;
      }
      while (this.layers[next]?.isIdentity) next++;
      const epilogue = module.fusesEpilogue ? this.layers[next]?.asEpilogue() : undefined;
      if (epilogue) next++;
      steps.push({ index: i, module, epilogue });
      i = next;
    }
    return steps;
  }
}
