/**
 * The benchmarks' `--variant` texts: the tags of a shader label (`px16,cb4,wg64,uw`) parsed back into a kernel
 * variant, which a benchmark forces with `ctx.variantOverrides` or passes to a kernel directly.
 */
import { InvalidInputError } from '../src/errors';
import type { Conv2dVariant } from '../src/kernels/conv2d-variants';
import type { ConvTranspose2dVariant } from '../src/kernels/conv-transpose2d-variants';
import type { WindowAttentionVariant } from '../src/kernels/window-attention-variants';

/** Parses `px16,cb4,wg64,uw` (the tags of a shader label) into a variant. */
export function parseConv2dVariant(text: string): Conv2dVariant {
  const v: Conv2dVariant = { px: 0, cb: 0, workgroupSize: 64 };
  for (const part of text.split(',')) {
    const m = /^(px|cb|wg|rows)(\d+)$/.exec(part.trim());
    if (m) {
      const n = Number(m[2]);
      if (m[1] === 'px') v.px = n;
      else if (m[1] === 'rows') v.rows = n;
      else if (m[1] === 'cb') v.cb = n;
      else v.workgroupSize = n;
    } else if (part.trim() === 'uw') v.uniformWeights = true;
    else if (part.trim() === 'rr') v.rowReuse = true;
    else if (part.trim() === 'cl') v.channelLanes = true;
    else throw new InvalidInputError(`bad conv2d variant tag '${part}' in '${text}' (expected e.g. px16,cb4,wg64,uw)`);
  }
  if (v.px < 1 || v.cb < 1 || v.workgroupSize < 1) throw new InvalidInputError(`conv2d variant '${text}' needs px and cb`);
  return v;
}

/** Parses `subpixel,px16,cb4,wg64,uw` (the tags of a shader label) into a transposed-convolution variant. */
export function parseConvTranspose2dVariant(text: string): ConvTranspose2dVariant {
  const v: ConvTranspose2dVariant = { algorithm: 'subpixel', px: 0, cb: 0, workgroupSize: 64 };
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const m = /^(px|cb|wg)(\d+)$/.exec(part);
    if (m) {
      const n = Number(m[2]);
      if (m[1] === 'px') v.px = n;
      else if (m[1] === 'cb') v.cb = n;
      else v.workgroupSize = n;
    } else if (part === 'subpixel' || part === 'gather') v.algorithm = part;
    else if (part === 'uw') v.uniformWeights = true;
    else if (part === 'at') v.allTaps = true;
    else throw new Error(`bad convT variant tag '${part}' in '${text}' (expected e.g. subpixel,px16,cb4,wg64,uw)`);
  }
  if (v.px < 1 || v.cb < 1 || v.workgroupSize < 1) throw new Error(`convT variant '${text}' needs px and cb`);
  return v;
}

/** Parses `wg` or `direct,rows2` into a window-attention variant. */
export function parseWindowAttentionVariant(text: string): WindowAttentionVariant {
  const parts = text.split(',').map((s) => s.trim());
  if (parts[0] === 'wg' || parts[0] === 'workgroup') return { mode: 'workgroup', rows: 1 };
  const rows = /^rows(\d+)$/.exec(parts[1] ?? 'rows1');
  if (parts[0] === 'direct' && rows) return { mode: 'direct', rows: Number(rows[1]) };
  throw new Error(`bad attention variant '${text}' (expected wg, or direct,rowsN)`);
}
