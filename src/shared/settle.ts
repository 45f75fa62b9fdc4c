/**
 * Wait until every promise has settled, or `timeoutMs` has passed, whichever comes first (a
 * graceful shutdown's bounded wait for the work in progress). True when every one settled.
 */
export async function settledWithin(promises: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new Error(`a wait of 0 ms or more, got ${timeoutMs}`);
  if (promises.length === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
  try {
    return await Promise.race([Promise.allSettled(promises).then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
