/**
 * The pure production rules: seed 000's choices for a selection (table), the steps a bill
 * still needs (table + property: a done step never comes back, an unwanted one never
 * runs), email merge fields (the seeds' fields; validation), recipients and layouts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { approvalTime } from '../../src/modules/billing/domain/lifecycle.ts';
import { manualEmailKey } from '../../src/modules/billing/production.ts';
import { combineBillDocuments, manualEmailCovering, manualEmailPending, manualEmailsOfCycle, PREVIEW_PDF_BILLS, pdfFileName, previewPdfGroups, printJobKey, productionActions, productionMessageKey, remainingSteps } from '../../src/modules/billing/domain/production.ts';
import {
  billTemplateFor, DEFAULT_EMAIL_TEMPLATES, effectiveLayout, emailTemplateErrors, merge, mergeEmail, mergeMoney, mergeFieldErrors, mergeValues, MERGE_FIELDS, missingClientAddress, pickTemplate, recipients, templateChoices, unknownTemplate, withDefaults, missingTemplate,
} from '../../src/modules/billing/domain/templates.ts';

test('the production toolbar offers exactly seed 000\'s choices', () => {
  const table: [selected: number, listed: number, expected: string[]][] = [
    [0, 5, ['produce_all', 'preview_all', 'revert_all']],
    [0, 0, []],
    [1, 5, ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment']],
    [1, 1, ['produce', 'preview', 'ebilling', 'revert', 'email_manually', 'create_payment']],
    [2, 5, ['produce', 'preview', 'ebilling', 'revert']],
    [5, 5, ['produce', 'preview', 'ebilling', 'revert']],
    [1000, 1000, ['produce', 'preview', 'ebilling', 'revert']],
  ];
  for (const [selected, listed, expected] of table) assert.deepEqual(productionActions(selected, listed), expected, `${selected} of ${listed}`);
  assert.throws(() => productionActions(-1, 3), RangeError);
  assert.throws(() => productionActions(1.5, 3), RangeError);
});

test('remaining steps: done ones are skipped, unwanted print/email are skipped, order is pdf, print, email, finalise', () => {
  const none = { pdfStored: false, printed: false, emailed: false, finalised: false };
  const table: [Parameters<typeof remainingSteps>[0], { copies: number; recipients: number }, string[]][] = [
    [none, { copies: 2, recipients: 1 }, ['pdf', 'print', 'email', 'finalise']],
    [none, { copies: 0, recipients: 0 }, ['pdf', 'finalise']],
    [{ ...none, pdfStored: true, printed: true }, { copies: 2, recipients: 2 }, ['email', 'finalise']],
    [{ pdfStored: true, printed: true, emailed: true, finalised: false }, { copies: 1, recipients: 1 }, ['finalise']],
    [{ pdfStored: true, printed: true, emailed: true, finalised: true }, { copies: 1, recipients: 1 }, []],
    [{ ...none, pdfStored: true }, { copies: 1, recipients: 0 }, ['print', 'finalise']],
  ];
  for (const [state, wants, expected] of table) assert.deepEqual(remainingSteps(state, wants), expected);
});

test('property: a step done or not wanted never runs, every other step does, in order', () => {
  const order = ['pdf', 'print', 'email', 'finalise'];
  fc.assert(fc.property(fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.nat(2), fc.nat(5), (pdfStored, printed, emailed, finalised, copies, rcpt) => {
    const steps = remainingSteps({ pdfStored, printed, emailed, finalised }, { copies, recipients: rcpt });
    assert.equal(steps.includes('pdf'), !pdfStored);
    assert.equal(steps.includes('print'), !printed && copies > 0);
    assert.equal(steps.includes('email'), !emailed && rcpt > 0);
    assert.equal(steps.includes('finalise'), !finalised);
    assert.deepEqual(steps, [...steps].sort((a, b) => order.indexOf(a) - order.indexOf(b)));
  }));
});

test('output keys are stable per bill and approval, and differ across approvals', () => {
  assert.equal(printJobKey('b1', '2026-03-02T09:00:00.000Z'), printJobKey('b1', '2026-03-02T09:00:00.000Z'));
  assert.notEqual(productionMessageKey('b1', '2026-03-02T09:00:00.000Z'), productionMessageKey('b1', '2026-03-05T09:00:00.000Z'));
  assert.notEqual(productionMessageKey('b1', 'c'), productionMessageKey('b2', 'c'));
  assert.equal(pdfFileName('12.8.1', 'x', false), 'bill-12.8.1.pdf');
  assert.equal(pdfFileName(null, '0190aabb-cc', true), 'PREVIEW-bill-draft-90aabbcc.pdf');
  // Drafts of one run (ids sharing their time-ordered start) get different names, with their file number.
  assert.equal(pdfFileName(null, '019cadc6-9a80-7bf6-a91f-91efe554b376', true, '1.1'), 'PREVIEW-bill-1.1-draft-e554b376.pdf');
  assert.notEqual(pdfFileName(null, '019cadc6-9a80-7bf6-a91f-91efe554b376', true), pdfFileName(null, '019cadc6-9a80-71cd-9ca3-24a8be01c4cf', true));
  assert.equal(pdfFileName('a/b"c', 'x', false), 'bill-a_b_c.pdf');
});

const SOURCE = {
  clientName: 'Northwind Logistics Inc.', matterName: 'Northwind v. Kestrel', fileNumber: '12.8', number: '12.8.1', currency: 'USD',
  totalMinor: 123_456, dueDate: '2026-03-31', invoiceDate: '2026-03-01', retainerRequestMinor: 0, discount: null, firmName: 'Holloway & Stern',
};

test('merge fields: every field from the issue, amounts from minor units, sentences only when they apply', () => {
  const v = mergeValues(SOURCE);
  assert.deepEqual(Object.keys(v).sort(), [...MERGE_FIELDS].sort());
  const table: [string, string][] = [
    ['{{client}}', 'Northwind Logistics Inc.'], ['{{ matter }}', 'Northwind v. Kestrel'], ['{{bill_number}}', '12.8.1'], ['{{total}}', '$1,234.56'],
    ['{{due_date}}', '2026-03-31'], ['{{retainer_amount_due}}', ''], ['{{discount_description}}', ''], ['{{file_number}}', '12.8'], ['{{firm}}', 'Holloway & Stern'],
  ];
  for (const [t, want] of table) assert.equal(merge(t, v), want, t);
  const withBoth = mergeValues({ ...SOURCE, retainerRequestMinor: 50_000, discount: { amountMinor: 10_000, validUntil: '2026-03-15', undiscountedTotalMinor: 133_456 } });
  assert.equal(withBoth.retainer_amount_due, 'Please also pay $500.00 to replenish your retainer.');
  // The retainer pays part of the bill (seed 002): said, with what is left to pay, before the top-up asked.
  assert.equal(mergeValues({ ...SOURCE, retainerAppliedMinor: 100_000, retainerRequestMinor: 500_000 }).retainer_amount_due,
    '$1,000.00 of this bill is paid from your general retainer, leaving $234.56 to pay. Please also pay $5,000.00 to replenish your retainer.');
  assert.equal(mergeValues({ ...SOURCE, retainerAppliedMinor: 123_456, retainerRequestMinor: 0 }).retainer_amount_due,
    '$1,234.56 of this bill is paid from your general retainer, leaving $0.00 to pay.');
  // With a time-sensitive discount: the retainer pays now, so all paid by it, the discount is applied; part paid, the
  // rest keeps the discount if paid by its date (never "after that date the whole is due" beside "nothing left to pay").
  const timed = { amountMinor: 10_000, validUntil: '2026-03-15', undiscountedTotalMinor: 133_456 };
  assert.equal(mergeValues({ ...SOURCE, discount: timed, retainerAppliedMinor: 123_456 }).discount_description, 'A discount of $100.00 has been applied.');
  assert.equal(mergeValues({ ...SOURCE, discount: timed, retainerAppliedMinor: 100_000 }).discount_description,
    'A discount of $100.00 applies if the $234.56 left is paid by 2026-03-15; after that date $334.56 is due.');
  assert.equal(mergeValues({ ...SOURCE, discount: timed, retainerAppliedMinor: 0 }).discount_description, 'A discount of $100.00 applies if paid by 2026-03-15; after that date $1,334.56 is due.');
  assert.equal(withBoth.discount_description, 'A discount of $100.00 applies if paid by 2026-03-15; after that date $1,334.56 is due.');
  assert.equal(mergeValues({ ...SOURCE, discount: { amountMinor: 2_500, validUntil: null, undiscountedTotalMinor: 125_956 } }).discount_description, 'A discount of $25.00 has been applied.');
  const m = mergeEmail(DEFAULT_EMAIL_TEMPLATES[0]!, v);
  assert.equal(m.subject, 'Invoice 12.8.1 for Northwind v. Kestrel');
  assert.ok(m.text.includes('$1,234.56') && m.text.includes('2026-03-31') && !/\n\n\n/.test(m.text));
  assert.equal(merge('{{nope}}', v), '{{nope}}', 'unknown fields stay visible');
  assert.equal(mergeEmail({ name: 'x', subject: 'A\n{{client}}', body: 'b' }, v).subject, 'A Northwind Logistics Inc.', 'no header injection through the subject');
});

test('merge fields in other currencies: a dollar other than the US one is named, exponents and negatives as the currency has them; markup stays plain text', () => {
  const table: [currency: string, totalMinor: number, want: string][] = [
    ['USD', 123_456, '$1,234.56'], ['CAD', 123_456, 'CA$1,234.56'], ['AUD', 123_456, 'A$1,234.56'], ['NZD', -123_456, '-NZ$1,234.56'],
    ['EUR', 123_456, '€1,234.56'], ['GBP', -5, '-£0.05'], ['JPY', 1_234_567, '¥1,234,567'], ['KWD', 1_234_567, 'KWD 1,234.567'], ['CHF', 100, 'CHF 1.00'],
  ];
  for (const [currency, totalMinor, want] of table) {
    assert.equal(mergeMoney(totalMinor, currency), want, currency);
    assert.equal(mergeValues({ ...SOURCE, currency, totalMinor }).total, want, currency);
  }
  const cad = mergeValues({ ...SOURCE, currency: 'CAD', retainerRequestMinor: 50_000, discount: { amountMinor: 10_000, validUntil: null, undiscountedTotalMinor: 133_456 } });
  assert.equal(cad.retainer_amount_due, 'Please also pay CA$500.00 to replenish your retainer.');
  assert.equal(cad.discount_description, 'A discount of CA$100.00 has been applied.');
  // No discount, a zero discount, no retainer request: empty sentences, and no blank lines left in the email.
  for (const discount of [null, { amountMinor: 0, validUntil: null, undiscountedTotalMinor: 123_456 }]) {
    const v = mergeValues({ ...SOURCE, discount, retainerRequestMinor: 0 });
    assert.deepEqual([v.discount_description, v.retainer_amount_due], ['', '']);
    assert.ok(!/\n\n\n/.test(mergeEmail(DEFAULT_EMAIL_TEMPLATES[0]!, v).text));
  }
  // A plain-text email: names go in as they are, no HTML entities.
  const m = mergeEmail({ name: 'x', subject: 'Invoice for {{client}}', body: 'Dear {{client}}, re {{matter}}' }, mergeValues({ ...SOURCE, clientName: 'A & B <Ltd>', matterName: 'Smith "Jr" v. O\'Neil' }));
  assert.equal(m.subject, 'Invoice for A & B <Ltd>');
  assert.equal(m.text, 'Dear A & B <Ltd>, re Smith "Jr" v. O\'Neil\n');
});

test('property: merging leaves no known merge field behind and never changes text without fields', () => {
  const v = mergeValues(SOURCE);
  fc.assert(fc.property(fc.array(fc.oneof(fc.constantFrom(...MERGE_FIELDS.map((f) => `{{${f}}}`)), fc.string().filter((s) => !s.includes('{') && !s.includes('}')))), (parts) => {
    const out = merge(parts.join(''), v);
    for (const f of MERGE_FIELDS) assert.ok(!out.includes(`{{${f}}}`));
    if (parts.every((p) => !p.startsWith('{{'))) assert.equal(out, parts.join(''));
  }));
});

test('template validation names the field and the bad merge field', () => {
  assert.deepEqual(mergeFieldErrors('Hi {{client}} {{clinet}}'), ['unknown merge field {{clinet}}']);
  assert.deepEqual(mergeFieldErrors('Hi {{ client'), ['a "{{" or "}}" that is not a merge field']);
  assert.deepEqual(emailTemplateErrors({ name: 'standard', subject: 'Invoice {{bill_number}}', body: 'Dear {{client}}' }), {});
  const e = emailTemplateErrors({ name: '', subject: '', body: '{{total_due}}' });
  assert.deepEqual(Object.keys(e).sort(), ['body', 'name', 'subject']);
  assert.match(e.body!, /total_due/);
  assert.match(emailTemplateErrors({ name: 'x', subject: 'x'.repeat(201), body: 'b' }).subject!, /200/);
});

test('recipients: the send-to list, or the client\'s address, or nobody', () => {
  const client = { billablePartyEmail: 'ap@northwind.example', clientEmail: 'info@northwind.example' };
  assert.deepEqual(recipients({ sendTo: ['a@x.example', 'A@x.example ', 'b@x.example'], useClientAddress: false }, client), ['a@x.example', 'b@x.example']);
  // The client's address and the typed ones, each once (seed 002: the box populates the address field; typed addresses are never dropped).
  assert.deepEqual(recipients({ sendTo: ['a@x.example'], useClientAddress: true }, client), ['ap@northwind.example', 'a@x.example']);
  assert.deepEqual(recipients({ sendTo: ['AP@northwind.example', 'b@x.example'], useClientAddress: true }, client), ['ap@northwind.example', 'b@x.example']);
  assert.deepEqual(recipients({ sendTo: [], useClientAddress: true }, { billablePartyEmail: null, clientEmail: 'info@northwind.example' }), ['info@northwind.example']);
  assert.deepEqual(recipients({ sendTo: [], useClientAddress: true }, { billablePartyEmail: null, clientEmail: null }), []);
  assert.deepEqual(recipients({ sendTo: [], useClientAddress: false }, client), []);
  assert.deepEqual(recipients(null, client), []);
});

test('a warning when the matter sends to the client\'s address and the client has none', () => {
  const table: [options: { useClientAddress: boolean } | null, billablePartyEmail: string | null, clientEmail: string | null, warned: boolean][] = [
    [{ useClientAddress: true }, null, null, true],
    [{ useClientAddress: true }, '  ', null, true],
    [{ useClientAddress: true }, null, 'info@northwind.example', false],
    [{ useClientAddress: true }, 'ap@northwind.example', null, false],
    [{ useClientAddress: false }, null, null, false],
    [null, null, null, false],
  ];
  for (const [options, billablePartyEmail, clientEmail, warned] of table) {
    assert.equal(missingClientAddress(options, { billablePartyEmail, clientEmail }) !== null, warned, JSON.stringify([options, billablePartyEmail, clientEmail]));
  }
});

test('a manual email\'s key: the same form, bill and content is one message; anything changed is another', () => {
  const form = '0f8e4a52-1c5b-4a8e-9a3b-7c2d1e0f9a11';
  const bill = '0192a7b0-0000-7000-8000-000000000001';
  const m = { to: ['ap@northwind.example'], cc: [], subject: 'Your bill', text: 'Attached.' };
  const key = manualEmailKey(form, bill, m);
  assert.equal(manualEmailKey(form, bill, { ...m, to: ['AP@northwind.example'] }), key, 'addresses compare without case');
  const changed = [
    manualEmailKey('1f8e4a52-1c5b-4a8e-9a3b-7c2d1e0f9a11', bill, m),
    manualEmailKey(form, '0192a7b0-0000-7000-8000-000000000002', m),
    manualEmailKey(form, bill, { ...m, to: ['cfo@northwind.example'] }),
    manualEmailKey(form, bill, { ...m, cc: ['ap@northwind.example'] }),
    manualEmailKey(form, bill, { ...m, subject: 'Your bill (corrected)' }),
    manualEmailKey(form, bill, { ...m, text: 'Attached, corrected.' }),
  ];
  assert.equal(new Set([key, ...changed]).size, changed.length + 1);
  // Moving text between fields is not the same message.
  assert.notEqual(manualEmailKey(form, bill, { ...m, subject: 'a', text: 'bc' }), manualEmailKey(form, bill, { ...m, subject: 'ab', text: 'c' }));
});

test('templates: a stored one overrides the built-in one; the matter\'s name picks; hidden line pricing always wins', () => {
  const all = withDefaults([{ name: 'standard', v: 1 }, { name: 'total-only', v: 1 }], [{ name: 'standard', v: 2 }, { name: 'firm', v: 3 }]);
  assert.deepEqual(all.map((t) => `${t.name}:${t.v}`), ['firm:3', 'standard:2', 'total-only:1']);
  assert.equal(pickTemplate(all, 'firm').v, 3);
  assert.equal(pickTemplate(all, 'unknown').name, 'standard');
  assert.equal(pickTemplate(all, null).name, 'standard');
  // The bill's own template (mass billing, composer) wins when the firm has it; else the matter's.
  const table: [bill: string | null | undefined, matter: string | null | undefined, expected: string][] = [
    ['total-only', 'firm', 'total-only'], [undefined, 'firm', 'firm'], [null, 'total-only', 'total-only'], ['', 'firm', 'firm'],
    ['  ', 'firm', 'firm'], ['unknown', 'firm', 'firm'], ['unknown', 'unknown', 'standard'], ['firm', null, 'firm'], [' firm ', 'standard', 'firm'],
  ];
  for (const [bill, matter, expected] of table) assert.equal(billTemplateFor(all, bill, matter).name, expected, `bill ${bill}, matter ${matter}`);
  assert.deepEqual(effectiveLayout('itemised', { hideLinePricing: false }), { layout: 'itemised', showLinePricing: true });
  assert.deepEqual(effectiveLayout('itemised', { hideLinePricing: true }), { layout: 'itemised', showLinePricing: false });
  assert.deepEqual(effectiveLayout('total_only', { hideLinePricing: false }), { layout: 'total_only', showLinePricing: false });
});

test('a bill template name: blank or one of the firm\'s is fine, any other is refused naming the templates; the choice list keeps an unknown current value, marked', () => {
  const names = ['fixed-fee', 'itemised', 'standard'];
  const table: [name: string | null | undefined, refusal: string | null][] = [
    [undefined, null], [null, null], ['', null], ['  ', null], ['itemised', null], [' itemised ', null],
    ['Itemised', 'no bill template named "Itemised" (templates: fixed-fee, itemised, standard)'],
    ['letterhead-2019', 'no bill template named "letterhead-2019" (templates: fixed-fee, itemised, standard)'],
  ];
  for (const [name, refusal] of table) assert.equal(unknownTemplate(name, names), refusal, String(name));
  assert.deepEqual(templateChoices(names, 'standard', 'The matter\'s'), [['', 'The matter\'s'], ['fixed-fee', 'fixed-fee'], ['itemised', 'itemised'], ['standard', 'standard']]);
  assert.deepEqual(templateChoices(names, '', 'Unchanged').length, 4);
  assert.deepEqual(templateChoices(names, 'old', 'Unchanged').at(-1), ['old', 'old (not a bill template)']);
});

test('a template name that is not one of the firm\'s stops production of the bill, naming it; none named is the standard one', () => {
  const firm = [{ name: 'standard' }, { name: 'total-only' }, { name: 'fixed-fee' }];
  const cases: [kind: 'bill' | 'email', billTemplate: string | null, matterTemplate: string | null, want: RegExp | null][] = [
    ['bill', null, null, null],
    ['bill', null, '', null],
    ['bill', null, 'total-only', null],
    ['bill', '  ', 'total-only', null],
    ['bill', 'fixed-fee', 'total only', null],
    ['bill', null, 'total only', /^The matter's bill template "total only" is not one of the firm's \(standard, total-only, fixed-fee\): choose one in the matter's billing options/],
    // A bill's own name the firm does not have (stored before names were checked) gives way to the matter's, as the PDF does.
    ['bill', 'letterhead-2019', 'standard', null],
    ['bill', 'letterhead-2019', 'total only', /^The matter's bill template "total only"/],
    ['email', null, 'reminder', /^The matter's email template "reminder"/],
    ['email', null, ' total-only ', null],
  ];
  for (const [kind, billTemplate, matterTemplate, want] of cases) {
    const got = missingTemplate(firm, kind, billTemplate, matterTemplate);
    if (want === null) assert.equal(got, null, JSON.stringify([billTemplate, matterTemplate]));
    else assert.match(got ?? '', want, JSON.stringify([billTemplate, matterTemplate]));
  }
});

test('several bills previewed as one PDF: groups of PREVIEW_PDF_BILLS in order, each bill on new pages, the watermark once', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `bill-${i}`);
  const table: [count: number, ranges: [number, number][]][] = [
    [0, []], [1, [[1, 1]]], [2, [[1, 2]]], [PREVIEW_PDF_BILLS, [[1, PREVIEW_PDF_BILLS]]],
    [PREVIEW_PDF_BILLS + 1, [[1, PREVIEW_PDF_BILLS], [PREVIEW_PDF_BILLS + 1, PREVIEW_PDF_BILLS + 1]]],
    [2 * PREVIEW_PDF_BILLS + 3, [[1, PREVIEW_PDF_BILLS], [PREVIEW_PDF_BILLS + 1, 2 * PREVIEW_PDF_BILLS], [2 * PREVIEW_PDF_BILLS + 1, 2 * PREVIEW_PDF_BILLS + 3]]],
  ];
  for (const [count, ranges] of table) {
    const groups = previewPdfGroups(ids(count));
    assert.deepEqual(groups.map((g) => [g.from, g.to]), ranges, `${count} bills`);
    // Every bill is in exactly one link, in order.
    const linked = groups.flatMap((g) => new URL(g.href, 'http://x').searchParams.getAll('bill'));
    assert.deepEqual(linked, ids(count));
    for (const g of groups) assert.ok(g.href.startsWith('/billing/bills/preview.pdf?'));
  }
  const doc = (n: string, mark: string) => `<!doctype html>\n<html><head><title>${n}</title><style>body{}</style></head>\n<body>\n<div class="watermark">${mark}</div>\n<div class="banner">${mark}: not the final bill</div><p>Bill ${n}</p>\n</body>\n</html>`;
  const one = combineBillDocuments([doc('A', 'PREVIEW'), doc('B', 'PREVIEW'), doc('C', 'PREVIEW')]);
  assert.equal(one.match(/<div class="watermark">/g)?.length, 1, 'the fixed watermark once');
  assert.equal(one.match(/not the final bill/g)?.length, 3, 'each bill keeps its banner');
  assert.equal(one.match(/break-before: page/g)?.length, 2, 'bills after the first start a new page');
  assert.ok(one.indexOf('Bill A') < one.indexOf('Bill B') && one.indexOf('Bill B') < one.indexOf('Bill C'), 'in the order given');
  assert.equal(one.match(/<head>/g)?.length, 1);
  assert.match(one, /<title>A<\/title>/);
  const mixed = combineBillDocuments([doc('A', 'DRAFT'), doc('B', 'PREVIEW')]);
  assert.equal(mixed.match(/<div class="watermark" style="position: absolute; top: 90mm">/g)?.length, 2, 'different marks each stay on their own bill');
  assert.equal(mixed.match(/<div class="watermark">/g), null, 'no mark fixed on every page');
  assert.throws(() => combineBillDocuments([]));
  assert.throws(() => combineBillDocuments(ids(PREVIEW_PDF_BILLS + 1).map((n) => doc(n, 'DRAFT'))));
});

test('an approval\'s time (production\'s key for its outputs) is later than the bill\'s last approval, even when the clock has not moved', () => {
  const table: [now: string, previous: string | null, expected: string][] = [
    ['2026-03-02T09:00:00.000Z', null, '2026-03-02T09:00:00.000Z'],
    ['2026-03-02T09:00:05.000Z', '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:05.000Z'],
    ['2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.001Z'],
    ['2026-03-02T08:00:00.000Z', '2026-03-02T09:00:00.000Z', '2026-03-02T09:00:00.001Z'],
  ];
  for (const [now, previous, expected] of table) assert.equal(approvalTime(now, previous), expected, `${now} after ${previous}`);
  const min = Date.parse('2020-01-01T00:00:00Z');
  const max = Date.parse('2040-01-01T00:00:00Z');
  fc.assert(fc.property(fc.integer({ min, max }), fc.option(fc.integer({ min, max })), (nowMs, previousMs) => {
    const now = new Date(nowMs).toISOString();
    const previous = previousMs === null ? null : new Date(previousMs).toISOString();
    const at = approvalTime(now, previous);
    assert.ok(at >= now);
    if (previous !== null) assert.ok(at > previous);
  }));
});

test('manualEmailCovering: a manual email of this approval that reached every address production sends to (the latest), else none', () => {
  const cycle = '2026-03-02T09:00:00.000Z';
  // Recorded before emails carried their approval (cycle null): compared by time.
  const m = (to: string[], sentAt: string) => ({ cycle: null, to, sentAt, sentBy: 'clerk' });
  // Sent for an approval: that approval only, whenever the send finished.
  const forCycle = (c: string, to: string[], sentAt: string) => ({ cycle: c, to, sentAt, sentBy: 'clerk' });
  const both = ['ap@northwind.example', 'cfo@northwind.example'];
  const cases: [string, Parameters<typeof manualEmailCovering>[0], readonly string[], number | null][] = [
    ['no manual email', [], both, null],
    ['nothing to send to', [m(both, '2026-03-02T10:00:00.000Z')], [], null],
    ['sent before this approval', [m(both, '2026-03-01T10:00:00.000Z')], both, null],
    ['sent at the approval', [m(both, cycle)], both, 0],
    ['to one of two', [m(['ap@northwind.example'], '2026-03-02T10:00:00.000Z')], both, null],
    ['to both and more, another case, spaces', [m([' AP@Northwind.example', 'cfo@northwind.example', 'x@firm.example'], '2026-03-02T10:00:00.000Z')], both, 0],
    ['the latest of two that do', [m(both, '2026-03-02T11:00:00.000Z'), m(both, '2026-03-02T12:00:00.000Z'), m(['ap@northwind.example'], '2026-03-02T13:00:00.000Z')], both, 1],
    ['sent for this approval', [forCycle(cycle, both, '2026-03-02T10:00:00.000Z')], both, 0],
    ['sent for the approval before, finished after this one began', [forCycle('2026-03-01T09:00:00.000Z', both, '2026-03-02T10:00:00.000Z')], both, null],
    ['sent for this approval, its clock a little behind', [forCycle(cycle, both, '2026-03-02T08:59:59.999Z')], both, 0],
  ];
  for (const [name, manual, to, index] of cases) assert.equal(manualEmailCovering(manual, cycle, to), index === null ? null : manual[index], name);
});

test('manualEmailPending: a manual email of this approval, to one of production\'s addresses, under way or maybe sent, holds production\'s email until the clerk decides', () => {
  const cycle = '2026-03-02T09:00:00.000Z';
  const now = '2026-03-02T10:00:00.000Z';
  const to = ['ap@northwind.example', 'cfo@northwind.example'];
  type Claim = Parameters<typeof manualEmailPending>[0][number];
  // A claim kept before cycle, addresses and decisions were (compared by time, whatever its addresses).
  const old = (state: 'sending' | 'unconfirmed', createdAt: string, claimedUntil = '2026-03-02T10:01:00.000Z'): Claim => ({ state, createdAt, claimedUntil, cycle: null, to: null, decidedAt: null });
  // A claim for an approval, to addresses.
  const c = (state: 'sending' | 'unconfirmed', more: Partial<Claim> = {}): Claim => ({ state, createdAt: '2026-03-02T09:30:00.000Z', claimedUntil: '2026-03-02T10:01:00.000Z', cycle, to: ['AP@northwind.example '], decidedAt: null, ...more });
  const cases: [string, Claim[], ReturnType<typeof manualEmailPending>][] = [
    ['no claim', [], null],
    ['being sent', [c('sending')], 'sending'],
    ['the server did not confirm it', [c('unconfirmed')], 'unconfirmed'],
    ['its sender stopped (the lease ran out)', [c('sending', { claimedUntil: '2026-03-02T09:59:59.999Z' })], 'stopped'],
    ['a lease ending now is still held', [c('sending', { claimedUntil: now })], 'sending'],
    ['for an earlier approval, though made after this one (clocks apart)', [c('unconfirmed', { cycle: '2026-03-01T09:00:00.000Z', createdAt: '2026-03-02T09:30:00.000Z' })], null],
    ['for this approval, though made before it by the clock of another server', [c('sending', { createdAt: '2026-03-02T08:59:58.000Z' })], 'sending'],
    ['to other addresses only', [c('unconfirmed', { to: ['colleague@firm.example'] })], null],
    ['to one of production\'s among others', [c('unconfirmed', { to: ['colleague@firm.example', 'cfo@northwind.example'] })], 'unconfirmed'],
    ['decided on by the clerk', [c('unconfirmed', { decidedAt: '2026-03-02T09:45:00.000Z' })], null],
    ['decided on, and another being sent since', [c('unconfirmed', { decidedAt: '2026-03-02T09:45:00.000Z' }), c('sending', { createdAt: '2026-03-02T09:50:00.000Z' })], 'sending'],
    ['kept before: made after the approval', [old('unconfirmed', '2026-03-02T09:30:00.000Z')], 'unconfirmed'],
    ['kept before: made at the approval', [old('sending', cycle)], 'sending'],
    ['kept before: made before the approval', [old('unconfirmed', '2026-03-01T09:00:00.000Z')], null],
    ['one under way and one maybe sent', [c('sending'), c('unconfirmed')], 'unconfirmed'],
    ['one stopped, then one not confirmed', [c('sending', { claimedUntil: '2026-03-02T09:40:00.000Z' }), c('unconfirmed')], 'unconfirmed'],
    ['one under way, then one stopped', [c('sending'), c('sending', { claimedUntil: '2026-03-02T09:40:00.000Z' })], 'stopped'],
  ];
  for (const [name, claims, expected] of cases) assert.equal(manualEmailPending(claims, cycle, now, to), expected, name);
});

test('manualEmailsOfCycle: the manual emails that sent this approval (recorded for it, or without one sent at or after it), oldest first', () => {
  const cycle = '2026-03-02T10:00:00.000Z';
  const m = (c: string | null, sentAt: string) => ({ cycle: c, to: ['ap@client.example'], sentAt, sentBy: 'clerk' });
  const cases: [string, ReturnType<typeof m>[], string[]][] = [
    ['none', [], []],
    ['recorded for this approval', [m(cycle, '2026-03-02T11:00:00.000Z')], ['2026-03-02T11:00:00.000Z']],
    ['recorded for an earlier approval, even if it finished later', [m('2026-03-01T09:00:00.000Z', '2026-03-02T12:00:00.000Z')], []],
    ['no approval recorded, sent after it', [m(null, '2026-03-02T10:00:00.001Z')], ['2026-03-02T10:00:00.001Z']],
    ['no approval recorded, sent at it', [m(null, cycle)], [cycle]],
    ['no approval recorded, sent before it', [m(null, '2026-03-02T09:59:59.999Z')], []],
    ['several, oldest first', [m(cycle, '2026-03-02T13:00:00.000Z'), m(null, '2026-03-02T11:00:00.000Z'), m('x', '2026-03-02T12:00:00.000Z')], ['2026-03-02T11:00:00.000Z', '2026-03-02T13:00:00.000Z']],
  ];
  for (const [name, emails, want] of cases) assert.deepEqual(manualEmailsOfCycle(emails, cycle).map((e) => e.sentAt), want, name);
});
