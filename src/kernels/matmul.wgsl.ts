import { LINEAR_WORKGROUP_INDEX_WGSL, WORKGROUP_BUILTINS } from '../gpu/dispatch';
import { WHOLE_BINDINGS, type TensorAccess } from '../gpu/tensor-access';
import { range } from './wgsl-common';

/**
 * Tiling parameters of the f32 GEMM C[M,N] = A[M,K]·B[K,N] (+ bias). Each invocation computes `rows` output rows
 * times `cols` vec4 columns held in registers; a workgroup of `wgX`×`wgY` invocations covers a block of
 * `wgY·rows` rows × `wgX·cols` vec4 columns, invocation (lx, ly) taking rows ly + i·wgY and columns lx + j·wgX
 * of it (strided, so neighbouring invocations touch neighbouring addresses).
 *
 * Two families share these parameters, because the adapters we run on want opposite things:
 * - registers only (`sharedK` absent): every invocation streams A and B from storage. CPU adapters (lavapipe,
 *   SwiftShader) run invocations on SIMD lanes, where workgroup memory and barriers are expensive but a load
 *   whose address is the same in the whole workgroup is one load and a broadcast. With `wgX = 1` every B load is
 *   workgroup-uniform (the invocations differ only in their rows); with `wgY = 1` every A load is.
 * - workgroup-memory staging (`sharedK` set): the workgroup copies a `wgY·rows × sharedK` tile of A and a
 *   `sharedK × wgX·cols·4` tile of B into workgroup memory, synchronises, and every invocation reads its operands
 *   from there: the classic GPU GEMM, where it saves global-memory bandwidth.
 */
export interface MatmulVariant {
  /** Output rows per invocation. */
  rows: number;
  /** Output vec4 columns (4 floats each) per invocation. */
  cols: number;
  /** Invocations per workgroup along the columns. */
  wgX: number;
  /** Invocations per workgroup along the rows. */
  wgY: number;
  /** Depth (in K) of the workgroup-memory tiles, a multiple of 4; absent for the registers-only kernel. */
  sharedK?: number;
}

export interface MatmulShaderKey {
  hasBias: boolean;
}

/** `r4,c4,wg1x64` or `r8,c2,wg8x8,sk16`: the variant's tags, as in shader labels and `parseMatmulVariant`. */
export function matmulVariantTags(v: MatmulVariant): string {
  return `r${v.rows},c${v.cols},wg${v.wgX}x${v.wgY}${v.sharedK ? `,sk${v.sharedK}` : ''}`;
}

export function matmulLabel(key: MatmulShaderKey, v: MatmulVariant): string {
  return `matmul[${matmulVariantTags(v)}${key.hasBias ? ',bias' : ''}]`;
}

/** Bytes of workgroup memory a variant declares (0 without staging): A tile + B tile, f32. */
export function matmulWorkgroupBytes(v: MatmulVariant): number {
  if (!v.sharedK) return 0;
  return (v.wgY * v.rows * v.sharedK + v.sharedK * v.wgX * v.cols * 4) * 4;
}

const LANES = ['x', 'y', 'z', 'w'] as const;

/**
 * Generates the WGSL. Loops over the register tile are unrolled in the generated text (Tint does not unroll
 * loops, and the accumulators must stay in registers). Uniforms: `m` rows of A and C, `k` (logical) and `k4`
 * (vec4s per row of A), `n4` (vec4s per row of B and C), the number of column and row blocks, and for the
 * registers-only kernel the count of whole vec4 steps along K and the remainder.
 */
export function matmulWgsl(key: MatmulShaderKey, v: MatmulVariant, io: TensorAccess = WHOLE_BINDINGS): string {
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);
  emit(`struct Params {
  m: u32, k: u32, k4: u32, n4: u32,
  col_blocks: u32, row_blocks: u32, k_whole4: u32, k_rem: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
${io.declare('lhs', 1, 'read')}
${io.declare('rhs', 2, 'read')}
${key.hasBias ? '@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;' : ''}
${io.declare('dst', 4, 'read_write')}

const WX: u32 = ${v.wgX}u;
const WY: u32 = ${v.wgY}u;`);
  if (v.sharedK) emitSharedDeclarations(emit, v);
  emit(`
${LINEAR_WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${v.wgX}, ${v.wgY})
fn main(${WORKGROUP_BUILTINS},
        @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) lindex: u32) {
  // The grid is folded into x and y when one dimension would exceed the device's limit; the whole workgroup
  // leaves together, so the barriers of the staged kernel stay in uniform control flow.
  let wg = linear_workgroup_index(wid, nwg);
  if (wg >= p.col_blocks * p.row_blocks) { return; }
  let col_block = wg % p.col_blocks;
  let row_block = wg / p.col_blocks;`);
  // A literal 0 where a workgroup dimension is 1 lets the compiler see that the other operand's addresses are
  // workgroup-uniform (the point of wgX = 1 or wgY = 1 on CPU adapters).
  emit(`  let lx = ${v.wgX === 1 ? '0u' : 'lid.x'};
  let ly = ${v.wgY === 1 ? '0u' : 'lid.y'};
  let col0 = col_block * (WX * ${v.cols}u) + lx;
  let row0 = row_block * (WY * ${v.rows}u) + ly;`);
  for (const i of range(v.rows)) for (const j of range(v.cols)) emit(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  if (v.sharedK) emitSharedLoop(emit, v, io);
  else emitRegisterLoop(emit, v, io);
  for (const j of range(v.cols)) {
    emit(`  let out_col${j} = col0 + ${j * v.wgX}u;
  if (out_col${j} < p.n4) {`);
    if (key.hasBias) emit(`    let bias${j} = bias[out_col${j}];`);
    for (const i of range(v.rows)) {
      const value = `acc${i}_${j}${key.hasBias ? ` + bias${j}` : ''}`;
      emit(`    if (row0 + ${i * v.wgY}u < p.m) { ${io.store('dst', `(row0 + ${i * v.wgY}u) * p.n4 + out_col${j}`, value)} }`);
    }
    emit('  }');
  }
  emit('}');
  return lines.join('\n');
}

/**
 * Registers only: per vec4 step along K, `rows` vec4s of A (4 values of K each) and 4 × `cols` vec4s of B.
 * Rows and columns past the edges are clamped to the last one (computed, never stored), so every load is in
 * bounds without a branch. K not a multiple of 4: the last vec4 of A is partly padding, and the matching rows
 * of B do not exist, so that step runs apart with only the `k_rem` real lanes.
 */
function emitRegisterLoop(emit: (s: string) => void, v: MatmulVariant, io: TensorAccess): void {
  for (const i of range(v.rows)) emit(`  let arow${i} = min(row0 + ${i * v.wgY}u, p.m - 1u) * p.k4;`);
  for (const j of range(v.cols)) emit(`  let bcol${j} = min(col0 + ${j * v.wgX}u, p.n4 - 1u);`);
  const step = (lanes: number, indent: string, guarded: boolean) => {
    for (const i of range(v.rows)) emit(`${indent}let a${i} = ${io.load('lhs', `arow${i} + k4`)};`);
    for (const t of range(lanes)) {
      const inner = guarded ? `${indent}  ` : indent;
      if (guarded) emit(`${indent}if (p.k_rem > ${t}u) {`);
      for (const j of range(v.cols)) emit(`${inner}let b${t}_${j} = ${io.load('rhs', `brow + bcol${j}`)};`);
      for (const i of range(v.rows)) {
        for (const j of range(v.cols)) emit(`${inner}acc${i}_${j} = acc${i}_${j} + a${i}.${LANES[t]} * b${t}_${j};`);
      }
      emit(`${inner}brow += p.n4;`);
      if (guarded) emit(`${indent}}`);
    }
  };
  emit(`  var brow = 0u;
  for (var k4 = 0u; k4 < p.k_whole4; k4++) {`);
  step(4, '    ', false);
  emit(`  }
  if (p.k_rem > 0u) {
    let k4 = p.k_whole4;`);
  step(3, '    ', true);
  emit('  }');
}

function emitSharedDeclarations(emit: (s: string) => void, v: MatmulVariant): void {
  const tk = v.sharedK!;
  emit(`const TM: u32 = ${v.wgY * v.rows}u;
const TN4: u32 = ${v.wgX * v.cols}u;
const TK: u32 = ${tk}u;
const TK4: u32 = ${tk / 4}u;
// A tile [TM][TK4] (vec4 along K) and B tile [TK][TN4] (vec4 along N).
var<workgroup> tile_a: array<vec4<f32>, ${v.wgY * v.rows * (tk / 4)}>;
var<workgroup> tile_b: array<vec4<f32>, ${tk * v.wgX * v.cols}>;`);
}

/**
 * Staged: the workgroup's invocations copy the next A and B tiles cooperatively (each a fixed number of vec4s,
 * unrolled), zero-filling past the matrix edges and masking A's padded K lanes (so padding never meets a B row
 * that does not exist), then each invocation accumulates its register tile from workgroup memory.
 */
function emitSharedLoop(emit: (s: string) => void, v: MatmulVariant, io: TensorAccess): void {
  const tk = v.sharedK!;
  const threads = v.wgX * v.wgY;
  const aTile = v.wgY * v.rows * (tk / 4);
  const bTile = tk * v.wgX * v.cols;
  emit(`  let row_base = row_block * TM;
  let col_base = col_block * TN4;
  for (var k0 = 0u; k0 < p.k; k0 += TK) {`);
  for (const s of range(Math.ceil(aTile / threads))) {
    const guard = (s + 1) * threads > aTile;
    emit(`    {
      let e = lindex + ${s * threads}u;${guard ? `\n      if (e < ${aTile}u) {` : ''}
      let r = row_base + e / TK4;
      let q = k0 / 4u + e % TK4;
      var val = vec4<f32>(0.0);
      if (r < p.m && q < p.k4) {
        val = select(vec4<f32>(0.0), ${io.load('lhs', 'r * p.k4 + q')}, vec4<u32>(q * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.k));
      }
      tile_a[e] = val;${guard ? '\n      }' : ''}
    }`);
  }
  for (const s of range(Math.ceil(bTile / threads))) {
    const guard = (s + 1) * threads > bTile;
    emit(`    {
      let e = lindex + ${s * threads}u;${guard ? `\n      if (e < ${bTile}u) {` : ''}
      let kr = k0 + e / TN4;
      let c = col_base + e % TN4;
      var val = vec4<f32>(0.0);
      if (kr < p.k && c < p.n4) { val = ${io.load('rhs', 'kr * p.n4 + c')}; }
      tile_b[e] = val;${guard ? '\n      }' : ''}
    }`);
  }
  emit(`    workgroupBarrier();
    for (var kk4 = 0u; kk4 < TK4; kk4++) {`);
  for (const i of range(v.rows)) emit(`      let a${i} = tile_a[(ly + ${i * v.wgY}u) * TK4 + kk4];`);
  for (const t of range(4)) {
    for (const j of range(v.cols)) emit(`      let b${t}_${j} = tile_b[(kk4 * 4u + ${t}u) * TN4 + lx + ${j * v.wgX}u];`);
    for (const i of range(v.rows)) {
      for (const j of range(v.cols)) emit(`      acc${i}_${j} = acc${i}_${j} + a${i}.${LANES[t]} * b${t}_${j};`);
    }
  }
  emit(`    }
    workgroupBarrier();
  }`);
}
