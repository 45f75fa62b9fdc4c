// Lexbill browser glue (no inline scripts: the CSP forbids them).
// Every htmx request carries the session's CSRF token from the page's meta tag.
document.addEventListener('htmx:config:request', (evt) => {
  const token = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content');
  const request = evt.detail && evt.detail.ctx && evt.detail.ctx.request;
  if (token && request) request.headers['X-CSRF-Token'] = token;
});
