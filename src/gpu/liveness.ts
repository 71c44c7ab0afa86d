/**
 * Liveness-based buffer assignment. Each tensor is live from the step that writes it to the last step that
 * reads it (inclusive). Tensors whose intervals do not overlap may share a buffer, so a 17-layer network needs
 * two activation buffers, not seventeen. A step's output never shares with its own inputs because both are
 * live at that step.
 */
export interface LiveInterval {
  id: number;
  bytes: number;
  first: number;
  last: number;
}

export interface BufferAssignment {
  /** tensor id → slot index */
  slotOf: Map<number, number>;
  /** size in bytes of each slot */
  slotBytes: number[];
}

export function assignBuffers(intervals: LiveInterval[]): BufferAssignment {
  const order = [...intervals].sort((a, b) => a.first - b.first || b.bytes - a.bytes);
  const slotBytes: number[] = [];
  const slotFreeAfter: number[] = []; // last step at which the slot is still in use
  const slotOf = new Map<number, number>();
  for (const t of order) {
    // Best fit among free slots: the smallest one that is big enough, else the biggest one (grown).
    let chosen = -1;
    for (let s = 0; s < slotBytes.length; s++) {
      if (slotFreeAfter[s] >= t.first) continue;
      if (chosen < 0) chosen = s;
      else {
        const fitsS = slotBytes[s] >= t.bytes;
        const fitsC = slotBytes[chosen] >= t.bytes;
        if ((fitsS && (!fitsC || slotBytes[s] < slotBytes[chosen])) || (!fitsS && !fitsC && slotBytes[s] > slotBytes[chosen])) {
          chosen = s;
        }
      }
    }
    if (chosen < 0) {
      chosen = slotBytes.length;
      slotBytes.push(0);
      slotFreeAfter.push(-1);
    }
    slotBytes[chosen] = Math.max(slotBytes[chosen], t.bytes);
    slotFreeAfter[chosen] = t.last;
    slotOf.set(t.id, chosen);
  }
  return { slotOf, slotBytes };
}
