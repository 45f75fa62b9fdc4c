/**
 * Fingerprints of what a page's form showed (settings, billing options, charge types): the form
 * carries one, and a save is refused (409) when what it showed changed since, rather than
 * putting it back unseen. Hashes over canonical JSON (keys sorted), so the same value always
 * gives the same fingerprint however it was built.
 */
import { createHash } from 'node:crypto';
import type { BillingOptionSection, FirmBillingSettings, MatterBillingOptions } from './events.ts';

/**
 * A fingerprint of some sections of a matter's billing options as a page showed them (their
 * effective values, and whether the matter overrides each): the page's form carries it, and a
 * save is refused when those sections changed since (another tab, another clerk, the firm's
 * defaults they follow), rather than silently putting back what the page showed.
 */
export function optionsSeen(effective: MatterBillingOptions, overridden: readonly string[], sections: readonly BillingOptionSection[]): string {
  const view = sections.map((s) => [s, effective[s] ?? null, overridden.includes(s)]);
  return createHash('sha256').update(canonicalJson(view)).digest('hex').slice(0, 24);
}

/** JSON with object keys sorted: the same value always gives the same text, however it was built. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}

/**
 * A fingerprint of a part of the firm's billing settings as the settings page showed it: the
 * general settings (everything but the matter defaults) or some sections of the matter
 * defaults. Each form on the page carries its own, so saving one form does not make the others
 * stale, while a change to the part a form shows (another tab, another admin) refuses its save.
 */
export function firmSettingsSeen(settings: FirmBillingSettings, part: 'general' | 'all' | readonly BillingOptionSection[]): string {
  const view = part === 'all' ? settings : part === 'general' ? { ...settings, matterDefaults: null } : part.map((s) => [s, settings.matterDefaults[s] ?? null]);
  return createHash('sha256').update(canonicalJson(view)).digest('hex').slice(0, 24);
}

/** A fingerprint of a charge type as a page showed it (its fields): the edit form carries it, and a save made since it changed is refused. */
export function chargeTypeSeen(t: { code: string; name: string; defaultPriceMinor: number; taxCode: string | null; taskCode: string | null; activityCode: string | null; active: boolean }): string {
  return createHash('sha256').update(JSON.stringify([t.code, t.name, t.defaultPriceMinor, t.taxCode, t.taskCode, t.activityCode, t.active])).digest('hex').slice(0, 24);
}
