import { readFileSync } from 'node:fs';

/** Repo-relative and shared/-relative fixture access for the Node test suite. */
export const REPO = new URL('../../', import.meta.url);
export const SHARED = new URL('../shared/', REPO);

export function readBytes(url: URL): Uint8Array {
  return new Uint8Array(readFileSync(url));
}

export function readF32(url: URL): Float32Array {
  const b = readBytes(url);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export interface DnCNNFixture {
  name: string;
  config: { inChannels: number; outChannels: number; nc: number; nb: number; actMode: 'R' | 'BR' };
  inputShape: [number, number, number, number];
  weights: Uint8Array;
  input: Float32Array;
  output: Float32Array;
}

export function loadDnCNNFixture(name: string): DnCNNFixture {
  const dir = new URL('test/fixtures/dncnn/', REPO);
  const meta = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8'));
  return {
    name,
    config: meta.config,
    inputShape: meta.inputShape,
    weights: readBytes(new URL(meta.weights, dir)),
    input: readF32(new URL(`${name}.input.f32`, dir)),
    output: readF32(new URL(`${name}.output.f32`, dir)),
  };
}

export const DNCNN_FIXTURES = [
  'tiny_r_gray',
  'tiny_br_gray',
  'tiny_r_color',
  'tiny_br_color',
  'full_br_gray',
  'real_dncnn25_set12_01_crop',
];
