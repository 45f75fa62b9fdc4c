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

/**
 * Calendar date (YYYY-MM-DD) of an instant in the firm's time zone: the server process's
 * local zone (`TZ`, else the system's). "Today" (default invoice and receipt dates, the
 * invoice date's limits), the date a reversal is posted on and an export's date are all
 * this date, so a Sydney firm billing at 9 am on the 1st bills and posts on the 1st, not on
 * the last day of the month before (UTC).
 */
export function isoDate(d: Date): string {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('isoDate: invalid time');
  const y = d.getFullYear();
  if (y < 0 || y > 9999) throw new RangeError(`isoDate: year ${y} out of range`);
  return `${String(y).padStart(4, '0')}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The time zone isoDate uses (IANA name), for the start-up line; undefined when TZ names no zone Node knows (it then uses UTC). */
export function firmTimeZone(): string | undefined {
  return Intl.DateTimeFormat().resolvedOptions().timeZone as string | undefined;
}

/**
 * A stored time (ISO, UTC) as the firm reads it: its own time zone's date and time (isoDate's),
 * named (`2026-12-06 07:44 UTC`); `seconds` to the second. Text that is no time is returned as it is.
 */
export function displayTime(iso: string, seconds = false): string {
  const d = new Date(iso);
  if (!Number.isFinite(d.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${isoDate(d)} ${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ''} ${firmTimeZone() ?? 'UTC'}`;
}
