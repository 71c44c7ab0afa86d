/**
 * Minimal globbing on node:fs, for patterns the shell did not expand (quoted, or on Windows): `*` matches any
 * run of characters and `?` one character, within one path component; there is no `**`, `[...]` or `{a,b}`.
 * Names starting with a dot match only a pattern component that starts with a dot, as in POSIX shells.
 */
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, parse, sep } from 'node:path';

export function hasGlob(path: string): boolean {
  return /[*?]/.test(path);
}

/** A pattern component (no separators) as an anchored RegExp. */
export function componentRegExp(component: string): RegExp {
  let source = '';
  for (const ch of component) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // an unreadable folder matches nothing, like a shell
  }
}

/**
 * The existing paths matching `pattern`, sorted by code unit. Intermediate components match folders; the
 * last matches anything (callers filter). Relative patterns give relative paths.
 */
export function expandGlob(pattern: string): string[] {
  const separators = sep === '\\' ? /[\\/]+/ : /\/+/;
  let roots: string[];
  let rest: string;
  if (isAbsolute(pattern)) {
    const { root } = parse(pattern);
    roots = [root];
    rest = pattern.slice(root.length);
  } else {
    roots = [''];
    rest = pattern;
  }
  const components = rest.split(separators).filter((c) => c.length > 0 && c !== '.');
  let current = roots;
  components.forEach((component, i) => {
    const last = i === components.length - 1;
    const next: string[] = [];
    for (const base of current) {
      if (!hasGlob(component)) {
        const path = base === '' ? component : join(base, component);
        if (last ? exists(path) : isDirectory(path)) next.push(path);
        continue;
      }
      const re = componentRegExp(component);
      const dotOk = component.startsWith('.');
      for (const name of entries(base === '' ? '.' : base).sort()) {
        if (name.startsWith('.') && !dotOk) continue;
        if (!re.test(name)) continue;
        const path = base === '' ? name : join(base, name);
        if (last || isDirectory(path)) next.push(path);
      }
    }
    current = next;
  });
  return current.filter((p) => p !== '').sort();
}
