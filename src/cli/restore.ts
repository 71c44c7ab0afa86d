/**
 * `webgpu-restore denoise|upscale <inputs…>`: a batch of image files through one model. Files, folders and
 * patterns are expanded first; the model is read and checked before a device is requested; then each file is
 * decoded, run and written on its own, so one bad file is reported and skipped while the others go on (exit
 * code 1 at the end when any failed). Neither inputs nor other existing files are replaced unless --force
 * (outputs.ts), checked before a device is requested where the output's name is known by then; two inputs
 * never write the same output.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { RestoreError } from '../errors';
import type { GPUContext } from '../gpu/context';
import { formatFromFileName, writeImage } from '../io/formats';
import type { AnyRasterImage } from '../io/image';
import type { PercentileRange } from '../io/normalize';
import { RestorationModel } from '../runtime/restoration-model';
import { getDefaultContext } from '../node';
import { readImageFilePages } from '../node-files';
import { integerInRange, parseCommandArgs, percentileRange } from './args';
import { CliError, UsageError } from './errors';
import { writeFileAtomic } from './files';
import { collectInputs } from './inputs';
import { chooseNetwork, type Task } from './model-choice';
import { OutputPlan } from './outputs';
import { type ImageJobOptions, restorePages } from './restore-image';
import { sidecarNormalization } from './train-method';
import { usageFor } from './usage';

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  'out-dir': { type: 'string' },
  model: { type: 'string', short: 'm' },
  weights: { type: 'string', short: 'w' },
  tile: { type: 'string' },
  gray: { type: 'boolean' },
  rgb: { type: 'boolean' },
  'info-bar': { type: 'string' },
  normalize: { type: 'string' },
  force: { type: 'boolean' },
  kernels: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Accepted --tile sizes: below 16 pixels the halos would dominate; above 16384 no device binds a tile. */
const TILE_MIN = 16;
const TILE_MAX = 16384;

function describeImage(img: AnyRasterImage): string {
  const kind = img.channels === 1 ? 'gray' : 'RGB';
  const depth = img.bitDepth === 32 ? '32-bit float' : `${img.bitDepth}-bit`;
  return `${img.width}×${img.height} ${kind}${img.alpha ? '+alpha' : ''} ${depth}`;
}

/** `error [CODE]: message`, naming the file when the message does not already. */
function failureText(path: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const named = message.includes(path) ? message : `${path}: ${message}`;
  return e instanceof RestoreError ? `error [${e.code}]: ${named}` : `error: ${named}`;
}

/** The normalisation in the training sidecar beside `weights` (`OUT.pth.json`), if there is one that has it. */
function storedNormalization(weights: string): PercentileRange | undefined {
  const path = `${weights}.json`;
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`${path} beside the weights is not JSON (${(e as Error).message}); move it away or pass --normalize`);
  }
  return sidecarNormalization(json, path);
}

export async function restoreCommand(task: Task, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(task, argv, OPTIONS);
  if (values.help) {
    console.log(usageFor(task));
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`${task} needs at least one input image`, task);
  const output = values.output;
  const outDir = values['out-dir'];
  if (output !== undefined && outDir !== undefined) throw new UsageError('give either -o or --out-dir, not both', task);
  if (output !== undefined && formatFromFileName(output) === undefined) {
    throw new UsageError(`-o ${output}: the output must be a PNG or TIFF file (.png, .tif, .tiff)`, task);
  }
  if (values.gray && values.rgb) throw new UsageError('give either --gray or --rgb, not both', task);
  const job: ImageJobOptions = { gray: values.gray, rgb: values.rgb, run: {} };
  const infoBar = values['info-bar'];
  if (infoBar !== undefined) {
    if (task !== 'denoise') throw new CliError('--info-bar works with denoise only (an upscaled image has no bar of the same size)');
    job.infoBar = infoBar === 'auto' ? 'auto' : integerInRange(task, '--info-bar', infoBar, 1, 65535);
  }
  if (values.tile !== undefined) job.run.tileSize = integerInRange(task, '--tile', values.tile, TILE_MIN, TILE_MAX);
  if (values.normalize !== undefined) job.run.normalize = percentileRange(task, '--normalize', values.normalize);
  const log = values.quiet ? () => undefined : (s: string) => console.log(s);
  if (!values.quiet) job.run.onProgress = tileProgress();

  // A model trained on normalised images (train --normalize) says so in its sidecar: inputs get the same.
  if (values.weights !== undefined && job.run.normalize === undefined) {
    const stored = storedNormalization(values.weights);
    if (stored) {
      job.run.normalize = stored;
      if (!values.quiet)
        console.log(`normalising to percentiles ${stored.low}–${stored.high}, as ${values.weights}.json says the model was trained`);
    }
  }
  // The model first: a wrong checkpoint or task fails before any device or file work.
  const chosen = await chooseNetwork(task, { model: values.model, weights: values.weights });
  const { network } = chosen;
  const suffix = task === 'denoise' ? '.denoised' : `.x${network.scale}`;
  const earlierOutput = task === 'denoise' ? /\.denoised\.(png|tiff?)$/i : /\.x\d+\.(png|tiff?)$/i;

  const { files, problems, skipped } = collectInputs(positionals, (name) => earlierOutput.test(name));
  if (output !== undefined && files.length + problems.length > 1) {
    network.release();
    throw new UsageError(`-o names one output, but there are ${files.length + problems.length} inputs; use --out-dir`, task);
  }
  for (const p of problems) console.error(`error: ${p.input}: ${p.message}`);
  if (skipped.length > 0) log(`skipped ${skipped.length} earlier output(s) (*${suffix}.*) found in folders or patterns`);
  const total = files.length + problems.length;
  const failed: string[] = problems.map((p) => p.input);
  const fail = (path: string, e: unknown) => {
    failed.push(path);
    console.error(failureText(path, e));
  };

  // Outputs that may not be written are refused now, before any device work; their inputs count as failed.
  const outputs = new OutputPlan({ output, outDir, suffix, force: values.force ?? false }, files);
  const todo = files.filter((path) => {
    const target = outputs.targetFor(path);
    try {
      if (target !== undefined) outputs.check(target, path);
      return true;
    } catch (e) {
      fail(path, e);
      return false;
    }
  });
  if (todo.length === 0) {
    network.release();
    if (files.length > 0) console.error(`0 of ${total} input(s) done; failed: ${failed.join(', ')}`);
    return 1;
  }
  if (outDir !== undefined) {
    try {
      mkdirSync(outDir, { recursive: true });
    } catch (e) {
      network.release();
      throw new CliError(`cannot create --out-dir ${outDir}: ${(e as Error).message}`);
    }
  }

  let ctx: GPUContext = await getDefaultContext();
  let model = new RestorationModel(ctx, network, chosen.name);
  log(`adapter: ${ctx.adapterName}`);
  const info = model.info;
  log(
    `model: ${info.name} (${info.architecture}, ${info.inChannels}→${info.outChannels} channels` +
      `${info.scale !== 1 ? `, ×${info.scale}` : ''})${job.run.tileSize ? `, tile ${job.run.tileSize}` : ''}` +
      `${job.run.normalize ? `, normalised to percentiles ${job.run.normalize.low}–${job.run.normalize.high}` : ''}`,
  );

  let done = 0;
  for (const [i, path] of todo.entries()) {
    const progress = `[${i + 1}/${todo.length}]`;
    try {
      const t0 = performance.now();
      const file = await readImageFilePages(path);
      const first = file.pages[0].image;
      const pages = file.pages.length > 1 ? `, ${file.pages.length} pages` : '';
      log(`${progress} input: ${path} ${describeImage(first)}${pages}`);

      const target = outputs.targetFor(path, file.format)!;
      // Again: a name that needed the file's format, an output of this run, or a file that appeared meanwhile.
      outputs.check(target, path);

      const restored = await restorePages(model, chosen.architecture.valueRange, file, job);
      const format = formatFromFileName(target) ?? file.format;
      const compressed = file.pages.some((p) => p.metadata && p.metadata.compression !== 1);
      const bytes = writeImage(restored, { format, compression: compressed ? 'deflate' : 'none' });
      await writeFileAtomic(target, bytes);
      outputs.wrote(target, path);
      done++;
      log(`${progress} wrote ${target} ${describeImage(restored[0].image)} in ${(performance.now() - t0).toFixed(0)} ms`);
    } catch (e) {
      fail(path, e);
      if (ctx.isLost) {
        // The next file gets a fresh device; the network re-uploads its weights there on first use.
        model.dispose();
        ctx = await getDefaultContext();
        model = new RestorationModel(ctx, network, chosen.name);
      }
    }
  }

  if (values.kernels) for (const label of ctx.pipelines.labels()) console.log(`kernel: ${label}`);
  if (failed.length > 0) console.error(`${done} of ${total} input(s) done; failed: ${failed.join(', ')}`);
  else if (total > 1) log(`${done} of ${total} files done`);
  model.dispose();
  ctx.dispose();
  return failed.length > 0 ? 1 : 0;
}

/**
 * Progress of a tiled run on stderr: a bar redrawn in place on a terminal, a line per quarter otherwise (logs).
 * Untiled runs (one step) print nothing.
 */
function tileProgress(): (p: { done: number; total: number }) => void {
  const tty = process.stderr.isTTY === true;
  let lastQuarter = 0;
  return ({ done, total }) => {
    if (total <= 1) return;
    if (tty) {
      const width = 30;
      const filled = Math.round((width * done) / total);
      process.stderr.write(`\r  tiles [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
      return;
    }
    const quarter = Math.floor((4 * done) / total);
    if (quarter > lastQuarter || done === total) {
      lastQuarter = quarter;
      process.stderr.write(`  tiles ${done}/${total}\n`);
    }
    if (done === total) lastQuarter = 0;
  };
}
