/**
 * `webgpu-restore convert <checkpoint> -o <out.safetensors>`: any supported checkpoint to safetensors, after
 * recognising the network and checking that the weights load (so a converted file is always usable). The
 * architecture and its configuration go into `__metadata__`; a JSON manifest beside the file records what a
 * user or a model registry needs without reading the weights, with sha256 sums of both files.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { InvalidInputError } from '../errors';
import { recogniseStateDict } from '../models/registry';
import { readCheckpointContents } from '../weights/checkpoint';
import { writeSafetensors } from '../weights/safetensors';
import type { StateDict } from '../weights/state-dict';
import { formatShape } from '../weights/tensor';
import { oneOf, parseCommandArgs } from './args';
import { FORMAT_LABELS, identifyNetwork, readCheckpointFile, readContents, valueInterval } from './checkpoint-file';
import { UsageError } from './errors';
import { checkWritable, writeFileAtomic } from './files';
import { bytesText, configText, count, summarise } from './summary';
import { usageFor } from './usage';

const OPTIONS = {
  output: { type: 'string', short: 'o' },
  dtype: { type: 'string' },
  force: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const DTYPES = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' } as const;
type DTypeOption = keyof typeof DTYPES;

/** Version of the metadata and manifest layout written here; bump when fields change meaning. */
export const FORMAT_VERSION = 1;

/** Largest finite float16 value. */
const F16_MAX = 65504;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** float16 would turn these into ±Infinity (which loading then refuses): say so before writing anything. */
function checkFitsFloat16(sd: StateDict): void {
  for (const [key, t] of sd) {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) continue;
    for (let i = 0; i < t.data.length; i++) {
      if (Math.abs(t.data[i]) > F16_MAX) {
        throw new InvalidInputError(
          `'${key}' (${formatShape(t.shape)}) holds ${t.data[i]} at flat index ${i}, beyond float16's range (±${F16_MAX}); ` +
            'convert with --dtype f32 or bf16',
        );
      }
    }
  }
}

export async function convertCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('convert', argv, OPTIONS);
  if (values.help) {
    console.log(usageFor('convert'));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('convert needs exactly one checkpoint file', 'convert');
  const output = values.output;
  if (!output) throw new UsageError('convert needs -o <output.safetensors>', 'convert');
  if (!/\.safetensors$/i.test(output)) {
    throw new UsageError(`the output must be a .safetensors file, got '${output}'`, 'convert');
  }
  const dtype = oneOf<DTypeOption>('convert', '--dtype', values.dtype ?? 'f32', ['f32', 'f16', 'bf16']);
  const input = positionals[0];
  const manifestPath = output.replace(/\.safetensors$/i, '.json');
  const force = values.force ?? false;
  // Before any work: the input is never replaced, existing outputs only with --force.
  checkWritable(output, input, force);
  checkWritable(manifestPath, input, force);
  const log = values.quiet ? () => undefined : (s: string) => console.log(s);

  const file = await readCheckpointFile(input);
  const contents = readContents(file);
  const sd = contents.stateDict;
  const { architecture, config, network } = identifyNetwork(sd, file.name);
  network.release();
  if (dtype === 'f16') checkFitsFloat16(sd);

  const configJson = JSON.stringify(config);
  const metadata = {
    format: 'pt', // tensors in PyTorch's layout and names, as Hugging Face tools expect
    architecture: architecture.name,
    config: configJson,
    format_version: String(FORMAT_VERSION),
    producer: 'webgpu-restore',
  };
  const bytes = writeSafetensors(sd, { floatDType: DTYPES[dtype], metadata });

  // Read back what we are about to write: it must be recognised as the same network with the same config.
  const again = recogniseStateDict(readCheckpointContents(bytes, { name: basename(output) }).stateDict, basename(output));
  if (again.architecture.name !== architecture.name || JSON.stringify(again.config) !== configJson) {
    throw new InvalidInputError(
      `the converted file reads back as ${again.architecture.name} ${JSON.stringify(again.config)}, ` +
        `not ${architecture.name} ${configJson}; nothing was written`,
    );
  }

  const summary = summarise(sd);
  const manifest = {
    formatVersion: FORMAT_VERSION,
    architecture: architecture.name,
    config,
    task: architecture.task,
    inChannels: network.inChannels,
    outChannels: network.outChannels,
    scale: network.scale,
    valueRange: valueInterval(architecture),
    weights: {
      file: basename(output),
      format: 'safetensors',
      dtype: DTYPES[dtype],
      bytes: bytes.length,
      sha256: sha256(bytes),
      tensors: summary.tensors,
      parameters: summary.parameters,
    },
    source: {
      file: file.name,
      format: contents.format,
      bytes: file.bytes.length,
      sha256: sha256(file.bytes),
    },
  };
  await writeFileAtomic(output, bytes);
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

  log(`read ${input}: ${FORMAT_LABELS[contents.format]}, ${count(summary.tensors)} tensors, ${count(summary.parameters)} parameters`);
  log(`network: ${architecture.name} ${configText(config)}`);
  log(`wrote ${output} (${DTYPES[dtype]}, ${bytesText(bytes.length)})`);
  log(`wrote ${manifestPath}`);
  return 0;
}
