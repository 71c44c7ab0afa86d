/**
 * Shared output helpers for the benchmarks: Markdown tables and number formatting. Plain formatting, no GPU code
 * and no Node modules (the browser suite uses it too); the JSON file is written by write-json.ts.
 */

/** A Markdown table; cells are escaped for `|`, rows shorter than the header are padded with empty cells. */
export function markdownTable(headers: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const line = (cells: string[]) => `| ${headers.map((_, i) => esc(cells[i] ?? '')).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/**
 * A number with about three significant digits (fixed notation, no exponent), '–' for undefined or
 * non-finite values: 0.00123 → '0.00123', 4.567 → '4.57', 123.4 → '123', 12345 → '12345'.
 */
export function fmt(x: number | undefined | null, significant = 3): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const digits = Math.max(0, significant - 1 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(digits, 6));
}

/** A `p10–p90` range cell. */
export function fmtRange(lo: number | undefined, hi: number | undefined, significant = 3): string {
  if (lo === undefined || hi === undefined) return '–';
  return `${fmt(lo, significant)}–${fmt(hi, significant)}`;
}

export function mib(bytes: number): string {
  return `${fmt(bytes / 2 ** 20)} MiB`;
}

/** Parses `WxH` (image convention: width × height), e.g. `1024x768`, into { width, height }. */
export function parseSize(text: string): { width: number; height: number } {
  const m = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(text);
  if (!m) {
    const n = Number(text);
    if (Number.isInteger(n) && n > 0) return { width: n, height: n };
    throw new Error(`bad size '${text}' (expected WxH, e.g. 1024x768, or one number for a square)`);
  }
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width < 1 || height < 1) throw new Error(`bad size '${text}'`);
  return { width, height };
}
