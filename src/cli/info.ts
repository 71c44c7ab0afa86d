/** `webgpu-restore info`: the adapter the library runs on, its features and the limits it was given. */
import { getDefaultContext } from '../node';
import { parseCommandArgs } from './args';
import { UsageError } from './errors';
import { usageFor } from './usage';

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('info', argv, OPTIONS);
  if (values.help) {
    console.log(usageFor('info'));
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`info takes no arguments, got '${positionals[0]}'`, 'info');
  const ctx = await getDefaultContext();
  try {
    const { adapter, limits, features } = ctx.describe();
    if (values.json) {
      console.log(JSON.stringify({ name: ctx.adapterName, adapter, timestamps: ctx.hasTimestamps, features, limits }, null, 2));
      return 0;
    }
    const lines = [
      `adapter: ${ctx.adapterName}`,
      `  vendor: ${adapter.vendor || '-'}`,
      `  architecture: ${adapter.architecture || '-'}`,
      `  device: ${adapter.device || '-'}`,
      `  description: ${adapter.description || '-'}`,
      `  software: ${adapter.isSoftware ? 'yes (a CPU implementation: expect slow runs)' : 'no'}`,
      `  timestamp queries: ${ctx.hasTimestamps ? 'yes' : 'no'}`,
      `features (${features.length}):`,
      ...features.map((f) => `  ${f}`),
      'limits (as requested from the adapter):',
    ];
    const width = Math.max(...Object.keys(limits).map((k) => k.length));
    for (const [k, v] of Object.entries(limits)) lines.push(`  ${k.padEnd(width)}  ${v.toLocaleString('en-US')}`);
    console.log(lines.join('\n'));
    return 0;
  } finally {
    ctx.dispose();
  }
}
