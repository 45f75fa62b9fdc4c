/** Invariant checks. A failed assertion is a programming error, never user input. */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** (The message is built only on failure: money code calls this once per amount, hundreds of thousands of times in a run.) */
export function assertSafeInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`${name} must be a safe integer, got ${String(value)}`);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
