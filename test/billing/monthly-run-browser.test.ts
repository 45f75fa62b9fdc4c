/**
 * The firm's monthly billing run, end to end in real Chromium against the served app, on
 * both databases (issue 5's "Done when"): the demo firm is seeded, a billing clerk signs in
 * through the login page, opens Mass billing from the billing index, sets the invoice and
 * up-to dates, checks the eligible list against the rules worked out from the matters
 * module's own records, bills all (with the confirmation) and watches the run finish; on
 * Draft bills puts one on hold, selects all and approves (the held one refused with its
 * reason); on Bill production produces all (with the confirmation) and watches it finish.
 *
 * Then: every produced bill is finalised (JSON API); a real SMTP server on 127.0.0.1 got one
 * mail per bill whose matter has send-to addresses (none for the others) with the PDF
 * attached, whose text (pdftotext) shows the bill's number and total exactly; the print
 * folder holds each matter's number of copies; the bill page links its stored PDF; and a
 * second Bill all drafts nothing, with every WIP item on at most one live bill.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Page } from 'puppeteer-core';
import { DEMO_PASSWORD, seedDemo } from '../../src/cli/demo.ts';
import { createMattersCommands } from '../../src/modules/matters/index.ts';
import type { MattersCommands } from '../../src/modules/matters/index.ts';
import { formatMoney, parseAmount } from '../../src/shared/money.ts';
import { eachDialect } from '../support/db.ts';
import { startApp } from '../support/app.ts';
import { launchChromium, serveRuntime, signIn, watchedPage } from '../support/browser.ts';
import { pdfText } from '../adapters/pdf.ts';
import { attachmentOf, startSmtp } from '../adapters/smtp.ts';
import { closeSharedPdf, filesIn, outputDirs, removeDirs, testOutputs } from './production-support.ts';
import { ctx } from './support.ts';

after(closeSharedPdf);

/**
 * The demo firm: 12 matters x 10 entries from a fixed seed: one excluded matter, one billing
 * expenses only, individual clients (billed to the client itself), a quoted matter, a
 * fixed-fee matter with no instalment due, hidden and no-charge entries.
 */
const SEED = 17;
const INVOICE_DATE = '2026-03-02';
const UP_TO = '2026-02-27';
const CLERK = 'billing@demo.lexbill.test';
const WAIT_MS = 45_000;

interface Expected {
  /** File numbers mass billing must offer. */
  eligible: Set<string>;
  /** File numbers excluded from mass billing. */
  excluded: string[];
}

/**
 * Seed 001/004's selection rules applied to the matters module's own records (not billing's
 * copy): open for billing, not excluded, a billable party, and unbilled work up to the date
 * (hidden entries are never billed; quoted products add nothing to WIP), or a fixed fee due.
 */
async function expectedEligible(m: MattersCommands, invoiceDate: string, upTo: string): Promise<Expected> {
  const eligible = new Set<string>();
  const excluded: string[] = [];
  for (const matter of await m.listMatters()) {
    const o = (await m.getBillingOptions(matter.id)).effective;
    const details = await m.getMatterDetails(matter.id);
    if (o.massBilling.exclude) excluded.push(matter.fileNumber);
    const active = o.billingEnabled && o.billingStatus !== 'closed' && !(o.billingStatus === 'use_matter_status' && matter.status === 'closed');
    // Only chargeable items make a matter billable: hidden ones are never billed, no-charge ones
    // wait for a bill that charges something.
    const open = (x: { status: string; behaviour: string }) => x.status === 'unbilled' && x.behaviour === 'bill';
    const time = (await m.listTimeEntries(matter.id)).filter((e) => open(e) && e.workDate <= upTo).length;
    const charges = (await m.listFixedCharges(matter.id)).filter((c) => open(c) && !c.quoted && c.chargedOn <= upTo).length;
    const disbursements = (await m.listDisbursements(matter.id)).filter((d) => open(d) && d.incurredOn <= upTo).length;
    // An every-cycle fee is due on its own when its cycle has come (with no cycle it rides on
    // bills made for work: the time is written to it).
    const cycleCome = matter.nextBillingDate === null || matter.nextBillingDate <= invoiceDate;
    const fixedFeeDue = o.arrangement === 'fixed_fee' && (o.fixedFee.mode === 'every_cycle'
      ? matter.billingCycle !== 'none' && cycleCome
      : o.fixedFee.schedule.some((r) => r.invoiceNumber === null && r.billOn <= invoiceDate));
    const feeRides = o.arrangement === 'fixed_fee' && o.fixedFee.mode === 'every_cycle' && (matter.billingCycle === 'none' || cycleCome);
    // A fixed-fee matter's time waits for its next instalment.
    const fees = o.arrangement === 'fixed_fee' && !fixedFeeDue && !feeRides ? charges : time + charges;
    const work = o.massBilling.onlyExpenses ? disbursements > 0 : fees + disbursements > 0 || fixedFeeDue;
    if (active && !o.massBilling.exclude && details.billableParty !== null && work) eligible.add(matter.fileNumber);
  }
  return { eligible, excluded };
}

/** Who the bill of a matter goes to, from the matters module's records. */
async function recipientsOf(m: MattersCommands, matterId: string): Promise<string[]> {
  const o = (await m.getBillingOptions(matterId)).effective;
  if (!o.useClientAddress) return [...o.sendTo].sort();
  const d = await m.getMatterDetails(matterId);
  const client = await m.findClient(d.clientId);
  const to = d.billableParty?.email ?? client?.email ?? null;
  return to ? [to] : [];
}

async function setDate(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(selector, (el, v) => {
    const input = el as unknown as { value: string; dispatchEvent(e: Event): boolean };
    input.value = v as string;
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

async function click(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

const texts = (page: Page, selector: string) => page.$$eval(selector, (els) => els.map((e) => (e.textContent ?? '').trim()));

eachDialect('the monthly billing run in Chromium: mass billing, approve, produce; SMTP gets each bill with its PDF; nothing billed twice', async (db) => {
  const smtp = await startSmtp();
  const dirs = outputDirs();
  const outputs = testOutputs(dirs, { smtpPort: smtp.port });
  const t = await startApp(db, { outputs, start: `${INVOICE_DATE}T09:00:00Z` });
  const server = await serveRuntime(t.runtime);
  const chrome = await launchChromium();
  try {
    await seedDemo(t.runtime, { matters: 12, entriesPerMatter: 10, seed: SEED });
    const matters = createMattersCommands({ db: t.db.db, clock: t.clock, relay: t.runtime.relay });
    // One matter that is not emailed and prints two copies (the demo emails every bill).
    const quiet = (await matters.findMatterByFileNumber('1.1'))!;
    await matters.setBillingOptions(ctx, quiet.id, { set: { useClientAddress: false, sendTo: [], copiesToPrint: 2 } });
    await t.runtime.relay.drain();
    const expected = await expectedEligible(matters, INVOICE_DATE, UP_TO);
    assert.ok(expected.excluded.length > 0, 'the demo seed has a matter excluded from mass billing');
    assert.ok(expected.eligible.size >= 8, `eligible ${expected.eligible.size}`);

    const { page, problems } = await watchedPage(chrome.browser);

    // Sign in as the demo firm's billing clerk.
    await signIn(page, server.url, CLERK, DEMO_PASSWORD);

    // The billing index leads to the run's pages.
    await page.goto(`${server.url}/billing`);
    const nav = await page.$$eval('#billing-nav a', (els) => els.map((e) => [e.getAttribute('data-nav'), e.getAttribute('href')]));
    assert.deepEqual(nav, [['mass', '/billing/mass'], ['drafts', '/billing/drafts'], ['production', '/billing/production'], ['bills', '/billing/bills'], ['settings', '/billing/settings']]);
    await click(page, '#billing-nav a[data-nav="mass"]');

    // ---- Mass billing: the dates, then the eligible list as the rules say ------------------------
    await setDate(page, '#mass-filters input[name=invoiceDate]', INVOICE_DATE);
    await setDate(page, '#mass-filters input[name=upTo]', UP_TO);
    await click(page, '#mass-filters button[type=submit]');
    assert.match(page.url(), new RegExp(`invoiceDate=${INVOICE_DATE}.*upTo=${UP_TO}`));
    const listed = await texts(page, '#mass-list tr[data-matter] .file-no');
    assert.deepEqual([...listed].sort(), [...expected.eligible].sort(), 'the eligible list is what the rules say');
    assert.equal(await page.$eval('#eligible-count', (e) => e.getAttribute('data-count')), String(expected.eligible.size));
    for (const f of expected.excluded) assert.ok(!listed.includes(f), `${f} is excluded from mass billing`);
    // Why is the excluded matter missing? (htmx lookup in place.)
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    await page.type('#why-lookup input[name=lookup]', expected.excluded[0]!);
    await page.click('#why-lookup button[type=submit]');
    await page.waitForFunction("/excluded from mass billing/.test(document.querySelector('#why-result').textContent)", { timeout: WAIT_MS });

    // A run choice changed but not shown yet: the run buttons wait for "Show matters" (they bill what is listed).
    await page.$eval('#mass-filters input[name=invoiceDate]', (el: any) => { el.value = '2031-01-31'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    assert.deepEqual(await page.$$eval('#mass-run button[name=scope]', (els) => els.map((e: any) => Boolean(e.disabled))), [true, true]);
    assert.match(await page.$eval('#mass-run [data-stale]', (e) => e.textContent ?? ''), /Show matters/);
    await setDate(page, '#mass-filters input[name=invoiceDate]', INVOICE_DATE);
    await click(page, '#mass-filters button[type=submit]');
    assert.deepEqual(await page.$$eval('#mass-run button[name=scope]', (els) => els.map((e: any) => Boolean(e.disabled))), [false, false]);

    // Bill all → the confirmation → one run, polled until done.
    await click(page, '#mass-run button[data-action="bill-all"]');
    assert.match(await page.$eval('#confirm-text', (e) => e.textContent ?? ''), new RegExp(`invoice date ${INVOICE_DATE}, fees and disbursements up to ${UP_TO}, each matter's own bill template, the firm's payment terms \\(30 days\\)`));
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), new RegExp(`Bill ${expected.eligible.size} matter\\(s\\)\\?`));
    assert.equal(await db.db.selectFrom('billing_batch').select('id').executeTakeFirst(), undefined, 'nothing before the confirmation');
    await click(page, '#mass-confirm button[data-action="confirm"]');
    const runId = /\/billing\/mass\/runs\/([^/?#]+)$/.exec(page.url())?.[1];
    assert.ok(runId, page.url());
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    // Back from the run page: the confirmation as the browser kept it (not "Confirm Form Resubmission"); confirmed
    // again, it is the same run (its id), nothing drafted twice.
    await page.goBack();
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), new RegExp(`Bill ${expected.eligible.size} matter\\(s\\)\\?`), page.url());
    await click(page, '#mass-confirm button[data-action="confirm"]');
    assert.equal(/\/billing\/mass\/runs\/([^/?#]+)$/.exec(page.url())?.[1], runId, 'the same run');
    await page.waitForFunction("document.querySelector('#run-status')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    assert.equal(await page.$eval('#run-drafted', (e) => e.textContent), String(expected.eligible.size), 'every eligible matter drafted');
    assert.equal(await page.$eval('#run-skipped', (e) => e.textContent), '0');
    const drafts = await db.db.selectFrom('billing_bill').select(['id', 'file_number', 'batch_id', 'status']).execute();
    assert.deepEqual(drafts.map((d) => d.file_number).sort(), [...expected.eligible].sort(), 'one draft per eligible matter');
    assert.ok(drafts.every((d) => d.batch_id === runId && d.status === 'draft'), 'all in the run\'s batch');

    // ---- Draft bills: hold one, select all, approve ----------------------------------------------
    await click(page, '#run-status a[data-action="review"]');
    assert.match(page.url(), new RegExp(`/billing/drafts\\?batch=${runId}`));
    assert.equal(await page.$eval('#drafts-total', (e) => e.getAttribute('data-count')), String(drafts.length));
    const held = (await page.$$eval('#drafts tr[data-bill]', (els) => els.map((e) => e.getAttribute('data-bill')!))).pop()!;
    assert.notEqual(drafts.find((d) => d.id === held)?.file_number, quiet.fileNumber, 'the quiet matter\'s bill is produced');
    await page.click(`#drafts input[name="id"][value^="${held}@"]`);
    await click(page, '#drafts-form button[data-action="hold"]');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), '1');
    await page.click('#select-every');
    await click(page, '#drafts-form button[data-action="approve"]');
    await click(page, 'button[data-action="confirm-approve"]');
    const approvedCount = drafts.length - 1;
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-action')), 'approve');
    assert.equal(await page.$eval('#results', (e) => e.getAttribute('data-done')), String(approvedCount));
    const refused = await page.$$eval('#results li[data-refused]', (els) => els.map((e) => [e.getAttribute('data-refused'), e.textContent ?? '']));
    assert.equal(refused.length, 1, 'the held bill is refused');
    assert.equal(refused[0]![0], held);
    assert.match(refused[0]![1], /on hold/i, 'with its reason');
    const statuses = await db.db.selectFrom('billing_bill').select(['id', 'status']).execute();
    assert.equal(statuses.filter((s) => s.status === 'approved').length, approvedCount);
    assert.deepEqual(statuses.filter((s) => s.status === 'draft').map((s) => s.id), [held]);

    // ---- Bill production: produce all -------------------------------------------------------------
    await click(page, '#results a[href="/billing/production"]');
    await page.waitForFunction("typeof window.htmx !== 'undefined'");
    assert.equal((await page.$$('#production-bills tr[data-bill]')).length, approvedCount);
    assert.deepEqual(await page.$$eval('#production-toolbar [data-action]', (els) => els.map((e) => e.getAttribute('data-action'))), ['produce_all', 'preview_all', 'revert_all']);
    await click(page, '#production-toolbar [data-action="produce_all"]');
    assert.match(await page.$eval('h1', (e) => e.textContent ?? ''), new RegExp(`Produce ${approvedCount} bills`));
    await click(page, '[data-action="confirm-produce"]');
    assert.match(page.url(), /\/billing\/production\/runs\/[0-9a-f-]{36}$/);
    await page.waitForFunction("document.querySelector('#production-progress')?.getAttribute('data-status') === 'done'", { timeout: WAIT_MS });
    assert.equal(await page.$eval('#production-progress', (e) => e.getAttribute('data-done')), String(approvedCount), await page.$eval('#production-progress', (e) => e.outerHTML));
    assert.equal(await page.$eval('#production-progress', (e) => e.getAttribute('data-failed')), '0');
    const produced = await page.$$eval('#production-items tr[data-outcome="done"]', (els) => els.map((e) => e.getAttribute('data-bill')!));
    assert.equal(produced.length, approvedCount);

    // ---- Every produced bill is finalised (JSON API), mailed and printed as its matter says ----
    const token = await t.token(CLERK);
    let mailed = 0;
    let copies = 0;
    const printed = filesIn(dirs.print);
    for (const id of produced) {
      const res = await fetch(`${server.url}/api/v1/bills/${id}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
      assert.equal(res.status, 200);
      const bill = await res.json() as { id: string; matterId: string; fileNumber: string; status: string; number: string; currency: string; totals: { total: string } };
      assert.equal(bill.status, 'finalised', `${bill.fileNumber} is finalised`);
      const totalText = formatMoney(parseAmount(bill.totals.total, bill.currency), bill.currency);
      const to = await recipientsOf(matters, bill.matterId);
      const mails = smtp.messages.filter((msg) => attachmentOf(msg.raw)?.filename === `bill-${bill.number}.pdf`);
      if (to.length === 0) {
        assert.equal(mails.length, 0, `no mail for ${bill.number}: its matter has no send-to address`);
      } else {
        assert.equal(mails.length, 1, `one mail for ${bill.number}`);
        assert.deepEqual([...mails[0]!.to].sort(), to);
        const text = pdfText(attachmentOf(mails[0]!.raw)!.bytes);
        assert.ok(text.includes(bill.number), `the PDF shows ${bill.number}`);
        assert.ok(text.includes(totalText), `the PDF of ${bill.number} shows its total ${totalText}`);
        mailed++;
      }
      const want = (await matters.getBillingOptions(bill.matterId)).effective.copiesToPrint;
      assert.equal(printed.filter((f) => f.startsWith(`${bill.number}-`)).length, want, `${want} copies of ${bill.number}`);
      copies += want;
    }
    assert.equal(smtp.messages.length, mailed, 'no other mail');
    assert.ok(mailed > 0 && mailed < produced.length, 'some bills mailed, the quiet matter\'s not');
    assert.equal(printed.length, copies, 'no other print file');
    assert.ok(printed.some((f) => /copy2of2\.pdf$/.test(f)), 'two copies for the quiet matter');

    // The bill page links its stored PDF; the held draft links a preview.
    await page.goto(`${server.url}/billing/bills/${produced[0]}`);
    assert.equal(await page.$eval('a[data-pdf]', (e) => [e.getAttribute('data-pdf'), e.getAttribute('href')].join(' ')), `final /billing/bills/${produced[0]}/pdf`);
    const pdf = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return { status: r.status, type: r.headers.get('content-type'), head: new TextDecoder().decode((await r.arrayBuffer()).slice(0, 5)) };
    }, `/billing/bills/${produced[0]}/pdf`);
    assert.deepEqual(pdf, { status: 200, type: 'application/pdf', head: '%PDF-' });
    await page.goto(`${server.url}/billing/bills/${held}`);
    assert.equal(await page.$eval('a[data-pdf]', (e) => [e.getAttribute('data-pdf'), e.getAttribute('href')].join(' ')), `preview /billing/bills/${held}/pdf?preview=1`);

    // ---- Nothing billed twice: Bill all again drafts nothing -------------------------------------
    const billsBefore = (await db.db.selectFrom('billing_bill').select('id').execute()).length;
    await page.goto(`${server.url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const again = await texts(page, '#mass-list tr[data-matter] .file-no');
    for (const f of [...expected.excluded, drafts.find((d) => d.id === held)!.file_number as string]) assert.ok(!again.includes(f), `${f} is not offered`);
    // Everything billable was billed: nothing is offered again (hidden and no-charge items alone, a
    // quote with no work, fixed-fee time between instalments never make a bill).
    assert.deepEqual(again, [], 'nothing is offered a second time');
    assert.equal(await page.$eval('#eligible-count', (e) => e.getAttribute('data-count')), '0');
    assert.equal((await db.db.selectFrom('billing_bill').select('id').execute()).length, billsBefore, 'no new bill');

    // Every WIP item is on one live bill at most, and the matters module agrees on what is billed.
    const lines = await db.db.selectFrom('billing_bill_line as l').innerJoin('billing_bill as b', 'b.id', 'l.bill_id')
      .select(['l.item_id', 'b.status', 'l.bill_id']).where('l.item_id', 'is not', null).where('b.status', '<>', 'deleted').execute();
    const onBills = new Map<string, Set<string>>();
    for (const l of lines) {
      const set = onBills.get(l.item_id as string) ?? new Set<string>();
      set.add(l.bill_id as string);
      onBills.set(l.item_id as string, set);
    }
    for (const [item, bills] of onBills) assert.equal(bills.size, 1, `item ${item} is on ${bills.size} live bills`);
    const finalisedItems = new Set(lines.filter((l) => l.status === 'finalised').map((l) => l.item_id as string));
    await t.runtime.relay.drain();
    const billedInMatters = new Set<string>();
    for (const m of await matters.listMatters()) {
      for (const e of [...await matters.listTimeEntries(m.id), ...await matters.listDisbursements(m.id), ...await matters.listFixedCharges(m.id)]) {
        if (e.status === 'billed') billedInMatters.add(e.id);
      }
    }
    assert.deepEqual([...billedInMatters].sort(), [...finalisedItems].sort(), 'matters marks billed exactly the items on finalised bills');
    assert.deepEqual(problems, [], 'no console errors, no CSP violations');
  } finally {
    await chrome.close();
    await server.close();
    await t.close();
    await outputs.close();
    await smtp.close();
    removeDirs(dirs);
  }
}, { timeout: 120_000 });
