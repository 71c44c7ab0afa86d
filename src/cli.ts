#!/usr/bin/env node
/**
 * webgpu-restore command line.
 *   webgpu-restore denoise in.png -o out.png [--weights model.pth] [--gray] [--device-info]
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { RestoreError } from './errors';
import { toGray } from './io/image';
import { getDefaultContext, loadBuiltinModel, loadModel, readImageFile, releaseNodeGPU, writeImageFile } from './node';
import { CheckpointError } from './errors';

const USAGE = `usage:
  webgpu-restore denoise <input.png> -o <output.png> [options]

options:
  -o, --output <file>    output PNG (8- or 16-bit, same depth as the input)
  -w, --weights <file>   PyTorch checkpoint (.pth) to use instead of the built-in DnCNN σ=25
      --gray             convert a colour image to grayscale (BT.601) for a grayscale model
      --kernels          list the kernel variants chosen for this adapter (shader labels)
  -q, --quiet            print nothing but errors
  -h, --help             this text`;

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  weights: { type: 'string', short: 'w' },
  gray: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  kernels: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    // An unknown option or a missing option value is a usage error, not a crash: no stack trace.
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, input, ...rest] = positionals;
  if (command !== 'denoise') {
    console.error(`unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  if (!input || rest.length > 0 || !values.output) {
    console.error(`denoise needs one input file and -o <output.png>\n${USAGE}`);
    return 2;
  }
  const log = values.quiet ? () => undefined : (s: string) => console.log(s);

  let image = await readImageFile(input);
  if (values.gray && image.channels === 3) image = toGray(image);
  const ctx = await getDefaultContext();
  log(`adapter: ${ctx.adapterName}`);
  let model;
  if (values.weights) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(values.weights));
    } catch (cause) {
      throw new CheckpointError('CHECKPOINT_FORMAT', `cannot read ${values.weights}: ${(cause as Error).message}`, { cause });
    }
    model = await loadModel(bytes, { context: ctx, name: basename(values.weights) });
  } else {
    model = await loadBuiltinModel('dncnn_25', { context: ctx });
  }
  const info = model.info;
  log(`model: ${info.name} (${info.architecture}, ${info.inChannels}→${info.outChannels} channels)`);
  log(`input: ${input} ${image.width}×${image.height}, ${image.channels} channel(s), ${image.bitDepth}-bit`);
  const t0 = performance.now();
  const out = await model.run(image);
  log(`denoised in ${(performance.now() - t0).toFixed(0)} ms`);
  await writeImageFile(values.output, out);
  log(`wrote ${values.output}`);
  if (values.kernels) for (const label of ctx.pipelines.labels()) console.log(`kernel: ${label}`);
  model.dispose();
  ctx.dispose();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    releaseNodeGPU();
    process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof RestoreError) console.error(`error [${error.code}]: ${error.message}`);
    else console.error(error);
    process.exit(1);
  },
);
