/**
 * The adapter's roofline with our own kernels: best f32 GEMM GFLOP/s over every matmul variant, and copy
 * bandwidth (copyBufferToBuffer and a vec4 copy shader, GB/s counting read + write bytes). Other benchmarks
 * import `measureRoofline` from ./roofline-lib to report their fraction of it.
 *
 *   node dist/bench/roofline.js [--quick] [--large] [--sizes 1024,512x256x768] [--variants 'r4,c4,wg1x64;r8,c2,wg8x8,sk16']
 *     [--runs 3] [--warmup 1] [--copy-mib 256] [--no-gemm] [--no-copy] [--json out.json]
 *
 * Sizes are cube edges (1024 = 1024³) or MxNxK. `--large` adds 2048³. `--quick`: the adapter's pick and two
 * runners-up at 512³, 2 runs, 64 MiB copies.
 */
import { parseBenchArgs } from './args';
import { createNodeContext, releaseNodeGPU } from '../src/gpu/node-gpu';
import { parseMatmulVariant } from '../src/kernels/matmul';
import { fmt, fmtRange, markdownTable } from './report';
import { writeJson } from './write-json';
import { type GemmSize, measureRoofline } from './roofline-lib';

const USAGE = `
  node dist/bench/roofline.js [--quick] [--large] [--sizes 1024,512x256x768] [--variants 'r4,c4,wg1x64;r8,c2,wg8x8,sk16']
    [--runs 3] [--warmup 1] [--copy-mib 256] [--no-gemm] [--no-copy] [--json out.json]
`;

const { values } = parseBenchArgs(USAGE, {
  quick: { type: 'boolean', default: false },
  large: { type: 'boolean', default: false },
  sizes: { type: 'string' },
  variants: { type: 'string' },
  runs: { type: 'string' },
  warmup: { type: 'string' },
  'copy-mib': { type: 'string' },
  'no-gemm': { type: 'boolean', default: false },
  'no-copy': { type: 'boolean', default: false },
  json: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
});
if (values.help) {
  console.log(
    "node dist/bench/roofline.js [--quick] [--large] [--sizes 1024,MxNxK] [--variants 'r4,c4,wg1x64;r8,c2,wg8x8,sk16']\n" +
      '  [--runs 3] [--warmup 1] [--copy-mib 256] [--no-gemm] [--no-copy] [--json out.json]',
  );
  process.exit(0);
}

function parseGemmSize(text: string): GemmSize {
  const parts = text.trim().split(/[x×]/).map(Number);
  const ok = parts.every((x) => Number.isInteger(x) && x > 0);
  if (ok && parts.length === 1) return { m: parts[0], n: parts[0], k: parts[0] };
  if (ok && parts.length === 3) return { m: parts[0], n: parts[1], k: parts[2] };
  throw new Error(`bad GEMM size '${text}' (expected an edge like 1024, or MxNxK)`);
}

function positiveInt(text: string | undefined, what: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!Number.isInteger(x) || x < min) {
    console.error(`${what} must be an integer ≥ ${min}, got '${text}'`);
    process.exit(2);
  }
  return x;
}

let sizes: GemmSize[] | undefined = values.sizes?.split(',').map(parseGemmSize);
if (values.large) sizes = [...(sizes ?? [{ m: 1024, n: 1024, k: 1024 }]), { m: 2048, n: 2048, k: 2048 }];
const variants = values.variants?.split(';').map(parseMatmulVariant);
const copyMib = positiveInt(values['copy-mib'], '--copy-mib', 1);

const ctx = await createNodeContext();
console.log(`adapter: ${ctx.adapterName}`);
console.log(
  `limits: maxStorageBufferBindingSize ${ctx.limits.maxStorageBufferBindingSize}, maxBufferSize ${ctx.limits.maxBufferSize}, ` +
    `maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}; timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (wall time)'}`,
);
const result = await measureRoofline(ctx, {
  quick: values.quick,
  ...(sizes ? { sizes } : {}),
  ...(variants ? { variants } : {}),
  ...(values.runs !== undefined ? { runs: positiveInt(values.runs, '--runs', 1) } : {}),
  ...(values.warmup !== undefined ? { warmup: positiveInt(values.warmup, '--warmup', 0) } : {}),
  ...(copyMib !== undefined ? { copyBytes: copyMib * 2 ** 20 } : {}),
  skipGemm: values['no-gemm'],
  skipCopy: values['no-copy'],
  log: (line) => console.error(line),
});

const sizeText = (s: GemmSize) => (s.m === s.n && s.n === s.k ? `${s.m}³` : `${s.m}×${s.n}×${s.k}`);
if (result.gemm.length > 0) {
  const rows = result.gemm.map((r) => {
    if (r.status !== 'ok' || !r.ms) return [r.variant, sizeText(r.size), `${r.status}: ${r.reason}`, '–', '–', '–'];
    const mark = r.variant === result.variant && r.size === result.gemmSize ? ' **best**' : '';
    return [r.variant + mark, sizeText(r.size), fmt(r.ms.median), fmtRange(r.ms.p10, r.ms.p90), fmt(r.gflops), r.timing!];
  });
  console.log();
  console.log(markdownTable(['matmul variant', 'size (M×N×K)', 'median ms', 'p10–p90 ms', 'GFLOP/s', 'timing'], rows));
}
if (result.copy.length > 0) {
  const rows = result.copy.map((r) => {
    if (r.status !== 'ok' || !r.ms) return [r.method, `${fmt(r.bytes / 2 ** 20)} MiB`, `failed: ${r.reason}`, '–', '–', '–'];
    return [r.method, `${fmt(r.bytes / 2 ** 20)} MiB`, fmt(r.ms.median), fmtRange(r.ms.p10, r.ms.p90), fmt(r.gbps), r.timing!];
  });
  console.log();
  console.log(markdownTable(['copy', 'bytes', 'median ms', 'p10–p90 ms', 'GB/s (read+write)', 'timing'], rows));
}
console.log();
console.log(
  `best: ${fmt(result.gflops)} GFLOP/s (${result.variant ?? '–'}), ${fmt(result.gbps)} GB/s (${result.copyMethod ?? '–'}); ` +
    `${result.runs} runs after ${result.warmup} warm-up. GFLOP/s counts 2·M·N·K; GB/s counts bytes read + written.`,
);
const report = { ...result, benchmark: 'roofline', date: new Date().toISOString(), device: ctx.describe() };
console.log(JSON.stringify(report));
if (values.json) writeJson(values.json, report);

ctx.dispose();
releaseNodeGPU();
process.exit(0);
