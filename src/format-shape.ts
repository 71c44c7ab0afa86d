/** A tensor shape for messages and listings: `[64, 1, 3, 3]`. The one definition, shared by every floor. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
