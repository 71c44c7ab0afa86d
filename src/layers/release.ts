import type { Module } from './module';

/**
 * Frees the GPU buffers (weights, PReLU slopes) held by every layer below `root`: each descendant that has a
 * `release()` gets it called once. Layers upload lazily, so releasing is safe whether or not they ever ran.
 */
export function releaseDescendants(root: Module): void {
  for (const [, child] of root.children()) {
    const r = (child as Partial<{ release: () => void }>).release;
    if (typeof r === 'function') r.call(child);
    releaseDescendants(child);
  }
}
