/**
 * The demo firm: deterministic for a given seed, so benchmarks and screenshots repeat.
 * Staff accounts first; then timekeepers, clients, matters and work in progress from the
 * matters module (`seedDemoFirm`), dated relative to the runtime clock's today.
 */
import type { Runtime } from '../main.ts';
import { createBillingCommands, createProduction } from '../modules/billing/index.ts';
import { createMattersCommands, seedDemoFirm } from '../modules/matters/index.ts';
import { systemContext } from '../shared/events.ts';
import type { Role } from '../shared/web/types.ts';
import { createUser, listUsers } from '../web/auth/service.ts';

export const DEMO_PASSWORD = 'lexbill-demo-2026';
export const DEMO_ADMIN_EMAIL = 'admin@demo.lexbill.test';
/** The demo firm's letterhead (billing settings). */
export const DEMO_LETTERHEAD = {
  firmName: 'Holloway & Stern LLP (demo)', address: '1 Example Plaza\nSpringfield', taxId: '', phone: '', email: 'accounts@demo.lexbill.test', mailFrom: '',
  paymentNote: 'Demo firm: these bills are examples.',
} as const;

export interface DemoOptions {
  matters: number;
  entriesPerMatter: number;
  seed: number;
}

export const DEMO_LIMITS = { matters: 100_000, entriesPerMatter: 10_000 } as const;

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same firm. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STAFF: readonly { email: string; name: string; role: Role }[] = [
  { email: DEMO_ADMIN_EMAIL, name: 'Alex Admin', role: 'admin' },
  { email: 'billing@demo.lexbill.test', name: 'Bea Billing', role: 'billing' },
  { email: 'partner@demo.lexbill.test', name: 'Priya Partner', role: 'timekeeper' },
  { email: 'associate@demo.lexbill.test', name: 'Sam Associate', role: 'timekeeper' },
  { email: 'auditor@demo.lexbill.test', name: 'Riley Reader', role: 'readonly' },
];

/** The demo's timekeeper sign-ins and the timekeepers whose time they record. */
const DEMO_TIMEKEEPER_LINKS: readonly (readonly [string, string])[] = [['partner@demo.lexbill.test', 'MH'], ['associate@demo.lexbill.test', 'SC']];

export interface DemoResult {
  usersCreated: number;
  /** True when the demo firm's timekeepers already existed, so no matters were added. */
  firmAlreadySeeded: boolean;
  timekeepers: number;
  clients: number;
  matters: number;
  timeEntries: number;
  disbursements: number;
}

export async function seedDemo(rt: Runtime, opts: DemoOptions): Promise<DemoResult> {
  if (!Number.isInteger(opts.matters) || opts.matters < 0 || opts.matters > DEMO_LIMITS.matters) throw new Error(`--matters must be 0..${DEMO_LIMITS.matters}`);
  if (!Number.isInteger(opts.entriesPerMatter) || opts.entriesPerMatter < 0 || opts.entriesPerMatter > DEMO_LIMITS.entriesPerMatter) throw new Error(`--entries-per-matter must be 0..${DEMO_LIMITS.entriesPerMatter}`);
  const ctx = systemContext(`seed-demo-${opts.seed}`, 'seed-demo');
  const existing = new Set((await listUsers({ db: rt.database.db, clock: rt.clock })).map((u) => u.email));
  let usersCreated = 0;
  for (const s of STAFF) {
    if (existing.has(s.email)) continue;
    await createUser({ db: rt.database.db, clock: rt.clock }, ctx, { ...s, password: DEMO_PASSWORD });
    usersCreated++;
  }
  const cmds = createMattersCommands({ db: rt.database.db, clock: rt.clock, relay: rt.relay });
  const firm = await seedDemoFirm(cmds, { matters: opts.matters, entriesPerMatter: opts.entriesPerMatter, seed: opts.seed, random: prng, ctx, fixedCharges: true });
  // The demo's timekeeper sign-ins record their own timekeeper's time: the partner MH's, the associate SC's (a link made by hand is kept).
  const tks = await cmds.listTimekeepers();
  for (const [email, initials] of DEMO_TIMEKEEPER_LINKS) {
    const tk = tks.find((t) => t.initials === initials);
    if (tk && tk.staffEmail === null && !tks.some((t) => t.staffEmail === email)) await cmds.updateTimekeeper(ctx, tk.id, { staffEmail: email });
  }
  // The demo firm's letterhead, so its bills and emails are not signed "Your firm" (a letterhead already saved is kept).
  const billing = createBillingCommands({ db: rt.database.db, clock: rt.clock, relay: rt.relay });
  const production = createProduction({ db: rt.database.db, clock: rt.clock, logger: rt.logger, outputs: rt.outputs }, billing);
  if (!firm.alreadySeeded && (await production.getSettings()).version === 0) {
    await production.saveSettings(ctx, { ...DEMO_LETTERHEAD, expectedVersion: 0 });
  }
  const { alreadySeeded, ...counts } = firm;
  return { usersCreated, firmAlreadySeeded: alreadySeeded, ...counts };
}
