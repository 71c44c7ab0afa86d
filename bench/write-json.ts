import { writeFileSync } from 'node:fs';

/** Writes `value` as indented JSON (non-finite numbers become null, as JSON.stringify does). */
export function writeJson(path: string, value: unknown): void {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}
