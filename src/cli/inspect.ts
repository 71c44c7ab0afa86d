/**
 * `webgpu-restore inspect <checkpoint>`: what a weights file holds and which network it is. The summary is
 * printed even when the network is not recognised (the keys are what one needs to see then); that case
 * still ends with the error and exit code 1, so scripts can tell.
 */
import { RestoreError } from '../errors';
import type { Network } from '../models/network';
import { type Recognised, recogniseStateDict } from '../models/registry';
import { parseCommandArgs } from './args';
import { buildNetwork, CHECKSUMS, FORMAT_LABELS, readCheckpointFile, readContents, valueInterval } from './checkpoint-file';
import { UsageError } from './errors';
import { formatShape } from '../format-shape';
import { bytesText, configText, count, dtypesText, summarise } from './summary';
import { usageFor } from './usage';

const OPTIONS = {
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Keys listed without --all. */
const KEYS_SHOWN = 20;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('inspect', argv, OPTIONS);
  if (values.help) {
    console.log(usageFor('inspect'));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('inspect needs exactly one checkpoint file', 'inspect');

  const file = await readCheckpointFile(positionals[0]);
  const contents = readContents(file);
  const sd = contents.stateDict;
  const summary = summarise(sd);

  // Recognition and loading are reported, not thrown, so the summary still prints.
  let recognised: Recognised | undefined;
  let network: Network | undefined;
  let problem: RestoreError | undefined;
  try {
    recognised = recogniseStateDict(sd, file.name);
    network = buildNetwork(sd, recognised, file.name);
  } catch (e) {
    if (!(e instanceof RestoreError)) throw e;
    problem = e;
  }
  network?.release();

  const keys = [...sd].map(([key, t]) => ({ key, shape: t.shape, dtype: t.dtype }));
  if (values.json) {
    const arch = recognised?.architecture;
    const report = {
      file: file.path,
      bytes: file.bytes.length,
      format: contents.format,
      checksum: CHECKSUMS[contents.format].kind,
      architecture: arch?.name ?? null,
      config: recognised?.config ?? null,
      task: arch?.task ?? null,
      valueRange: arch ? valueInterval(arch) : null,
      inChannels: network?.inChannels ?? null,
      outChannels: network?.outChannels ?? null,
      scale: network?.scale ?? null,
      loads: network !== undefined,
      error: problem ? { code: problem.code, message: problem.message } : null,
      tensors: summary.tensors,
      parameters: summary.parameters,
      dtypes: summary.dtypes,
      modules: summary.modules,
      metadata: Object.fromEntries(contents.metadata),
      keys,
    };
    console.log(JSON.stringify(report, null, 2));
  } else {
    const lines = [
      `file: ${file.path} (${bytesText(file.bytes.length)})`,
      `format: ${FORMAT_LABELS[contents.format]}`,
      `checksum: ${CHECKSUMS[contents.format].text}`,
    ];
    if (recognised) {
      const { architecture: a, config } = recognised;
      const [lo, hi] = valueInterval(a);
      lines.push(`architecture: ${a.name} (${a.task}, values in [${lo}, ${hi}])`);
      lines.push(`config: ${configText(config)}`);
      if (network) lines.push(`channels: ${network.inChannels} → ${network.outChannels}, scale ×${network.scale}`);
      else lines.push('loads: no (see the error below)');
    } else {
      lines.push('architecture: not recognised (see the error below)');
    }
    lines.push(`tensors: ${count(summary.tensors)}`, `parameters: ${count(summary.parameters)}`);
    lines.push(`dtypes: ${dtypesText(summary.dtypes)}`);
    lines.push(
      `modules: ${Object.entries(summary.modules)
        .map(([m, n]) => `${m} (${n})`)
        .join(', ')}`,
    );
    for (const [k, v] of contents.metadata) lines.push(`metadata: ${k} = ${v}`);
    const shown = values.all ? keys : keys.slice(0, KEYS_SHOWN);
    lines.push(
      shown.length < keys.length ? `keys (first ${shown.length} of ${keys.length}; --all lists every key):` : `keys (${keys.length}):`,
    );
    const width = Math.max(0, ...shown.map((k) => k.key.length));
    for (const k of shown) lines.push(`  ${k.key.padEnd(width)}  ${formatShape(k.shape).padEnd(16)} ${k.dtype}`);
    console.log(lines.join('\n'));
  }
  if (problem) throw problem;
  return 0;
}
