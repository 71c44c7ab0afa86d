/**
 * Entry of the test-only bundle that kernels.browser.test.ts builds with esbuild and serves to
 * test/browser/kernels.html: the kernel internals (which the library bundle does not export) plus the float64
 * reference, so the conv2d cases can run inside Chromium exactly as test/kernels/conv2d.test.ts runs them in Node.
 */
import { type GPUContext, requestContext } from '../../src/gpu/context';
import { BufferUsage } from '../../src/gpu/flags';
import { Graph } from '../../src/gpu/graph';
import { Plan } from '../../src/gpu/plan';
import { nchwToNhwcPadded, nhwcPaddedToNchw } from '../../src/gpu/tensor';
import { type Conv2dGeometry, type Conv2dVariant, conv2d, packBias, packConv2dWeight } from '../../src/kernels/conv2d';
import { randomArray, relL2 } from '../helpers/random';
import { conv2dRef } from '../helpers/reference';
import type { Conv2dCase } from '../helpers/conv2d-cases';

export interface Conv2dResult {
  relL2: number;
  shape: number[];
  expectedShape: number[];
  /** The first padded output channel that is not exactly zero, if any. */
  paddingError?: string;
  ms: number;
}

let context: Promise<GPUContext> | undefined;
const getContext = () => (context ??= requestContext(navigator.gpu, { debug: true }));

async function runConv2dCase(c: Conv2dCase, variant: Conv2dVariant, seed: number): Promise<Conv2dResult> {
  const ctx = await getContext();
  const t0 = performance.now();
  const n = c.n ?? 1;
  const stride = c.stride ?? 1;
  const pad = c.pad ?? [Math.floor(c.k[0] / 2), Math.floor(c.k[1] / 2)];
  const dilation = c.dilation ?? 1;
  const act = c.act ?? { kind: 'none' };
  const x = randomArray(n * c.cin * c.h * c.w, seed);
  const wt = randomArray(c.cout * c.cin * c.k[0] * c.k[1], seed + 1, 1 / Math.sqrt(c.cin * c.k[0] * c.k[1]));
  const b = c.bias === false ? undefined : randomArray(c.cout, seed + 2, 0.5);
  const ref = conv2dRef(x, [n, c.cin, c.h, c.w], wt, b, c.cout, c.k, stride, pad, dilation, act);

  const geometry: Conv2dGeometry = { inChannels: c.cin, outChannels: c.cout, kernelSize: c.k, stride, padding: pad, dilation };
  const g = new Graph();
  const input = g.input([n, c.h, c.w, c.cin]);
  const weight = ctx.createBufferWithData(packConv2dWeight(wt, geometry), BufferUsage.STORAGE, 'test weight');
  const bias = b ? ctx.createBufferWithData(packBias(b, c.cout), BufferUsage.STORAGE, 'test bias') : undefined;
  try {
    const y = conv2d(g, input, { weight, bias, geometry, variant, label: 'conv' }, { activation: act });
    g.output(y);
    const plan = await Plan.compile(ctx, g);
    let out: Float32Array;
    try {
      plan.poison();
      out = (await plan.run([nchwToNhwcPadded(x, [n, c.h, c.w, c.cin])])).outputs[0];
    } finally {
      plan.dispose();
    }
    const cp = Math.ceil(c.cout / 4) * 4;
    let paddingError: string | undefined;
    for (let i = 0; i < out.length && !paddingError; i++) {
      if (i % cp >= c.cout && out[i] !== 0) paddingError = `padded channel ${i % cp} holds ${out[i]}`;
    }
    const shape = [...y.shape];
    const expectedShape = [n, ref.ho, ref.wo, c.cout];
    const sameShape = shape.join() === expectedShape.join();
    return {
      relL2: sameShape ? relL2(nhwcPaddedToNchw(out, y.shape), ref.y) : Number.POSITIVE_INFINITY,
      shape,
      expectedShape,
      paddingError,
      ms: performance.now() - t0,
    };
  } finally {
    weight.destroy();
    bias?.destroy();
  }
}

export function createKernelHarness() {
  return {
    async probe() {
      if (!navigator.gpu) return { gpu: false, secure: isSecureContext };
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) return { gpu: true, adapter: null };
      const i = adapter.info;
      return { gpu: true, adapter: { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description } };
    },
    async adapterName() {
      return (await getContext()).adapterName;
    },
    runConv2dCase,
  };
}

export type KernelHarness = ReturnType<typeof createKernelHarness>;
