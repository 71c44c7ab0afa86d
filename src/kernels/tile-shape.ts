/**
 * Tile shapes shared by the kernels' variant tables (conv2d, conv_transpose2d) on software adapters. A tile
 * that overhangs the row, or a workgroup that the tiles do not fill, costs real SIMD lanes there; but software
 * adapters also JIT-compile every pipeline with LLVM on its first dispatch, and that time grows with the
 * unrolled body and is paid once per distinct shader (llvmpipe, 3×3 64→64 convolutions, cold, machine busy:
 * px8 cb2 with taps in loops 3.6 s; with row reuse px4 cb1 2.6 s, px8 cb2 10 s, px16 cb2 22 s, px32 cb2 36 s,
 * px14 cb4 45 s; a network with a dozen such variants took minutes before its first pixel). So the tables draw
 * from few tile shapes with small bodies, which layers and input sizes then share: `compactTile`, two channel
 * vec4s and 64 invocations a workgroup.
 */

/** The pixel tile of a software adapter's kernels: 8, or 4 for rows of at most 4 pixels. */
export function compactTile(width: number): number {
  return width <= 4 ? 4 : 8;
}
