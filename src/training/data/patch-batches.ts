import { InvalidInputError } from '../../errors';
import type { FloatImage } from '../../io/image';
import { createRng, type Rng } from '../../io/noise';
import { type DihedralMode, dihedral } from './dihedral';
import { addNoise } from './noise-model';
import { shuffled } from './split';
import type { TrainingSet } from './training-set';

export interface BatchOptions {
  /** Patches per batch. */
  batch: number;
  /** Side of the square patches. */
  patch: number;
  /** 'dihedral': one of KAIR's 8 modes per patch, the same for input, target and mask; 'none': as they are. */
  augment: 'dihedral' | 'none';
  seed: number;
}

/** A batch, NCHW float32: network input, target and (when the examples have masks) the one-channel mask. */
export interface Batch {
  input: Float32Array;
  target: Float32Array;
  mask?: Float32Array;
}

/**
 * Draws training batches as KAIR's datasets do: the examples in a seeded shuffled order per epoch (the last
 * incomplete batch of an epoch is completed from the next epoch's order), a crop whose top-left corner is
 * uniform in [0, H − P] inclusive, a dihedral mode, then (clean-only examples) synthetic noise. With the patch
 * equal to the image size, a batch equal to the number of images and no augmentation, every batch is exactly
 * the given images, in the given order.
 */
export class PatchBatches {
  private readonly rng: Rng;
  private order: number[] = [];
  private position = 0;
  private epochs = 0;

  constructor(
    private readonly set: TrainingSet,
    private readonly options: BatchOptions,
  ) {
    const { batch, patch } = options;
    if (!Number.isInteger(batch) || batch < 1) throw new InvalidInputError(`batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(patch) || patch < 1) throw new InvalidInputError(`patch must be a positive integer, got ${patch}`);
    if (options.augment !== 'dihedral' && options.augment !== 'none') {
      throw new InvalidInputError(`augment must be 'dihedral' or 'none', got '${String(options.augment)}'`);
    }
    this.rng = createRng(options.seed);
  }

  /** Batches per pass over the examples (rounded up). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.set.examples.length / this.options.batch);
  }

  next(): Batch {
    const { batch, patch } = this.options;
    const first = this.set.examples[0];
    const cin = first.input?.channels ?? first.target.channels;
    const cout = first.target.channels;
    const maskChannels = first.mask?.channels;
    const plane = patch * patch;
    const input = new Float32Array(batch * cin * plane);
    const target = new Float32Array(batch * cout * plane);
    const mask = maskChannels ? new Float32Array(batch * maskChannels * plane) : undefined;
    for (let b = 0; b < batch; b++) {
      const ex = this.set.examples[this.nextIndex()];
      const y0 = Math.floor(this.rng.next() * (ex.target.height - patch + 1));
      const x0 = Math.floor(this.rng.next() * (ex.target.width - patch + 1));
      const mode = (this.options.augment === 'dihedral' ? Math.floor(this.rng.next() * 8) : 0) as DihedralMode;
      const take = (img: FloatImage) => dihedral(crop(img, y0, x0, patch), img.channels, patch, patch, mode);
      const clean = take(ex.target);
      target.set(clean, b * cout * plane);
      input.set(ex.input ? take(ex.input) : addNoise(clean, this.set.noise!, this.rng), b * cin * plane);
      if (mask && ex.mask) mask.set(take(ex.mask), b * maskChannels! * plane);
    }
    return { input, target, ...(mask ? { mask } : {}) };
  }

  private nextIndex(): number {
    const n = this.set.examples.length;
    if (this.position >= this.order.length) {
      // Keep the given order when every batch holds every image and nothing is augmented (deterministic steps).
      const asGiven = this.options.batch === n && this.options.augment === 'none';
      this.order = asGiven ? Array.from({ length: n }, (_, i) => i) : shuffled(n, this.rng.nextUint32() + this.epochs);
      this.position = 0;
      this.epochs++;
    }
    return this.order[this.position++];
  }
}

/** The patch × patch window at (y0, x0) of every channel of `img`. */
function crop(img: FloatImage, y0: number, x0: number, patch: number): Float32Array {
  const out = new Float32Array(img.channels * patch * patch);
  for (let c = 0; c < img.channels; c++) {
    for (let y = 0; y < patch; y++) {
      const src = (c * img.height + y0 + y) * img.width + x0;
      out.set(img.data.subarray(src, src + patch), (c * patch + y) * patch);
    }
  }
  return out;
}
