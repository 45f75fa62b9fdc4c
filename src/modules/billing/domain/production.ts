/**
 * Bill production rules, pure: which actions the production page offers for a selection
 * (seed 000), which steps a bill still needs, and the idempotency keys of its outputs.
 */

export type ProductionAction = 'produce_all' | 'preview_all' | 'revert_all' | 'produce' | 'preview' | 'ebilling' | 'revert' | 'email_manually' | 'create_payment';

export const PRODUCTION_ACTION_LABELS: Record<ProductionAction, string> = {
  produce_all: 'Produce all', preview_all: 'Preview all', revert_all: 'Revert all to draft',
  produce: 'Produce', preview: 'Preview', ebilling: 'E-billing', revert: 'Revert to draft', email_manually: 'Email manually', create_payment: 'Create payment',
};

/**
 * Seed 000: nothing selected offers Produce all, Preview all and Revert all to draft; one
 * bill offers Produce, Preview, E-billing, Revert to draft, Email manually and Create payment;
 * two or more offer Produce, Preview, E-billing and Revert to draft. An empty list offers nothing.
 */
export function productionActions(selectedCount: number, listedCount: number): ProductionAction[] {
  if (!Number.isInteger(selectedCount) || selectedCount < 0) throw new RangeError(`selectedCount must be a count, got ${selectedCount}`);
  if (selectedCount === 0) return listedCount > 0 ? ['produce_all', 'preview_all', 'revert_all'] : [];
  if (selectedCount === 1) return ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment'];
  return ['produce', 'preview', 'ebilling', 'revert'];
}

export type ProductionStep = 'pdf' | 'print' | 'email' | 'finalise';
export const PRODUCTION_STEPS: readonly ProductionStep[] = ['pdf', 'print', 'email', 'finalise'];

/** What has been done for a bill in this approval cycle. */
export interface StepState {
  pdfStored: boolean;
  printed: boolean;
  emailed: boolean;
  finalised: boolean;
}

/** The steps still to do, in order: a step done is never done again; a step not wanted is skipped. */
export function remainingSteps(state: StepState, wants: { copies: number; recipients: number }): ProductionStep[] {
  const out: ProductionStep[] = [];
  if (!state.pdfStored) out.push('pdf');
  if (!state.printed && wants.copies > 0) out.push('print');
  if (!state.emailed && wants.recipients > 0) out.push('email');
  if (!state.finalised) out.push('finalise');
  return out;
}

/** The print job key: one per bill and approval, so a retry finds its files. */
export function printJobKey(billId: string, cycle: string): string {
  return `bill:${billId}:${cycle}:print`;
}

/** The production email's key (its Message-ID derives from it). */
export function productionMessageKey(billId: string, cycle: string): string {
  return `bill:${billId}:${cycle}:production-email`;
}

/** A file name for a bill's PDF: the number with anything odd replaced. */
export function pdfFileName(number: string | null, billId: string, preview: boolean): string {
  const stem = (number ?? `draft-${billId.slice(0, 8)}`).replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${preview ? 'PREVIEW-' : ''}bill-${stem}.pdf`;
}
