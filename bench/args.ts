/**
 * Command-line parsing shared by the bench scripts: `--help` / `-h` prints the script's usage and exits 0, and
 * an unknown or malformed option prints the error with the usage and exits 2 (instead of Node's stack trace).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>>;

export function parseBenchArgs<O extends Options>(usage: string, options: O): Parsed<O> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage.trim());
    process.exit(0);
  }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${usage.trim()}`);
    process.exit(2);
  }
}
