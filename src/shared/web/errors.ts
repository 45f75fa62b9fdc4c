/** An error with an HTTP status that the shell turns into an error page or JSON error. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
    readonly code: string,
    message: string,
    /** Field path (e.g. "email", "lines/0/amount") to message. */
    readonly fields: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export const notFound = (what = 'Page'): HttpError => new HttpError(404, 'not_found', `${what} not found`);
export const forbidden = (message = 'You do not have permission to do that'): HttpError => new HttpError(403, 'forbidden', message);
export const conflict = (message: string): HttpError => new HttpError(409, 'conflict', message);
export const invalid = (fields: Record<string, string>, message?: string): HttpError =>
  new HttpError(422, 'validation_failed', message ?? `Please correct: ${Object.keys(fields).map(fieldLabel).join(', ')}`, fields);

/**
 * A field path as a person reads it: words, not code ("receivedOn" -> "received on",
 * "adHoc.0.amount" -> "ad hoc #1 amount", "billId" -> "bill"). For messages shown to a clerk;
 * the JSON error's `fields` keep the paths.
 */
export function fieldLabel(path: string): string {
  return path.split(/[./]/).filter((p) => p !== '').map((p) => {
    if (/^\d+$/.test(p)) return `#${Number(p) + 1}`;
    return p.replace(/(Minor|Ids?)$/, (m) => (m === 'Ids' ? 's' : '')).replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  }).join(' ');
}

export interface ErrorBody {
  error: { code: string; message: string; fields: Record<string, string> };
}

export function errorBody(e: HttpError): ErrorBody {
  return { error: { code: e.code, message: e.message, fields: { ...e.fields } } };
}
