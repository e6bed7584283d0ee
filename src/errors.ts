/**
 * Errors the library raises on purpose. Each one names the function, the argument, what was
 * expected and what arrived, so a user can fix the call without reading a stack trace.
 */
export class ContrastiveError extends Error {
  override name = 'ContrastiveError';
}

/**
 * Throws a {@link ContrastiveError} when `condition` is false. The message is a closure so that
 * checks in hot paths cost nothing unless they fail.
 */
export function check(condition: unknown, message: () => string): asserts condition {
  if (!condition) throw new ContrastiveError(message());
}

/** `[8,2,4]` style shape string for messages. */
export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Checks that a hyper-parameter is a finite number > 0. */
export function checkPositive(fn: string, name: string, value: number): void {
  check(
    typeof value === 'number' && Number.isFinite(value) && value > 0,
    () => `${fn}: ${name} must be a finite number > 0, but got ${String(value)}.`,
  );
}

/** Checks that a hyper-parameter is a finite number in [lo, hi]. */
export function checkInRange(fn: string, name: string, value: number, lo: number, hi: number): void {
  check(
    typeof value === 'number' && Number.isFinite(value) && value >= lo && value <= hi,
    () => `${fn}: ${name} must be a number in [${lo}, ${hi}], but got ${String(value)}.`,
  );
}
