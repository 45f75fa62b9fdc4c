/**
 * Whose time a sign-in may record: one with the timekeeper role records, changes and deletes
 * the time of the timekeepers linked to its account (matters_timekeeper.staff_email) only;
 * billing and admin staff keep everyone's. Checked by the pages and the API before the
 * commands run (the commands know no roles).
 */
import type { CurrentUser } from '../../shared/web/types.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import type { Timekeeper } from './store.ts';

/** The ids of the timekeepers whose time this sign-in may record; null: anyone's (not the timekeeper role). */
export function ownTimekeeperIds(user: CurrentUser | null | undefined, timekeepers: readonly Timekeeper[]): ReadonlySet<string> | null {
  if (!user || user.role !== 'timekeeper') return null;
  const email = user.email.trim().toLowerCase();
  return new Set(timekeepers.filter((t) => t.staffEmail === email).map((t) => t.id));
}

/** Why this sign-in may not record `timekeeperId`'s time, or null when it may. */
export function ownTimeProblem(own: ReadonlySet<string> | null, timekeeperId: string, timekeepers: readonly Timekeeper[]): string | null {
  if (own === null || own.has(timekeeperId)) return null;
  const mine = timekeepers.filter((t) => own.has(t.id)).map((t) => `${t.initials} ${t.name}`);
  return mine.length > 0
    ? `is not your timekeeper: your sign-in records the time of ${mine.join(', ')} only (billing staff record others')`
    : 'is not your timekeeper: your sign-in is linked to no timekeeper (an admin or billing clerk links it on the timekeeper\'s page, under Staff account)';
}

/** Refuse (422 naming `field`) recording time for a timekeeper this sign-in may not record for. */
export function refuseOthersTime(own: ReadonlySet<string> | null, timekeeperId: string, timekeepers: readonly Timekeeper[], field = 'timekeeperId'): void {
  const problem = ownTimeProblem(own, timekeeperId, timekeepers);
  if (problem) throw invalid({ [field]: problem });
}

/** Refuse (403) changing or deleting a time entry of a timekeeper this sign-in may not record for. */
export function refuseOthersEntry(own: ReadonlySet<string> | null, entry: { timekeeperId: string }, timekeepers: readonly Timekeeper[]): void {
  if (own === null || own.has(entry.timekeeperId)) return;
  const tk = timekeepers.find((t) => t.id === entry.timekeeperId);
  throw new HttpError(403, 'forbidden', `This is ${tk ? `${tk.initials} ${tk.name}'s` : 'another timekeeper\'s'} time: your sign-in changes the time of its own timekeeper only (billing staff change others')`);
}
