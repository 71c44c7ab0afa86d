/**
 * The preview of a training run: a centre crop of the first image through the network as trained so far. The
 * weights are copied when asked (they change at the next validation) and run on a network of their own, one
 * preview at a time; when the training outpaces the previews, only the newest waiting one is run.
 */
import { type FloatImage, type GPUContext, type Network, RestorationModel, type StateDict } from '../index';
import { networkWithState, stateOf } from './train-state';

/** The centre `size` × `size` of a planar image (all of a side that is shorter). */
export function centreCrop(image: FloatImage, size: number): FloatImage {
  const w = Math.min(size, image.width);
  const h = Math.min(size, image.height);
  const x0 = Math.floor((image.width - w) / 2);
  const y0 = Math.floor((image.height - h) / 2);
  const data = new Float32Array(w * h * image.channels);
  for (let c = 0; c < image.channels; c++) {
    for (let y = 0; y < h; y++) {
      const from = (c * image.height + y0 + y) * image.width + x0;
      data.set(image.data.subarray(from, from + w), (c * h + y) * w);
    }
  }
  return { width: w, height: h, channels: image.channels, data };
}

export class Previewer {
  private waiting: { step: number; state: StateDict } | undefined;
  private draining: Promise<void> | undefined;

  constructor(
    private readonly ctx: GPUContext,
    private readonly crop: FloatImage,
    private readonly show: (step: number, image: FloatImage) => void,
    private readonly warn: (message: string) => void,
  ) {}

  /** Copies the network's weights now (call it while they are the trained ones) and previews them soon. */
  request(step: number, network: Network): void {
    this.waiting = { step, state: stateOf(network) };
    this.draining ??= this.drain(network).finally(() => (this.draining = undefined));
  }

  /** Resolves when every requested preview has been shown (or has failed with a warning). */
  async settled(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(like: Network): Promise<void> {
    while (this.waiting) {
      const { step, state } = this.waiting;
      this.waiting = undefined;
      let session: RestorationModel | undefined;
      try {
        session = new RestorationModel(this.ctx, networkWithState(like, state), 'preview');
        this.show(step, (await session.runFloat(this.crop)).image);
      } catch (e) {
        this.warn(`the preview after step ${step} failed: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        // Its pipelines stay in the context's cache; its weights and plans go.
        await session?.dispose();
      }
    }
  }
}
