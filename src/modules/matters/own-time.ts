/**
 * Whose time a sign-in may record: one with the timekeeper role records, changes and deletes
 * the time of the timekeepers linked to its account (matters_timekeeper.staff_email) only;
 * billing and admin staff keep everyone's. Checked by the pages and the API before the
 * commands run (the commands know no roles).
 */
import type { CurrentUser } from '../../shared/web/types.ts';
import { HttpError, invalid } from '../../shared/web/errors.ts';
import type { Timekeeper } from './store.ts';

export interface OwnTime {
  /** Refuse (422 naming `field`) recording time for a timekeeper this sign-in may not record for. */
  refuseTime(timekeeperId: string, field?: string): void;
  /** Refuse (403) changing or deleting a time entry of a timekeeper this sign-in may not record for. */
  refuseEntry(entry: { timekeeperId: string }): void;
}

const ANYONE: OwnTime = { refuseTime() {}, refuseEntry() {} };

/** The ids of the timekeepers whose time this sign-in may record; null: anyone's (not the timekeeper role). */
export function ownTimekeeperIds(user: CurrentUser | null | undefined, timekeepers: readonly Timekeeper[]): ReadonlySet<string> | null {
  if (!user || user.role !== 'timekeeper') return null;
  const email = user.email.trim().toLowerCase();
  return new Set(timekeepers.filter((t) => t.staffEmail === email).map((t) => t.id));
}

/** What this sign-in may do with time; the timekeepers are read only for a timekeeper sign-in. */
export async function ownTime(user: CurrentUser | null | undefined, listTimekeepers: () => Promise<readonly Timekeeper[]>): Promise<OwnTime> {
  if (!user || user.role !== 'timekeeper') return ANYONE;
  const timekeepers = await listTimekeepers();
  const own = ownTimekeeperIds(user, timekeepers)!;
  const mine = timekeepers.filter((t) => own.has(t.id)).map((t) => `${t.initials} ${t.name}`);
  return {
    refuseTime(timekeeperId, field = 'timekeeperId') {
      if (own.has(timekeeperId)) return;
      throw invalid({
        [field]: mine.length > 0
          ? `is not your timekeeper: your sign-in records the time of ${mine.join(', ')} only (billing staff record others')`
          : 'is not your timekeeper: your sign-in is linked to no timekeeper (an admin or billing clerk links it on the timekeeper\'s page, under Staff account)',
      });
    },
    refuseEntry(entry) {
      if (own.has(entry.timekeeperId)) return;
      const tk = timekeepers.find((t) => t.id === entry.timekeeperId);
      throw new HttpError(403, 'forbidden', `This is ${tk ? `${tk.initials} ${tk.name}'s` : 'another timekeeper\'s'} time: your sign-in changes the time of its own timekeeper only (billing staff change others')`);
    },
  };
}
