/** Injectable time. Production uses the system clock; tests pass a fixed or stepped clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to. */
export function manualClock(start: Date | string): Clock & { advanceMs(ms: number): void; set(d: Date | string): void } {
  let t = new Date(start).getTime();
  return {
    now: () => new Date(t),
    advanceMs(ms: number) { t += ms; },
    set(d: Date | string) { t = new Date(d).getTime(); },
  };
}

export function isoNow(clock: Clock): string {
  return clock.now().toISOString();
}

/** Calendar date (YYYY-MM-DD) of an instant, in UTC. */
export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}
