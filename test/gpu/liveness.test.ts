import { describe, expect, it } from 'vitest';
import { assignBuffers, type LiveInterval } from '../../src/gpu/liveness';
import { seededRandom } from '../helpers/random';

/** Two intervals are live at a common step (both ends inclusive). */
function overlaps(a: LiveInterval, b: LiveInterval): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/** Checks every invariant of an assignment and returns the number of slots. */
function checkAssignment(intervals: LiveInterval[]): number {
  const { slotOf, slotBytes } = assignBuffers(intervals);
  for (const t of intervals) {
    const s = slotOf.get(t.id);
    expect(s, `tensor ${t.id} has a slot`).toBeTypeOf('number');
    expect(s!).toBeGreaterThanOrEqual(0);
    expect(s!).toBeLessThan(slotBytes.length);
    expect(slotBytes[s!], `slot of tensor ${t.id} is big enough`).toBeGreaterThanOrEqual(t.bytes);
  }
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i];
      const b = intervals[j];
      if (overlaps(a, b)) {
        expect(slotOf.get(a.id), `tensors ${a.id} [${a.first},${a.last}] and ${b.id} [${b.first},${b.last}] overlap`).not.toBe(
          slotOf.get(b.id),
        );
      }
    }
  }
  // No slot is larger than the largest tensor it holds, and none is empty.
  slotBytes.forEach((bytes, s) => {
    const held = intervals.filter((t) => slotOf.get(t.id) === s).map((t) => t.bytes);
    expect(held.length, `slot ${s} holds something`).toBeGreaterThan(0);
    expect(bytes).toBe(Math.max(...held));
  });
  return slotBytes.length;
}

/** The intervals Plan builds for a chain input → n nodes → output (each node reads the previous tensor). */
function chain(n: number, bytesOf: (i: number) => number): LiveInterval[] {
  const out: LiveInterval[] = [{ id: 0, bytes: bytesOf(0), first: -1, last: 0 }];
  for (let i = 1; i <= n; i++) out.push({ id: i, bytes: bytesOf(i), first: i - 1, last: i === n ? n : i });
  return out;
}

describe('assignBuffers (liveness)', () => {
  it('a chain of 17 layers needs two slots, alternating', () => {
    const intervals = chain(17, () => 4096);
    const { slotOf, slotBytes } = assignBuffers(intervals);
    expect(slotBytes).toEqual([4096, 4096]);
    for (let i = 1; i < intervals.length; i++) expect(slotOf.get(i)).not.toBe(slotOf.get(i - 1));
    expect(checkAssignment(intervals)).toBe(2);
  });

  it('a single node: its output never shares with its input', () => {
    const intervals: LiveInterval[] = [
      { id: 10, bytes: 64, first: -1, last: 0 },
      { id: 11, bytes: 64, first: 0, last: 1 },
    ];
    const { slotOf } = assignBuffers(intervals);
    expect(slotOf.get(10)).not.toBe(slotOf.get(11));
  });

  it('a tensor read again much later (residual) keeps its own slot; the others still alternate', () => {
    // x (input) is read by node 0 and by the last node (x - model(x)), like DnCNN.
    const n = 6;
    const intervals: LiveInterval[] = [{ id: 0, bytes: 100, first: -1, last: n - 1 }];
    for (let i = 1; i < n; i++) intervals.push({ id: i, bytes: 800, first: i - 1, last: i });
    intervals.push({ id: n, bytes: 100, first: n - 1, last: n });
    expect(checkAssignment(intervals)).toBe(3);
  });

  it('overlapping intervals never share a slot', () => {
    const intervals: LiveInterval[] = [
      { id: 0, bytes: 16, first: 0, last: 5 },
      { id: 1, bytes: 16, first: 2, last: 3 },
      { id: 2, bytes: 16, first: 3, last: 4 },
      { id: 3, bytes: 16, first: 5, last: 6 },
    ];
    const slots = checkAssignment(intervals);
    expect(slots).toBe(3); // steps 3 and 5 have three tensors live at once
  });

  it('a slot grows to the largest tensor placed in it', () => {
    // Sizes grow along the chain: both slots must end up as big as the largest tensor each holds.
    const intervals = chain(5, (i) => 100 * (i + 1));
    const { slotOf, slotBytes } = assignBuffers(intervals);
    expect(slotBytes.length).toBe(2);
    const maxIn = (s: number) => Math.max(...intervals.filter((t) => slotOf.get(t.id) === s).map((t) => t.bytes));
    expect(slotBytes[0]).toBe(maxIn(0));
    expect(slotBytes[1]).toBe(maxIn(1));
    expect(Math.max(...slotBytes)).toBe(600);
    checkAssignment(intervals);
  });

  it('input order does not matter', () => {
    const intervals = chain(9, (i) => (i % 3) * 64 + 64);
    const shuffled = [...intervals].reverse();
    expect(checkAssignment(shuffled)).toBe(2);
  });

  it('random interval sets: no overlap shares a slot, slots never exceed the peak of live tensors', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = seededRandom(seed);
      const count = 2 + Math.floor(r() * 20);
      const intervals: LiveInterval[] = [];
      for (let id = 0; id < count; id++) {
        const first = Math.floor(r() * 15) - 1;
        const last = first + Math.floor(r() * 5);
        intervals.push({ id, bytes: 16 * (1 + Math.floor(r() * 10)), first, last });
      }
      const slots = checkAssignment(intervals);
      // Interval graphs are perfect: greedy by start point reaches the maximum number of simultaneously live tensors.
      let peak = 0;
      for (let step = -1; step <= 20; step++) peak = Math.max(peak, intervals.filter((t) => t.first <= step && step <= t.last).length);
      expect(slots, `seed ${seed}`).toBe(peak);
    }
  });

  it('an empty list needs no slots', () => {
    expect(assignBuffers([])).toEqual({ slotOf: new Map(), slotBytes: [] });
  });
});
