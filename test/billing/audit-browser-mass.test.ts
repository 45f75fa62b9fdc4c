/**
 * Audit: seed 001 on the mass billing page: "You can click on the names or matter IDs of the
 * matters to open their respective bills and make any last-minute changes." Each listed row's
 * file number and matter name open the composer on the bill the row says it will bill.
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { eachDialect } from '../support/db.ts';
import { closeSharedPdf } from './production-support.ts';
import { click, INVOICE_DATE, UP_TO, withDemoClerk } from './browser-support.ts';

after(closeSharedPdf);

eachDialect('audit: seed 001: a mass billing row\'s file number and name open its bill in the composer', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 6 }, async ({ page, problems, url }) => {
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const rows = await page.$$eval('#mass-list tr[data-matter]', (trs) => trs.map((tr) => ({
      file: tr.querySelector('.file-no a')?.getAttribute('href') ?? null,
      name: tr.querySelector('td:nth-child(3) a')?.getAttribute('href') ?? null,
      composer: tr.querySelector('a[data-compose]')!.getAttribute('href'),
      willBill: tr.querySelector('.will-bill')!.getAttribute('data-minor'),
    })));
    assert.ok(rows.length > 0);
    for (const r of rows) {
      assert.equal(r.file, r.composer, 'the file number opens the bill in the composer');
      assert.equal(r.name, r.composer, 'the matter name opens the bill in the composer');
    }
    // The composer opens on what the row said it will bill.
    await Promise.all([page.waitForNavigation(), page.click('#mass-list tr[data-matter] .file-no a')]);
    assert.equal(await page.$eval('[data-total="total"]', (e) => e.getAttribute('data-minor')), rows[0]!.willBill);

    // Boxes ticked on the list, then a row's bill changed in the composer and saved: back on the
    // list, those boxes are still ticked and the saved draft is listed (ticked) beside them.
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const ids = await page.$$eval('#mass-list tr[data-matter]', (trs) => trs.map((tr) => tr.getAttribute('data-matter')!));
    assert.ok(ids.length >= 4, String(ids.length));
    for (const id of [ids[1]!, ids[3]!]) await page.click(`#mass-list input[name="matterId"][value="${id}"]`);
    await Promise.all([page.waitForNavigation(), page.click(`#mass-list tr[data-matter="${ids[0]}"] a[data-compose]`)]);
    await Promise.all([page.waitForNavigation(), page.click('button[name="_action"][value="save"]')]);
    assert.match(page.url(), /\/billing\/mass\?/);
    const ticked = await page.$$eval('#mass-list input[name="matterId"]:checked', (els) => els.map((e) => (e as unknown as { value: string }).value));
    assert.deepEqual(ticked.sort(), [ids[1]!, ids[3]!].sort(), 'the boxes ticked before the composer are ticked again');
    const hand = await page.$$eval('#hand-drafts input[name="handDraft"]', (els) => els.map((e) => (e as unknown as { checked: boolean }).checked));
    assert.deepEqual(hand, [true], 'the draft saved is listed, ticked');
    // Unticked there, then another row's composer: it comes back unticked (still listed), the ticks kept.
    await page.click('#hand-drafts input[name="handDraft"]');
    await Promise.all([page.waitForNavigation(), page.click(`#mass-list tr[data-matter="${ids[2]}"] a[data-compose]`)]);
    await Promise.all([page.waitForNavigation(), page.click('button[name="_action"][value="save"]')]);
    const after = await page.$$eval('#hand-drafts input[name="handDraft"]', (els) => els.map((e) => (e as unknown as { checked: boolean }).checked).sort());
    assert.deepEqual(after, [false, true], 'the first draft left unticked, the second ticked');
    assert.deepEqual((await page.$$eval('#mass-list input[name="matterId"]:checked', (els) => els.map((e) => (e as unknown as { value: string }).value))).sort(), [ids[1]!, ids[3]!].sort());

    // The link is set as the pointer goes down on it (a middle-click, "Open in new tab"), from the link as drawn each time;
    // past the server's limit on \`back\` only the drafts' ticks go along, and past that too, the link as drawn.
    const linkBack = (id: string, press: number | null) => page.evaluate(`(() => {
      const a = document.querySelector('#mass-list tr[data-matter="${id}"] a[data-compose]');
      ${press === null ? '' : `a.dispatchEvent(new MouseEvent('mousedown', { bubbles: true, button: ${press} }));`}
      return new URL(a.getAttribute('href'), location.href).searchParams.get('back') || '';
    })()`) as Promise<string>;
    const backOf = (id: string, button: number) => linkBack(id, button);
    const drawnBack = await linkBack(ids[3]!, null);
    const full = new URLSearchParams(await backOf(ids[3]!, 1));
    assert.deepEqual(full.getAll('matterId').sort(), [ids[1]!, ids[3]!].sort(), 'a middle-click carries the ticks');
    assert.equal(full.getAll('handDraft').length + full.getAll('handOff').length, 2);
    await page.click(`#mass-list input[name="matterId"][value="${ids[1]}"]`);
    assert.deepEqual(new URLSearchParams(await backOf(ids[3]!, 0)).getAll('matterId'), [ids[3]!], 'set again from the link as drawn: the box unticked since is gone');
    const handOnly = full.toString().replace(/&?matterId=[^&]+/g, '').length;
    await page.$eval('form#mass-run', (f, n) => f.setAttribute('data-back-max', String(n)), handOnly + 5);
    const trimmed = new URLSearchParams(await backOf(ids[3]!, 0));
    assert.deepEqual([trimmed.getAll('matterId'), trimmed.getAll('handDraft').length + trimmed.getAll('handOff').length], [[], 2], 'too long: the drafts\' ticks only');
    await page.$eval('form#mass-run', (f) => f.setAttribute('data-back-max', '10'));
    assert.equal(await backOf(ids[3]!, 0), drawnBack, 'too long even so: the link as drawn');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 120_000 });

eachDialect('mass billing and Draft bills: the heading box ticks and unticks every row on the page (shown only with JavaScript)', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 2 }, async ({ page, problems, url }) => {
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const ticked = (name: string) => page.$$eval(`tbody input[type="checkbox"][name="${name}"]`, (bs) => bs.map((b) => (b as unknown as { checked: boolean }).checked));
    assert.equal(await page.$eval('input[data-check-all="matterId"]', (b) => (b as unknown as { hidden: boolean }).hidden), false, 'shown with JavaScript');
    const before = await ticked('matterId');
    assert.ok(before.length >= 2 && before.every((c) => !c), JSON.stringify(before));
    await page.click('input[data-check-all="matterId"]');
    assert.ok((await ticked('matterId')).every((c) => c), 'every matter ticked');
    await page.click('input[data-check-all="matterId"]');
    assert.ok((await ticked('matterId')).every((c) => !c), 'every matter unticked');
    // Bill all: then the drafts list's heading box ticks every draft on its page.
    await page.click('input[data-check-all="matterId"]');
    await Promise.all([page.waitForNavigation(), page.click('button[data-action="bill-selected"]')]);
    await Promise.all([page.waitForNavigation(), page.click('button[data-action="confirm"]')]);
    await page.waitForSelector('a[data-action="review"]', { timeout: 60_000 });
    await Promise.all([page.waitForNavigation(), page.click('a[data-action="review"]')]);
    const drafts = await ticked('id');
    assert.equal(drafts.length, before.length, 'a draft per matter ticked');
    await page.click('input[data-check-all="id"]');
    assert.ok((await ticked('id')).every((c) => c), 'every draft ticked');
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 180_000 });

eachDialect('mass billing: typing in the Client filter fills its suggestions (htmx), and the list filters by the client chosen', async (db) => {
  await withDemoClerk(db, { matters: 6, entriesPerMatter: 2 }, async ({ page, problems, url }) => {
    await page.goto(`${url}/billing/mass?invoiceDate=${INVOICE_DATE}&upTo=${UP_TO}`);
    const clients = await page.$$eval('#mass-list tr[data-matter] td:nth-child(4)', (tds) => tds.map((td) => td.textContent!.trim()));
    assert.ok(clients.length >= 2, JSON.stringify(clients));
    const name = clients[0]!;
    await page.type('input[name="client"]', name.slice(0, 5));
    await page.waitForFunction("document.querySelectorAll('#client-options option').length > 0", { timeout: 10_000 });
    const options = await page.$$eval('#client-options option', (os) => os.map((o) => ({ value: o.getAttribute('value')!, label: o.getAttribute('label')! })));
    const chosen = options.find((o) => o.label.endsWith(` ${name}`));
    assert.ok(chosen, `${name} suggested among ${JSON.stringify(options)}`);
    // Choosing the suggestion puts its number in the field; the list is that client's matters.
    await page.$eval('input[name="client"]', (i, v) => { (i as unknown as { value: string }).value = v; }, chosen.value);
    await Promise.all([page.waitForNavigation(), page.$eval('#mass-filters', (f) => (f as unknown as { requestSubmit(): void }).requestSubmit())]);
    const after = await page.$$eval('#mass-list tr[data-matter] td:nth-child(4)', (tds) => tds.map((td) => td.textContent!.trim()));
    assert.ok(after.length >= 1 && after.every((c) => c === name), JSON.stringify(after));
    assert.equal(after.length, clients.filter((c) => c === name).length, 'every matter of the client listed (one page)');
    assert.match(await page.$eval('#client-chosen', (e) => e.textContent!), new RegExp(`${chosen.value} `));
    assert.deepEqual(problems, [], 'no console errors');
  });
}, { timeout: 120_000 });
