// Lexbill browser glue (no inline scripts: the CSP forbids them).
// Every htmx request carries the session's CSRF token from the page's meta tag.
document.addEventListener('htmx:config:request', (evt) => {
  const token = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content');
  const request = evt.detail && evt.detail.ctx && evt.detail.ctx.request;
  if (token && request) request.headers['X-CSRF-Token'] = token;
});

// Mass billing: Bill all / Bill selected bill what the list shows, with the choices it was
// listed under. A choice changed above and not yet shown would not be used, so the buttons
// wait until "Show matters" lists the matters again.
function massChoicesChanged(evt) {
  const target = evt.target;
  if (!target || !target.closest || !target.closest('#mass-filters')) return;
  const run = document.getElementById('mass-run');
  if (!run || run.querySelector('[data-stale]')) return;
  for (const b of run.querySelectorAll('button[name="scope"]')) b.disabled = true;
  const note = document.createElement('p');
  note.className = 'notice';
  note.setAttribute('role', 'status');
  note.setAttribute('data-stale', '');
  note.textContent = 'Your choices changed: press "Show matters" to list the matters under them before billing.';
  run.prepend(note);
}
document.addEventListener('input', massChoicesChanged);
document.addEventListener('change', massChoicesChanged);

// Lists with a box per row (mass billing's matters, Draft bills, bill production): a heading
// box ticks or unticks every row on this page, and shows ticked when every row is. Without
// JavaScript it stays hidden (rows are ticked one by one). It listens in the capture phase, so
// the rows are ticked before a list's own change handler (production's htmx toolbar) reads them.
function showCheckAll(root) {
  for (const box of root.querySelectorAll('input[data-check-all][hidden]')) {
    box.hidden = false;
    // Shown ticked when the page came with every row ticked (production's ?bill=...).
    const rows = box.closest('table')?.querySelectorAll(`tbody input[type="checkbox"][name="${box.getAttribute('data-check-all')}"]`) ?? [];
    box.checked = rows.length > 0 && [...rows].every((row) => row.checked);
  }
}
document.addEventListener('DOMContentLoaded', () => showCheckAll(document));
document.addEventListener('htmx:after:swap', () => showCheckAll(document));
document.addEventListener('change', (evt) => {
  const box = evt.target;
  if (!box || !box.matches) return;
  const table = box.closest && box.closest('table');
  if (!table) return;
  if (box.matches('input[data-check-all]')) {
    for (const row of table.querySelectorAll(`tbody input[type="checkbox"][name="${box.getAttribute('data-check-all')}"]`)) row.checked = box.checked;
    return;
  }
  if (!box.matches('tbody input[type="checkbox"][name]')) return;
  const head = table.querySelector(`thead input[data-check-all="${box.getAttribute('name')}"]`);
  if (head) head.checked = [...table.querySelectorAll(`tbody input[type="checkbox"][name="${box.getAttribute('name')}"]`)].every((row) => row.checked);
}, true);

// Mass billing: a row's links open its bill in the composer, which comes back to the list with
// the draft saved. The boxes ticked since the page was drawn go along in the link's `back` (the
// list's address), so saving one bill does not untick the others. The link is set when the
// pointer goes down on it (any button: a click, a middle-click, "Open in new tab") and on a
// click (the keyboard's Enter), each time from the link as drawn. The server takes a `back` of
// at most the form's data-back-max characters: past that, the drafts' ticks only go along, and
// past that too, the link as drawn. Without JavaScript the link comes back as it was drawn.
function massComposerLink(evt) {
  const link = evt.target && evt.target.closest && evt.target.closest('form#mass-run a[href*="/compose?"]');
  if (!link) return;
  const form = link.closest('form');
  if (!link.hasAttribute('data-drawn-href')) link.setAttribute('data-drawn-href', link.getAttribute('href'));
  const drawn = link.getAttribute('data-drawn-href');
  const url = new URL(drawn, location.href);
  const max = Number(form.getAttribute('data-back-max')) || 0;
  const backWith = (matters) => {
    const back = new URLSearchParams(url.searchParams.get('back') || '');
    for (const name of ['matterId', 'handDraft', 'handOff']) back.delete(name);
    if (matters) for (const box of form.querySelectorAll('input[type="checkbox"][name="matterId"]:checked')) back.append('matterId', box.value);
    for (const box of form.querySelectorAll('input[type="checkbox"][name="handDraft"]')) back.append(box.checked ? 'handDraft' : 'handOff', box.value);
    return back.toString();
  };
  const text = [backWith(true), backWith(false)].find((t) => t.length <= max);
  if (text === undefined) { link.setAttribute('href', drawn); return; }
  url.searchParams.set('back', text);
  link.setAttribute('href', url.pathname + url.search + url.hash);
}
document.addEventListener('mousedown', massComposerLink);
document.addEventListener('click', massComposerLink);
