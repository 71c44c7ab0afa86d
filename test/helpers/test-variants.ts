import type { VariantSource } from '../../src/gpu/context';
import type { ConvTranspose2dVariant } from '../../src/kernels/conv-transpose2d-variants';
import type { Conv2dVariant } from '../../src/kernels/conv2d-variants';
import type { MatmulVariant } from '../../src/kernels/matmul';
import type { WindowAttentionVariant } from '../../src/kernels/window-attention-variants';

/** What the variant selectors see of a software (CPU) adapter, and of a hardware GPU: no overrides. */
export const SOFTWARE: VariantSource = {
  adapter: { vendor: '', architecture: '', device: '', description: 'llvmpipe', isSoftware: true },
};
export const HARDWARE: VariantSource = { adapter: { ...SOFTWARE.adapter, description: 'discrete', isSoftware: false } };

/**
 * Conv2d variants the tests check on every case, besides whatever the selector picks for that case on a software
 * and a hardware adapter (the tests add those): the smallest tile, and shapes that do not divide typical sizes.
 */
export const CONV2D_TEST_VARIANTS: Conv2dVariant[] = [
  { px: 1, cb: 1, workgroupSize: 64 },
  { px: 2, cb: 3, workgroupSize: 32 },
  { px: 3, cb: 2, workgroupSize: 16, uniformWeights: true },
];

/**
 * Transposed-convolution variants the tests check besides the selector's picks: small and odd tiles of both
 * algorithms (the sub-pixel ones only apply to sub-pixel geometries).
 */
export const CONV_TRANSPOSE2D_TEST_VARIANTS: ConvTranspose2dVariant[] = [
  { algorithm: 'subpixel', px: 1, cb: 1, workgroupSize: 64 },
  { algorithm: 'subpixel', px: 2, cb: 1, workgroupSize: 16, allTaps: true },
  { algorithm: 'subpixel', px: 3, cb: 2, workgroupSize: 32, uniformWeights: true },
  { algorithm: 'gather', px: 1, cb: 1, workgroupSize: 64 },
  { algorithm: 'gather', px: 3, cb: 2, workgroupSize: 32 },
];

/**
 * Window-attention variants the tests check besides the selector's picks (rows ≥ 4 work but take 30–70 s to
 * compile on lavapipe, too slow for the suite).
 */
export const WINDOW_ATTENTION_TEST_VARIANTS: WindowAttentionVariant[] = [
  { mode: 'workgroup', rows: 1 },
  { mode: 'direct', rows: 1 },
  { mode: 'direct', rows: 2 },
];

/** Matmul variants the tests check: the smallest tile, odd register and staged tiles (plus both selector picks). */
export const MATMUL_TEST_VARIANTS: readonly MatmulVariant[] = [
  { rows: 1, cols: 1, wgX: 64, wgY: 1 },
  { rows: 3, cols: 2, wgX: 1, wgY: 16 },
  { rows: 2, cols: 3, wgX: 4, wgY: 4, sharedK: 8 },
];
