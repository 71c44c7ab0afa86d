#!/usr/bin/env node
/**
 * webgpu-restore command line. Each command lives in src/cli/; this file dispatches and turns failures into
 * exit codes: 0 success, 1 a failure of the work (RestoreError as `error [CODE]: message`), 2 a usage error
 * (unknown command or option, bad option value) with the usage text. No stack traces for expected failures.
 *
 *   webgpu-restore denoise|upscale <inputs…> [-o out | --out-dir dir] [--weights file | --model name] …
 *   webgpu-restore inspect <checkpoint> · convert <checkpoint> -o out.safetensors · compare a b · info
 *   webgpu-restore train (--arch dncnn | -w init.pth) (--clean dir --noise … | --pairs noisy,clean) -o out.pth …
 */
import { readFileSync } from 'node:fs';
import { compareCommand } from './cli/compare';
import { convertCommand } from './cli/convert';
import { CliError, UsageError } from './cli/errors';
import { infoCommand } from './cli/info';
import { inspectCommand } from './cli/inspect';
import { restoreCommand } from './cli/restore';
import { trainCommand } from './cli/train';
import { usageFor } from './cli/usage';
import { RestoreError } from './errors';
import { releaseNodeGPU } from './node';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  denoise: (argv) => restoreCommand('denoise', argv),
  upscale: (argv) => restoreCommand('upscale', argv),
  inspect: inspectCommand,
  convert: convertCommand,
  compare: compareCommand,
  info: infoCommand,
  train: trainCommand,
};

/** The package version, from package.json one folder above this module (src/ or dist/). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    console.error(usageFor());
    return 2;
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    console.log(usageFor(topic));
    return 0;
  }
  if (first === '-v' || first === '--version') {
    console.log(version());
    return 0;
  }
  const command = COMMANDS[first];
  if (!command) {
    throw new UsageError(first.startsWith('-') ? `unknown option '${first}' (options follow the command)` : `unknown command '${first}'`);
  }
  return command(rest);
}

function report(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`${error.message}\n\n${usageFor(error.command)}`);
    return 2;
  }
  if (error instanceof RestoreError) console.error(`error [${error.code}]: ${error.message}`);
  else if (error instanceof CliError) console.error(`error: ${error.message}`);
  else console.error(error); // a bug: keep the stack
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    releaseNodeGPU();
    process.exit(code);
  },
  (error: unknown) => {
    const code = report(error);
    releaseNodeGPU();
    process.exit(code);
  },
);
