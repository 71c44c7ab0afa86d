import type { Plan } from '../gpu/plan';

interface Entry {
  plan: Promise<Plan>;
  /** Calls holding the plan: compiling it, queued on it or running it. */
  users: number;
  /** Out of the cache (evicted, dropped or the cache closed): disposed as soon as its last user lets go. */
  removed: boolean;
}

/**
 * The compiled plans of one model, one per input size, the least recently used evicted past `capacity` — but
 * only when idle. A plan that a call holds (while it compiles, waits in the plan's queue, or runs) is pinned:
 * disposing it then would fail the call (`plan has been disposed`, or an aborted readback) and hand its
 * activation buffers to another plan while the GPU may still be writing them. So the cache may hold more than
 * `capacity` plans while more sizes than that are in use at once, and shrinks back as they are released.
 */
export class PlanCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly capacity: number,
    private readonly compile: (height: number, width: number) => Promise<Plan>,
  ) {}

  /** Runs `fn` with the plan for this size (compiled on first use), which stays alive until `fn` settles. */
  async use<T>(height: number, width: number, fn: (plan: Plan) => Promise<T>): Promise<T> {
    const entry = this.acquire(`${height}x${width}`, height, width);
    try {
      return await fn(await entry.plan);
    } finally {
      entry.users--;
      if (entry.removed) void this.disposeIfIdle(entry);
      else this.evict();
    }
  }

  /** Takes the plan for this size out of the cache (it is disposed once no call holds it). */
  drop(height: number, width: number): void {
    const key = `${height}x${width}`;
    const entry = this.entries.get(key);
    if (entry) void this.remove(key, entry);
  }

  /** Takes every plan out of the cache; each is disposed once no call holds it (then the promise resolves). */
  async clear(): Promise<void> {
    await Promise.all([...this.entries].map(([key, entry]) => this.remove(key, entry)));
  }

  /** Plans in the cache (pinned or idle). */
  get size(): number {
    return this.entries.size;
  }

  private acquire(key: string, height: number, width: number): Entry {
    let entry = this.entries.get(key);
    if (entry) {
      // Move to the back: the map's order is the order of last use.
      this.entries.delete(key);
    } else {
      entry = { plan: this.compile(height, width), users: 0, removed: false };
      const created = entry;
      // A failed compile is not cached; its callers see the error through `use`.
      created.plan.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    this.entries.set(key, entry);
    entry.users++;
    return entry;
  }

  /** Disposes the least recently used idle plans while the cache holds more than its capacity. */
  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      if (entry.users === 0) void this.remove(key, entry);
    }
  }

  private remove(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.removed = true;
    return this.disposeIfIdle(entry);
  }

  /** Resolves when the plan is disposed, or at once when a call still holds it (its release disposes it). */
  private async disposeIfIdle(entry: Entry): Promise<void> {
    // An entry without users has settled: each call holds it from acquire until after its plan promise settles.
    if (entry.users === 0)
      await entry.plan.then(
        (p) => p.dispose(),
        () => undefined,
      );
  }
}
