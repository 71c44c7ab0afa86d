/**
 * Training on WebGPU (issue 17): what a training step costs on this adapter.
 *
 * 1. Whole Adam steps (MSE) of DnCNN-17 (64 features, BR, batch 16 × 64²), a U-Net and the ResNet34-SCSE U-Net
 *    (batch 4 × 64²): median wall time of `trainer.step` after warm-up, and GFLOP/s over the step's FLOPs, counted
 *    from the step plan's nodes when the Trainer exposes its plan, else estimated as 3 × the forward graph's.
 *    Networks the trainer refuses are rows saying "not trainable yet" with its message.
 * 2. The convolution backward kernels against the forward one, per dispatch (GPU timestamps) for DnCNN's 64→64 and
 *    1→64 layers at the DnCNN batch: input gradient and weight gradient GFLOP/s as a share of the forward's (goal
 *    ≥ 70 %), the on-GPU weight packing and the bias gradient apart.
 * 3. The GPU memory a step holds: the plan's activation slots, the parameter, gradient and Adam-state arenas, the
 *    BatchNorm buffers and the small rest, as created while the trainer was made.
 *
 *   npm run bench:train -- [--quick] [--runs 5] [--warmup 1] [--json bench/results/train.local.json]
 *
 * Every number comes from the one adapter named at the top (and in the JSON): compare runs on the same adapter only.
 */
import { parseBenchArgs } from './args';
import { createNodeContext, releaseNodeGPU } from '../src/gpu/node-gpu';
import { TRAIN_BENCH_OPTIONS, TRAIN_BENCH_USAGE, type TrainBenchSettings, trainBenchSettings } from './train-args';
import { BACKWARD_GOAL, CONV_LAYERS, CONV_PASSES, type ConvPassResult, ratioToForward, runConvPass } from './train-kernels';
import { runStepCase, STEP_CASES, type StepResult } from './train-steps';
import { fmt, fmtRange, markdownTable, mib } from './report';
import { writeJson } from './write-json';

const { values } = parseBenchArgs(TRAIN_BENCH_USAGE, TRAIN_BENCH_OPTIONS);
let settings: TrainBenchSettings;
try {
  settings = trainBenchSettings(values);
} catch (e) {
  console.error(`${(e as Error).message}\n\n${TRAIN_BENCH_USAGE.trim()}`);
  process.exit(2);
}

const NOTES = {
  stepTime: 'step time = wall time of trainer.step: batch upload, every dispatch (forward, loss, backward, Adam), the loss read back',
  flops:
    "step FLOPs: 'counted' sums the step plan's node costs (src/gpu/cost.ts); 'estimate' is 3 × the counted FLOPs of the " +
    'forward-only inference graph (BatchNorm folded, as inference runs it) at the same batch',
  kernels:
    'kernel GFLOP/s: 2·N·H·W·Cin·Cout·9 over the convolution dispatches alone (each dispatch timed in a pass of its own ' +
    'between GPU timestamps, Plan.profile; median per dispatch); the weight packing and the bias gradient are listed ' +
    "apart. Without timestamps the whole graph's wall time (upload, all dispatches, readback) is used",
  memory:
    'memory = every GPU buffer the trainer holds, recorded while it was made: the plan activation slots (liveness-shared), ' +
    'the arenas (parameters, gradients, Adam state, BatchNorm running statistics), and the rest (uniforms, readback staging)',
};

// Per-dispatch times without Dawn's rounding of every timestamp interval to tens of microseconds (as bench/profile.ts).
const ctx = await createNodeContext({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
const adapter = ctx.adapterName;
const log = (line = '') => console.log(line);
log(`adapter: ${adapter}`);
log(
  `timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (kernel times are wall times)'}; ${settings.quick ? 'quick' : 'full'} run, ` +
    `${settings.runs} timed after ${settings.warmup} warm-up`,
);

// 1 and 3: whole steps.
const steps: StepResult[] = [];
for (const c of STEP_CASES) {
  const t = performance.now();
  const r = await runStepCase(ctx, c, settings);
  steps.push(r);
  const what = `${c.key} ${r.batchShape.join('×')}`;
  if (r.status === 'ok')
    console.error(`${what}: ${fmt(r.stepMs!.median)} ms/step, ${fmt(r.gflopPerSecond)} GFLOP/s (${fmt((performance.now() - t) / 1000)} s)`);
  else console.error(`${what}: ${r.status}: ${r.reason}`);
}

// 2: the convolution's passes.
const kernels: ConvPassResult[] = [];
for (const layer of CONV_LAYERS) {
  for (const pass of CONV_PASSES) {
    const r = await runConvPass(ctx, layer, pass, settings.kernelBatch, settings.size, settings.runs, settings.warmup);
    kernels.push(r);
    if (r.status === 'ok') console.error(`${layer.name} ${pass}: ${fmt(r.convMs)} ms, ${fmt(r.gflopPerSecond)} GFLOP/s`);
    else console.error(`${layer.name} ${pass}: failed: ${r.reason}`);
  }
}

const batchText = (s: readonly number[]) => s.join('×');
log();
log(`### Training step (Adam, MSE) — adapter: ${adapter}`);
log();
log(
  markdownTable(
    ['network', 'batch N×C×H×W', 'median step ms', 'p10–p90 ms', 'GFLOP/step', 'GFLOP/s', 'FLOPs', 'dispatches', 'create ms'],
    steps.map((r) => {
      const head = [r.description, batchText(r.batchShape)];
      if (r.status === 'not-trainable') return [...head, `not trainable yet: ${r.reason}`];
      if (r.status === 'failed') return [...head, `failed: ${r.reason}`];
      const s = r.stepMs!;
      return [
        ...head,
        fmt(s.median),
        fmtRange(s.p10, s.p90),
        fmt(r.stepFlops! / 1e9),
        fmt(r.gflopPerSecond),
        r.flopsSource === 'counted' ? 'counted' : 'estimate (3× fwd)',
        r.dispatches !== undefined ? String(r.dispatches) : '–',
        fmt(r.createMs),
      ];
    }),
  ),
);

log();
log(`### Convolution backward vs forward (goal ≥ ${BACKWARD_GOAL * 100} % of forward GFLOP/s) — adapter: ${adapter}`);
log();
log(
  markdownTable(
    ['layer', 'batch', 'pass', 'conv ms', 'GFLOP/s', 'of forward', 'goal', 'pack ms', 'bias grad ms', 'timing', 'kernel'],
    kernels.map((r) => {
      const head = [r.layer, `${r.inputShape[0]}×${r.inputShape[1]}²`, r.pass];
      if (r.status !== 'ok') return [...head, `failed: ${r.reason}`];
      const ratio = ratioToForward(kernels, r);
      const goal = ratio === undefined ? '' : ratio >= BACKWARD_GOAL ? 'met' : 'below';
      return [
        ...head,
        fmt(r.convMs),
        fmt(r.gflopPerSecond),
        ratio === undefined ? '' : `${fmt(100 * ratio)} %`,
        r.note ? `${goal} (${r.note})` : goal,
        fmt(r.partMs?.pack),
        fmt(r.partMs?.['bias grad']),
        r.timing === 'wall' ? 'wall (whole graph)' : 'GPU timestamps',
        r.kernels!.join(' + '),
      ];
    }),
  ),
);

log();
log(`### GPU memory a step holds — adapter: ${adapter}`);
log();
log(
  markdownTable(
    ['network', 'batch', 'activations', 'parameters', 'gradients', 'Adam state', 'BN buffers', 'other', 'total'],
    steps
      .filter((r) => r.memory)
      .map((r) => {
        const m = r.memory!;
        return [
          r.description,
          batchText(r.batchShape),
          mib(m.activations),
          mib(m.parameters),
          mib(m.gradients),
          mib(m.optimizerState),
          mib(m.buffers),
          mib(m.other),
          mib(m.total),
        ];
      }),
  ),
);
log();
for (const note of Object.values(NOTES)) log(`- ${note}.`);

const report = {
  benchmark: 'train',
  date: new Date().toISOString(),
  adapterName: adapter,
  device: ctx.describe(),
  timestamps: ctx.hasTimestamps,
  settings,
  notes: { ...NOTES, backwardGoal: BACKWARD_GOAL },
  steps,
  kernels: kernels.map((r) => ({ ...r, ofForward: ratioToForward(kernels, r) ?? null })),
};
if (settings.json) {
  writeJson(settings.json, report);
  log(`\nJSON: ${settings.json}`);
}

ctx.dispose();
releaseNodeGPU();
process.exit(0);
