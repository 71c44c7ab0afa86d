/**
 * ESRGAN RRDBNet checkpoints come in three state_dict layouts for the same numbers (networks.md §5.2). Our model
 * (src/models/rrdbnet.ts) carries BasicSR's names; the other two are renamed onto them before loading.
 *
 * | BasicSR (canonical)           | xinntao/ESRGAN RRDBNet_arch.py   | 2018 layout (architecture.py, flat Sequential) |
 * |-------------------------------|----------------------------------|------------------------------------------------|
 * | conv_first                    | conv_first                       | model.0                                        |
 * | body.<i>.rdb<k>.conv<j>       | RRDB_trunk.<i>.RDB<k>.conv<j>    | model.1.sub.<i>.RDB<k>.conv<j>.0               |
 * | conv_body                     | trunk_conv                       | model.1.sub.<num_block>                        |
 * | conv_up1, conv_up2            | upconv1, upconv2                 | model.3, model.6                               |
 * | conv_hr, conv_last            | HRconv, conv_last                | model.8, model.10                              |
 * each with `.weight` and `.bias`. BasicSR files wrap the dict as {'params': …} and/or {'params_ema': …}; readPth
 * already unwraps that (EMA weights first).
 */
import type { StateDict } from '../weights/state-dict';

export type RRDBNetKeyScheme = 'basicsr' | 'xinntao' | 'old';

/** The layout whose marker key is present, or null when none is (not an RRDBNet). */
export function detectRRDBNetKeyScheme(keys: { has(key: string): boolean }): RRDBNetKeyScheme | null {
  if (keys.has('body.0.rdb1.conv1.weight')) return 'basicsr';
  if (keys.has('RRDB_trunk.0.RDB1.conv1.weight')) return 'xinntao';
  if (keys.has('model.1.sub.0.RDB1.conv1.0.weight')) return 'old';
  return null;
}

const XINNTAO_FIXED: Record<string, string> = {
  conv_first: 'conv_first',
  trunk_conv: 'conv_body',
  upconv1: 'conv_up1',
  upconv2: 'conv_up2',
  HRconv: 'conv_hr',
  conv_last: 'conv_last',
};

const OLD_FIXED: Record<string, string> = {
  'model.0': 'conv_first',
  'model.3': 'conv_up1',
  'model.6': 'conv_up2',
  'model.8': 'conv_hr',
  'model.10': 'conv_last',
};

/** Highest `model.1.sub.<i>` index that holds dense blocks, plus one: the old layout's trunk conv sits there. */
function oldBlockCount(keys: Iterable<string>): number {
  let n = 0;
  for (const k of keys) {
    const m = /^model\.1\.sub\.(\d+)\.RDB\d\./.exec(k);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  return n;
}

/**
 * The BasicSR name of one key of a `scheme` checkpoint; keys that fit no rule come back unchanged, so that the
 * strict load reports them as unexpected.
 */
export function toBasicSRKey(key: string, scheme: RRDBNetKeyScheme, numBlock: number): string {
  if (scheme === 'basicsr') return key;
  const dot = key.lastIndexOf('.');
  const head = key.slice(0, dot);
  const tail = key.slice(dot);
  if (scheme === 'xinntao') {
    const m = /^RRDB_trunk\.(\d+)\.RDB([123])\.(conv[1-5])$/.exec(head);
    if (m) return `body.${m[1]}.rdb${m[2]}.${m[3]}${tail}`;
    return head in XINNTAO_FIXED ? XINNTAO_FIXED[head] + tail : key;
  }
  const m = /^model\.1\.sub\.(\d+)\.RDB([123])\.(conv[1-5])\.0$/.exec(head);
  if (m) return `body.${m[1]}.rdb${m[2]}.${m[3]}${tail}`;
  if (head === `model.1.sub.${numBlock}`) return `conv_body${tail}`;
  return head in OLD_FIXED ? OLD_FIXED[head] + tail : key;
}

/**
 * Renames every key of an RRDBNet checkpoint onto BasicSR's names (the tensors are shared, not copied). A
 * StateDict gives a StateDict; recognisers pass the read-only keys and shapes (KeyShapes).
 */
export function canonicaliseRRDBNetKeys<T>(sd: Map<string, T>, scheme: RRDBNetKeyScheme): Map<string, T>;
export function canonicaliseRRDBNetKeys<T>(sd: ReadonlyMap<string, T>, scheme: RRDBNetKeyScheme): ReadonlyMap<string, T>;
export function canonicaliseRRDBNetKeys<T>(sd: ReadonlyMap<string, T>, scheme: RRDBNetKeyScheme): ReadonlyMap<string, T> {
  if (scheme === 'basicsr') return sd;
  const numBlock = scheme === 'old' ? oldBlockCount(sd.keys()) : 0;
  const out = new Map<string, T>();
  for (const [k, v] of sd) {
    const name = toBasicSRKey(k, scheme, numBlock);
    // Two source keys landing on one name would silently drop a tensor; keep the original so the load complains.
    out.set(out.has(name) ? k : name, v);
  }
  return out;
}

/** A StateDict in any of the three layouts → BasicSR names (unchanged when no layout is recognised). */
export function canonicaliseRRDBNetStateDict(sd: StateDict): StateDict {
  const scheme = detectRRDBNetKeyScheme(sd);
  return scheme ? canonicaliseRRDBNetKeys(sd, scheme) : sd;
}
