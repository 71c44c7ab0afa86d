import { InvalidInputError } from '../../errors';

/**
 * The 8 dihedral transforms of a square's symmetry group, numbered as KAIR's `utils_image.augment_img` (which
 * DnCNN, SCUNet and the SR recipes train with): 0 identity, 1 flipud∘rot90, 2 flipud, 3 rot90³, 4 flipud∘rot90²,
 * 5 rot90, 6 rot90², 7 flipud∘rot90³, where rot90 turns counter-clockwise (np.rot90) and flipud mirrors rows.
 * Mode 1 is `np.flipud(np.rot90(img))`: rotate first, then flip.
 */
export type DihedralMode = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** For each mode: number of counter-clockwise quarter turns, then whether rows are flipped. */
const TRANSFORMS: readonly (readonly [turns: number, flipRows: boolean])[] = [
  [0, false],
  [1, true],
  [0, true],
  [3, false],
  [2, true],
  [1, false],
  [2, false],
  [3, true],
];

/** Output size of mode `mode` on an h × w image: odd numbers of quarter turns swap the sides. */
export function dihedralShape(mode: DihedralMode, h: number, w: number): [number, number] {
  return TRANSFORMS[mode][0] % 2 === 1 ? [w, h] : [h, w];
}

/**
 * Applies `mode` to a planar image (CHW, `channels` planes of h × w) and returns the new planes. The same mode
 * must go to an input, its target and its mask, so they stay registered.
 */
export function dihedral(data: Float32Array, channels: number, h: number, w: number, mode: DihedralMode): Float32Array {
  if (!Number.isInteger(mode) || mode < 0 || mode > 7) throw new InvalidInputError(`dihedral mode must be 0–7, got ${mode}`);
  if (data.length !== channels * h * w) throw new InvalidInputError(`dihedral: ${data.length} values are not ${channels}×${h}×${w}`);
  const [turns, flipRows] = TRANSFORMS[mode];
  const [ho, wo] = dihedralShape(mode, h, w);
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++) {
    const src = c * h * w;
    const dst = c * ho * wo;
    for (let oy = 0; oy < ho; oy++) {
      // Undo the flip first (it was applied last), then the turns.
      const ry = flipRows ? ho - 1 - oy : oy;
      for (let ox = 0; ox < wo; ox++) {
        const [sy, sx] = sourceOfTurned(ry, ox, turns, h, w);
        out[dst + oy * wo + ox] = data[src + sy * w + sx];
      }
    }
  }
  return out;
}

/**
 * Where pixel (y, x) of an image turned counter-clockwise `turns` times came from. np.rot90 once maps
 * out[y][x] = in[x][w − 1 − y] (the output has w rows).
 */
function sourceOfTurned(y: number, x: number, turns: number, h: number, w: number): [number, number] {
  switch (turns) {
    case 0:
      return [y, x];
    case 1:
      return [x, w - 1 - y];
    case 2:
      return [h - 1 - y, w - 1 - x];
    default:
      return [h - 1 - x, y];
  }
}
