/**
 * Bill and email templates, pure: the merge fields of email templates (substitution and
 * validation), the built-in templates, choosing a bill layout for a bill, and who a bill is
 * emailed to.
 */
import { formatMoney } from '../../../shared/money.ts';

export type BillLayout = 'itemised' | 'total_only' | 'fixed_fee';
export const BILL_LAYOUTS: readonly BillLayout[] = ['itemised', 'total_only', 'fixed_fee'];
export const BILL_LAYOUT_LABELS: Record<BillLayout, string> = { itemised: 'Itemised bill', total_only: 'Total-only bill (no line pricing)', fixed_fee: 'Fixed-fee bill' };

export interface BillTemplate {
  name: string;
  layout: BillLayout;
  title: string;
  footer: string;
}

export interface EmailTemplate {
  name: string;
  subject: string;
  body: string;
}

export const TEMPLATE_LIMITS = { nameChars: 100, subjectChars: 200, bodyChars: 10_000, titleChars: 100, footerChars: 2_000 } as const;

/** Built in: what a matter's billTemplate option names unless the firm stored its own. */
export const DEFAULT_BILL_TEMPLATES: readonly BillTemplate[] = [
  { name: 'standard', layout: 'itemised', title: 'Tax invoice', footer: '' },
  { name: 'itemised', layout: 'itemised', title: 'Tax invoice', footer: '' },
  { name: 'total-only', layout: 'total_only', title: 'Tax invoice', footer: '' },
  { name: 'fixed-fee', layout: 'fixed_fee', title: 'Tax invoice', footer: '' },
];

export const DEFAULT_EMAIL_TEMPLATES: readonly EmailTemplate[] = [
  {
    name: 'standard',
    subject: 'Invoice {{bill_number}} for {{matter}}',
    body: 'Dear {{client}},\n\nPlease find attached our invoice {{bill_number}} for {{matter}}, for {{total}}, due on {{due_date}}.\n'
      + '{{discount_description}}\n{{retainer_amount_due}}\n\nKind regards,\n{{firm}}',
  },
];

/** The merge fields an email template may use. */
export const MERGE_FIELDS = ['client', 'matter', 'file_number', 'bill_number', 'total', 'due_date', 'invoice_date', 'retainer_amount_due', 'discount_description', 'firm'] as const;
export type MergeField = (typeof MERGE_FIELDS)[number];
export const MERGE_FIELD_HELP: Record<MergeField, string> = {
  client: 'the client\'s name', matter: 'the matter\'s name', file_number: 'the matter\'s file number', bill_number: 'the bill number (12.8.1)',
  total: 'the bill total with currency', due_date: 'the due date', invoice_date: 'the invoice date',
  retainer_amount_due: 'what the general retainer pays of the bill, and a sentence asking for the retainer top-up (empty when neither)', discount_description: 'a sentence describing the discount (empty when none)',
  firm: 'the firm\'s name',
};

const FIELD_RE = /\{\{\s*([a-z_]+)\s*\}\}/g;

/** Unknown or malformed merge fields in a template text (empty: the text is fine). */
export function mergeFieldErrors(text: string): string[] {
  const errors: string[] = [];
  for (const m of text.matchAll(FIELD_RE)) {
    if (!(MERGE_FIELDS as readonly string[]).includes(m[1]!)) errors.push(`unknown merge field {{${m[1]}}}`);
  }
  const stray = text.replace(FIELD_RE, '').match(/\{\{|\}\}/);
  if (stray) errors.push('a "{{" or "}}" that is not a merge field');
  return errors;
}

/** Replace each {{field}} with its value (text, no markup); unknown fields are left as they are. */
export function merge(text: string, values: Readonly<Record<MergeField, string>>): string {
  return text.replace(FIELD_RE, (whole, name: string) => ((MERGE_FIELDS as readonly string[]).includes(name) ? values[name as MergeField] : whole));
}

/** Merge a template; blank lines left by empty fields collapse to one. */
export function mergeEmail(t: EmailTemplate, values: Readonly<Record<MergeField, string>>): { subject: string; text: string } {
  const subject = merge(t.subject, values).replace(/[\r\n]+/g, ' ').trim();
  const text = merge(t.body, values).replace(/\n{3,}/g, '\n\n').trim() + '\n';
  return { subject, text };
}

export interface TemplateErrors { [field: string]: string }

export function emailTemplateErrors(t: EmailTemplate): TemplateErrors {
  const e: TemplateErrors = {};
  if (!/^[A-Za-z0-9 _.-]{1,100}$/.test(t.name)) e.name = 'must be 1 to 100 letters, digits, spaces, dots, dashes or underscores';
  if (!t.subject.trim()) e.subject = 'is required';
  else if (t.subject.length > TEMPLATE_LIMITS.subjectChars) e.subject = `must be at most ${TEMPLATE_LIMITS.subjectChars} characters`;
  else if (mergeFieldErrors(t.subject).length > 0) e.subject = mergeFieldErrors(t.subject).join('; ');
  if (!t.body.trim()) e.body = 'is required';
  else if (t.body.length > TEMPLATE_LIMITS.bodyChars) e.body = `must be at most ${TEMPLATE_LIMITS.bodyChars} characters`;
  else if (mergeFieldErrors(t.body).length > 0) e.body = mergeFieldErrors(t.body).join('; ');
  return e;
}

export function billTemplateErrors(t: BillTemplate): TemplateErrors {
  const e: TemplateErrors = {};
  if (!/^[A-Za-z0-9 _.-]{1,100}$/.test(t.name)) e.name = 'must be 1 to 100 letters, digits, spaces, dots, dashes or underscores';
  if (!(BILL_LAYOUTS as readonly string[]).includes(t.layout)) e.layout = `must be one of ${BILL_LAYOUTS.join(', ')}`;
  if (!t.title.trim()) e.title = 'is required';
  else if (t.title.length > TEMPLATE_LIMITS.titleChars) e.title = `must be at most ${TEMPLATE_LIMITS.titleChars} characters`;
  if (t.footer.length > TEMPLATE_LIMITS.footerChars) e.footer = `must be at most ${TEMPLATE_LIMITS.footerChars} characters`;
  return e;
}

/** Stored templates override the built-in ones of the same name. */
export function withDefaults<T extends { name: string }>(defaults: readonly T[], stored: readonly T[]): T[] {
  const byName = new Map(defaults.map((t) => [t.name, t]));
  for (const t of stored) byName.set(t.name, t);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The template a matter's option names, else "standard", else the first. */
export function pickTemplate<T extends { name: string }>(templates: readonly T[], name: string | null | undefined): T {
  const t = templates.find((x) => x.name === name) ?? templates.find((x) => x.name === 'standard') ?? templates[0];
  if (!t) throw new Error('no templates');
  return t;
}

/**
 * A bill's template: the one its own request names (a mass-billing run or the composer set it)
 * when the firm has it, else the matter's billTemplate option, else "standard", else the first.
 */
export function billTemplateFor<T extends { name: string }>(templates: readonly T[], billTemplate: string | null | undefined, matterTemplate: string | null | undefined): T {
  const own = billTemplate?.trim() ? templates.find((x) => x.name === billTemplate.trim()) : undefined;
  return own ?? pickTemplate(templates, matterTemplate);
}

/**
 * Why a bill cannot be produced with the template it would get: the name its matter gives (the
 * bill naming none of the firm's itself) is not one of the firm's templates. Producing would silently use
 * another (an itemised bill, line prices and all, for a matter meant to get a total-only one),
 * so production refuses the bill, naming the template, until the name is put right. A matter
 * naming none gets the standard template by design. Null: fine.
 */
export function missingTemplate(templates: readonly { name: string }[], kind: 'bill' | 'email', billTemplate: string | null | undefined, matterTemplate: string | null | undefined): string | null {
  const names = templates.map((t) => t.name);
  // As billTemplateFor: the bill's own name when the firm has it (one it does not have, stored before names were checked, gives way to the matter's).
  const own = billTemplate?.trim();
  if (own && names.includes(own)) return null;
  const matter = matterTemplate?.trim();
  if (!matter || names.includes(matter)) return null;
  return `The matter's ${kind} template "${matter}" is not one of the firm's (${names.join(', ')}): choose one in the matter's billing options, then produce the bill again`;
}

/** What a bill's PDF shows: the template's layout, but a bill that hides line pricing never shows it. */
export function effectiveLayout(layout: BillLayout, bill: { hideLinePricing: boolean }): { layout: BillLayout; showLinePricing: boolean } {
  return { layout, showLinePricing: layout === 'itemised' && !bill.hideLinePricing };
}

/**
 * Who a bill is emailed to: the client's (billable party's) address when the matter uses it,
 * and every address of the matter's send-to list (seed 002: the box populates the address
 * field; addresses typed there are never dropped), each once; none means no email.
 */
export function recipients(options: { sendTo: readonly string[]; useClientAddress: boolean } | null, client: { billablePartyEmail: string | null; clientEmail: string | null }): string[] {
  if (!options) return [];
  const own = options.useClientAddress ? [client.billablePartyEmail ?? client.clientEmail].filter((x): x is string => !!x) : [];
  const list = [...own, ...options.sendTo];
  const seen = new Set<string>();
  return list.map((a) => a.trim()).filter((a) => {
    const k = a.toLowerCase();
    if (!a || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * A warning when a matter sends its bills to the client's address and neither the billable
 * party nor the client has one (production then emails the bill to its other addresses, or
 * to nobody), else null.
 */
export function missingClientAddress(options: { useClientAddress: boolean } | null, client: { billablePartyEmail: string | null; clientEmail: string | null }): string | null {
  if (!options?.useClientAddress) return null;
  if ((client.billablePartyEmail ?? client.clientEmail ?? '').trim()) return null;
  return 'The client has no email address';
}

export interface MergeSource {
  clientName: string;
  matterName: string;
  fileNumber: string;
  number: string | null;
  currency: string;
  totalMinor: number;
  dueDate: string;
  invoiceDate: string;
  retainerRequestMinor: number;
  /** The part of the total the general retainer pays (0 or absent: none). */
  retainerAppliedMinor?: number;
  discount: { amountMinor: number; validUntil: string | null; undiscountedTotalMinor: number } | null;
  firmName: string;
}

/**
 * An amount for an email, as on the bill: "$" alone reads as the US dollar, so the other
 * dollars say which they are (CA$1,234.56).
 */
export function mergeMoney(amountMinor: number, currency: string): string {
  return formatMoney(amountMinor, currency, { named: true });
}

/** The merge values for a bill. Amounts are formatted from integer minor units. */
export function mergeValues(s: MergeSource): Record<MergeField, string> {
  const m = (v: number) => mergeMoney(v, s.currency);
  const paid = s.retainerAppliedMinor ?? 0;
  // A time-sensitive discount on a bill the general retainer pays: the retainer pays now, in time. What is left to
  // pay keeps the discount if paid by its date; the retainer paying all of it, the discount is simply applied.
  const discount = !s.discount || s.discount.amountMinor === 0 ? ''
    : s.discount.validUntil && paid < s.totalMinor
      ? paid > 0
        ? `A discount of ${m(s.discount.amountMinor)} applies if the ${m(s.totalMinor - paid)} left is paid by ${s.discount.validUntil}; after that date ${m(s.discount.undiscountedTotalMinor - paid)} is due.`
        : `A discount of ${m(s.discount.amountMinor)} applies if paid by ${s.discount.validUntil}; after that date ${m(s.discount.undiscountedTotalMinor)} is due.`
      : `A discount of ${m(s.discount.amountMinor)} has been applied.`;
  const retainer = [
    ...(paid > 0 ? [`${m(paid)} of this bill is paid from your general retainer, leaving ${m(s.totalMinor - paid)} to pay.`] : []),
    ...(s.retainerRequestMinor > 0 ? [`Please also pay ${m(s.retainerRequestMinor)} to replenish your retainer.`] : []),
  ].join(' ');
  return {
    client: s.clientName, matter: s.matterName, file_number: s.fileNumber, bill_number: s.number ?? '(draft)', total: m(s.totalMinor),
    due_date: s.dueDate, invoice_date: s.invoiceDate, retainer_amount_due: retainer, discount_description: discount, firm: s.firmName,
  };
}

/**
 * The options of a bill-template choice: "blank" first (the matter's own, or unchanged), then
 * the firm's templates. A current value that is not one of them stays listed (marked), so the
 * form sends what it shows and the refusal names it, rather than quietly showing another.
 */
export function templateChoices(names: readonly string[], current: string | null | undefined, blankLabel: string): [string, string][] {
  const out: [string, string][] = [['', blankLabel], ...names.map((n): [string, string] => [n, n])];
  if (current && current.trim() !== '' && !names.includes(current.trim())) out.push([current, `${current} (not a bill template)`]);
  return out;
}

/** Why a bill template name cannot be used (null: blank, or one of the firm's `names`). */
export function unknownTemplate(name: string | null | undefined, names: readonly string[]): string | null {
  const n = name?.trim();
  return !n || names.includes(n) ? null : `no bill template named "${name}" (templates: ${names.join(', ')})`;
}

/** A bill's tax at one rate: the rate's code, what its lines come to, and the tax they carry. */
export interface TaxAtRate { code: string; taxableMinor: number; taxMinor: number }

/** Lines as the tax summary reads them (BillLineData has these). */
interface TaxedLine { kind: string; taxCode: string | null; amountMinor: number; taxMinor: number; noCharge: boolean }

/**
 * A bill's tax per rate, for its PDF: each tax code's lines (the amounts they charge and the tax
 * they carry, as stored), in code order; the rows' tax sums to the bill's stored tax. A discount
 * over lines of one code is stored as one line with no code of its own: it belongs to that code,
 * the one code of the fees and charges it is taken on. Null when the bill cannot be split exactly
 * (such a line with fees at several codes, or rows not adding up to the stored tax): the bill then
 * shows its tax as one figure, never a split that might be wrong.
 */
export function taxByRate(lines: readonly TaxedLine[], taxMinor: number): TaxAtRate[] | null {
  const discountedCodes = new Set(lines.filter((l) => l.taxCode !== null && !l.noCharge && l.amountMinor !== 0
    && l.kind !== 'disbursement' && l.kind !== 'adhoc_disbursement' && l.kind !== 'discount' && l.kind !== 'interest').map((l) => l.taxCode!));
  const rows = new Map<string, TaxAtRate>();
  for (const l of lines) {
    let code = l.taxCode;
    if (code === null) {
      if (l.amountMinor === 0 && l.taxMinor === 0) continue;
      if (l.kind !== 'discount' || discountedCodes.size !== 1) return null;
      code = [...discountedCodes][0]!;
    }
    const r = rows.get(code) ?? { code, taxableMinor: 0, taxMinor: 0 };
    r.taxableMinor += l.amountMinor;
    r.taxMinor += l.taxMinor;
    rows.set(code, r);
  }
  const out = [...rows.values()].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  if (out.reduce((a, r) => a + r.taxMinor, 0) !== taxMinor) return null;
  return out;
}

/**
 * The tax rows a bill's PDF shows above its tax total: one per rate when its lines are at more
 * than one (none when at one: the total is that rate's), with each rate's taxable amount only
 * where the bill shows line prices (on a total-only bill, or one hiding line pricing, a rate's
 * taxable amount could be one line's price).
 */
export function billTaxRows(layout: BillLayout, bill: { hideLinePricing: boolean; lines: readonly TaxedLine[]; totals: { taxMinor: number } }): { rows: TaxAtRate[]; showTaxable: boolean } {
  const rows = taxByRate(bill.lines, bill.totals.taxMinor);
  return { rows: rows && rows.length > 1 ? rows : [], showTaxable: layout !== 'total_only' && !bill.hideLinePricing };
}
