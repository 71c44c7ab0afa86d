/**
 * Training on WebGPU (issue 17): what a training step costs on this adapter.
 *
 * 1. Whole Adam steps (MSE) of every network that trains: DnCNN-17 (64 features, BR, batch 16 × 64²), a U-Net
 *    and the ResNet34-SCSE U-Net (batch 4 × 64²), MSRResNet, SRResNet, RRDBNet, SCUNet and the SINSR generators
 *    at their papers' training batches (train-steps.ts): median wall time of `trainer.step` after warm-up, and
 *    GFLOP/s over the step plan's counted FLOPs. `--quick` runs smaller batches and leaves the heaviest out.
 *    Networks the trainer refuses are rows saying "not trainable yet" with its message. Self-supervised steps
 *    (issue 18): N2V2 on its U-Net, the DnCNN fine-tuned by N2V2 and by Neighbor2Neighbor.
 * 2. The backward kernels against the forward one, per dispatch (GPU timestamps): convolutions (3×3 at 64² and
 *    128², the 1→64 first layer, a strided 4×4, a 1×1) with input-gradient and weight-gradient GFLOP/s as a share
 *    of the forward's (goal ≥ 70 %), the on-GPU weight packing and the bias gradient apart; SCUNet's window
 *    attention backward against its forward.
 * 3. The GPU memory a step holds: the plan's activation slots, the parameter, gradient and Adam-state arenas, the
 *    BatchNorm buffers, the state's copies from before the step, and the small rest, as created while the trainer
 *    was made and ran its first step.
 *
 *   npm run bench:train -- [--quick] [--runs 5] [--warmup 1] [--only dncnn,kernels] [--json bench/results/train.local.json]
 *
 * Every number comes from the one adapter named at the top (and in the JSON): compare runs on the same adapter only.
 */
import { parseBenchArgs } from './args';
import { createNodeContext, releaseNodeGPU } from '../src/gpu/node-gpu';
import { TRAIN_BENCH_OPTIONS, TRAIN_BENCH_PARTS, TRAIN_BENCH_USAGE, type TrainBenchSettings, trainBenchSettings } from './train-args';
import {
  BACKWARD_GOAL,
  KERNEL_CASES,
  kernelPasses,
  type KernelPassResult,
  ratioToForward,
  runKernelPass,
  timeToForward,
} from './train-kernels';
import { runStepCase, STEP_CASES, type StepResult } from './train-steps';
import { fmt, fmtRange, markdownTable, mib } from './report';
import { writeJson } from './write-json';

const { values } = parseBenchArgs(TRAIN_BENCH_USAGE, TRAIN_BENCH_OPTIONS);
let settings: TrainBenchSettings;
try {
  settings = trainBenchSettings(values);
  const known = [...TRAIN_BENCH_PARTS, ...STEP_CASES.map((c) => c.key)];
  const unknown = settings.only?.find((part) => !known.includes(part));
  if (unknown !== undefined) throw new Error(`--only: '${unknown}' is none of ${known.join(', ')}`);
} catch (e) {
  console.error(`${(e as Error).message}\n\n${TRAIN_BENCH_USAGE.trim()}`);
  process.exit(2);
}
const only = settings.only;
const selected = (part: string, group: string) => !only || only.includes(part) || only.includes(group);

const NOTES = {
  stepTime: 'step time = wall time of trainer.step: batch upload, every dispatch (forward, loss, backward, Adam), the loss read back',
  flops: "step FLOPs: the step plan's node costs summed (src/gpu/cost.ts): forward, loss, backward and the Adam update",
  batch: 'batch N×C×H×W is the network input (the low-resolution side for ×4 super-resolution; the target is 4× larger)',
  kernels:
    'kernel GFLOP/s: for a convolution 2·N·Ho·Wo·Cin·Cout·kH·kW, the same in all three passes, over the convolution ' +
    "dispatches alone; for attention each pass's own counted FLOPs (the backward does more than the forward), so " +
    "'time × fwd' is given too. Each dispatch is timed in a pass of its own between GPU timestamps (Plan.profile; median " +
    "per dispatch); the weight packing and the bias gradient are listed apart. Without timestamps the whole graph's " +
    'wall time (upload, all dispatches, readback) is used',
  memory:
    'memory = every GPU buffer the trainer holds, recorded while it was made and ran its first step: the plan ' +
    'activation slots (liveness-shared; Plan.activationBytes), the arenas (parameters, gradients, Adam state, ' +
    'BatchNorm running statistics), the copies of that state taken before each step (restored on a non-finite loss), ' +
    'and the rest (uniforms, readback staging). Later steps allocate nothing, so the total is the peak of a step',
};

// Per-dispatch times without Dawn's rounding of every timestamp interval to tens of microseconds (as bench/profile.ts).
const ctx = await createNodeContext({ dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
const adapter = ctx.adapterName;
const log = (line = '') => console.log(line);
const started = performance.now();
log(`adapter: ${adapter}`);
log(
  `timestamps: ${ctx.hasTimestamps ? 'yes' : 'no (kernel times are wall times)'}; ${settings.quick ? 'quick' : 'full'} run, ` +
    `${settings.runs} timed after ${settings.warmup} warm-up`,
);

// 1 and 3: whole steps.
const steps: StepResult[] = [];
for (const c of STEP_CASES.filter((c) => selected(c.key, 'steps'))) {
  const t = performance.now();
  const r = await runStepCase(ctx, c, settings);
  steps.push(r);
  const what = `${c.key} ${r.batchShape.join('×')}`;
  if (r.status === 'ok')
    console.error(`${what}: ${fmt(r.stepMs!.median)} ms/step, ${fmt(r.gflopPerSecond)} GFLOP/s (${fmt((performance.now() - t) / 1000)} s)`);
  else console.error(`${what}: ${r.status}: ${r.reason}`);
}

// 2: the backward kernels against their forward.
const kernels: KernelPassResult[] = [];
for (const c of KERNEL_CASES.filter(() => selected('kernels', 'kernels'))) {
  for (const pass of kernelPasses(c)) {
    const r = await runKernelPass(ctx, c, pass, settings.kernelBatch, settings.runs, settings.warmup);
    kernels.push(r);
    if (r.status === 'ok') console.error(`${c.name} ${pass}: ${fmt(r.opMs)} ms, ${fmt(r.gflopPerSecond)} GFLOP/s`);
    else console.error(`${c.name} ${pass}: failed: ${r.reason}`);
  }
}

const batchText = (s: readonly number[]) => s.join('×');
const percent = (x: number | undefined) => (x === undefined ? '' : `${fmt(100 * x)} %`);

if (steps.length > 0) {
  log();
  log(`### Training step (Adam, MSE) — adapter: ${adapter}`);
  log();
  log(
    markdownTable(
      [
        'network',
        'batch N×C×H×W',
        'parameters',
        'median step ms',
        'p10–p90 ms',
        'GFLOP/step',
        'GFLOP/s',
        'dispatches',
        'create ms',
        'peak memory',
      ],
      steps.map((r) => {
        const head = [r.description, batchText(r.batchShape)];
        if (r.status === 'not-trainable') return [...head, '', `not trainable yet: ${r.reason}`];
        if (r.status === 'skipped') return [...head, '', `skipped: ${r.reason}`];
        if (r.status === 'failed') return [...head, fmt(r.parameters && r.parameters / 1e6) + ' M', `failed: ${r.reason}`];
        const s = r.stepMs!;
        return [
          ...head,
          `${fmt(r.parameters! / 1e6)} M`,
          fmt(s.median),
          fmtRange(s.p10, s.p90),
          fmt(r.stepFlops! / 1e9),
          fmt(r.gflopPerSecond),
          String(r.dispatches),
          fmt(r.createMs),
          mib(r.memory!.total),
        ];
      }),
    ),
  );
}

if (kernels.length > 0) {
  log();
  log(`### Backward kernels vs forward (goal ≥ ${BACKWARD_GOAL * 100} % of forward GFLOP/s) — adapter: ${adapter}`);
  log();
  log(
    markdownTable(
      [
        'operation',
        'input N×H×W×C',
        'pass',
        'ms',
        'GFLOP',
        'GFLOP/s',
        'of forward',
        'time × fwd',
        'goal',
        'pack ms',
        'bias grad ms',
        'timing',
        'kernel',
      ],
      kernels.map((r) => {
        const head = [r.case, batchText(r.inputShape), r.pass];
        if (r.status !== 'ok') return [...head, `failed: ${r.reason}`];
        const ratio = ratioToForward(kernels, r);
        const time = timeToForward(kernels, r);
        // The goal is about equal work; the attention backward does more than its forward.
        const goal = ratio === undefined || r.op !== 'conv' ? '' : ratio >= BACKWARD_GOAL ? 'met' : 'below';
        return [
          ...head,
          fmt(r.opMs),
          fmt(r.flops / 1e9),
          fmt(r.gflopPerSecond),
          percent(ratio),
          time === undefined ? '' : `${fmt(time)}×`,
          [goal, r.note, r.path && `via ${r.path}`].filter(Boolean).join('; '),
          fmt(r.partMs?.pack),
          fmt(r.partMs?.['bias grad']),
          r.timing === 'wall' ? 'wall (whole graph)' : 'GPU timestamps',
          r.kernels!.join(' + '),
        ];
      }),
    ),
  );
}

const withMemory = steps.filter((r) => r.memory);
if (withMemory.length > 0) {
  log();
  log(`### GPU memory a step holds — adapter: ${adapter}`);
  log();
  log(
    markdownTable(
      [
        'network',
        'batch',
        'activations',
        '(plan says)',
        'parameters',
        'gradients',
        'Adam state',
        'BN buffers',
        'pre-step copies',
        'other',
        'peak total',
      ],
      withMemory.map((r) => {
        const m = r.memory!;
        return [
          r.description,
          batchText(r.batchShape),
          mib(m.activations),
          mib(r.planActivationBytes ?? Number.NaN),
          mib(m.parameters),
          mib(m.gradients),
          mib(m.optimizerState),
          mib(m.buffers),
          mib(m.backups),
          mib(m.other),
          mib(m.total),
        ];
      }),
    ),
  );
}
log();
for (const note of Object.values(NOTES)) log(`- ${note}.`);
const totalSeconds = (performance.now() - started) / 1000;
log(`\nwhole run: ${fmt(totalSeconds)} s`);

const report = {
  benchmark: 'train',
  date: new Date().toISOString(),
  adapterName: adapter,
  device: ctx.describe(),
  timestamps: ctx.hasTimestamps,
  settings,
  totalSeconds,
  notes: { ...NOTES, backwardGoal: BACKWARD_GOAL },
  steps,
  kernels: kernels.map((r) => ({ ...r, ofForward: ratioToForward(kernels, r) ?? null, timeToForward: timeToForward(kernels, r) ?? null })),
};
if (settings.json) {
  writeJson(settings.json, report);
  log(`\nJSON: ${settings.json}`);
}

ctx.dispose();
releaseNodeGPU();
process.exit(0);
