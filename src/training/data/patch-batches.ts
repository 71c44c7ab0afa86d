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

/**
 * What the network makes of a batch: its scale (output / input size; the target patch is scale × patch, default
 * 1) and the range its images live in ('symmetric': [-1, 1], so input and target map x → 2x − 1 as the inference
 * path does; masks stay 0/1).
 */
export interface BatchLayout {
  scale?: number;
  valueRange?: 'unit' | 'symmetric';
}

/**
 * A batch, NCHW float32: network input, target (scale × the input's size) and (when the examples have masks) the
 * one-channel mask at the target's size.
 */
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
 * the given images, in the given order. For a ×s network the crop is taken from the low-resolution input and the
 * target gets the aligned s·P × s·P window at (s·y, s·x) (BasicSR's paired_random_crop), with the same dihedral mode.
 */
export class PatchBatches {
  private readonly rng: Rng;
  private order: number[] = [];
  private position = 0;
  private epochs = 0;
  private readonly scale: number;
  private readonly symmetric: boolean;

  constructor(
    private readonly set: TrainingSet,
    private readonly options: BatchOptions,
    layout: BatchLayout = {},
  ) {
    const { batch, patch } = options;
    this.scale = layout.scale ?? 1;
    if (!Number.isInteger(this.scale) || this.scale < 1) throw new InvalidInputError(`scale must be a positive integer, got ${this.scale}`);
    if (layout.valueRange !== undefined && layout.valueRange !== 'unit' && layout.valueRange !== 'symmetric') {
      throw new InvalidInputError(`valueRange must be 'unit' or 'symmetric', got '${String(layout.valueRange)}'`);
    }
    this.symmetric = layout.valueRange === 'symmetric';
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
    const s = this.scale;
    const big = s * patch;
    const first = this.set.examples[0];
    const cin = first.input?.channels ?? first.target.channels;
    const cout = first.target.channels;
    const maskChannels = first.mask?.channels;
    const inPlane = patch * patch;
    const outPlane = big * big;
    const input = new Float32Array(batch * cin * inPlane);
    const target = new Float32Array(batch * cout * outPlane);
    const mask = maskChannels ? new Float32Array(batch * maskChannels * outPlane) : undefined;
    for (let b = 0; b < batch; b++) {
      const ex = this.set.examples[this.nextIndex()];
      // The corner is drawn on the input's grid (the same size as the target's when s = 1).
      const low = ex.input ?? ex.target;
      const y0 = Math.floor(this.rng.next() * (low.height - patch + 1));
      const x0 = Math.floor(this.rng.next() * (low.width - patch + 1));
      const mode = (this.options.augment === 'dihedral' ? Math.floor(this.rng.next() * 8) : 0) as DihedralMode;
      const take = (img: FloatImage, side: number, at: number) =>
        dihedral(crop(img, at * y0, at * x0, side), img.channels, side, side, mode);
      const clean = take(ex.target, big, s);
      target.set(clean, b * cout * outPlane);
      input.set(ex.input ? take(ex.input, patch, 1) : addNoise(clean, this.set.noise!, this.rng), b * cin * inPlane);
      if (mask && ex.mask) mask.set(take(ex.mask, big, s), b * maskChannels! * outPlane);
    }
    if (this.symmetric) {
      // After the noise, which is defined on [0, 1] images.
      for (const data of [input, target]) for (let i = 0; i < data.length; i++) data[i] = 2 * data[i] - 1;
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
