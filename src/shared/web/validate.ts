/** Input validation with typebox: every body, query and form goes through here. */
import type { Static, TSchema } from 'typebox';
import Value from 'typebox/value';
import { invalid } from './errors.ts';

function fieldName(instancePath: string): string {
  return instancePath.replace(/^\//, '').replaceAll('/', '.') || '(body)';
}

function literalChoices(schema: TSchema | undefined): string[] | null {
  const s = schema as { anyOf?: { const?: unknown }[] } | undefined;
  if (!s?.anyOf || !s.anyOf.every((x) => 'const' in x)) return null;
  return s.anyOf.map((x) => String(x.const));
}

function schemaAt(root: TSchema, path: string): TSchema | undefined {
  let s: unknown = root;
  for (const part of path.split('/').filter(Boolean)) {
    const node = s as { properties?: Record<string, unknown>; items?: unknown } | undefined;
    s = node?.properties?.[part] ?? node?.items;
  }
  return s as TSchema | undefined;
}

/** What no text field may hold: the NUL character (Postgres cannot store it in text; nobody types it). */
export const NUL_MESSAGE = 'must not contain the NUL character (U+0000)';

/**
 * Text holding NUL, and `__proto__` keys (JSON.parse makes them own keys, which schema checks
 * of known fields pass over), anywhere in a parsed body, by field. Bounded in depth and count.
 */
export function unsafeInput(value: unknown, path = '', out: Record<string, string> = {}, depth = 0): Record<string, string> {
  if (depth > 64 || Object.keys(out).length >= 20) return out;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) out[path || '(body)'] = NUL_MESSAGE;
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => unsafeInput(v, path ? `${path}.${i}` : String(i), out, depth + 1));
  } else if (value !== null && typeof value === 'object') {
    for (const k of Object.keys(value)) {
      const at = path ? `${path}.${k}` : k;
      // Defined, not assigned: assigning to "__proto__" would set the prototype, not the field.
      if (k === '__proto__') { Object.defineProperty(out, at, { value: 'is not a known field', enumerable: true, writable: true, configurable: true }); continue; }
      if (k.includes('\u0000')) { out[path || '(body)'] = `field names ${NUL_MESSAGE}`; continue; }
      unsafeInput((value as Record<string, unknown>)[k], at, out, depth + 1);
    }
  }
  return out;
}

/** Map of field to a message a person can act on; empty when valid. */
export function fieldErrors(schema: TSchema, value: unknown): Record<string, string> {
  // No prototype while collecting: a field named like an Object member ("constructor", "toString") is not already
  // "set" to it, so its error is kept (review 57 F1: such a key passed additionalProperties: false unnamed).
  const out: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, unsafeInput(value));
  for (const e of Value.Errors(schema, value)) {
    if (e.keyword === 'boolean' && e.message === 'schema is false') continue;
    if (e.keyword === 'additionalProperties') {
      for (const p of (e.params as { additionalProperties?: string[] }).additionalProperties ?? []) {
        out[fieldName(`${e.instancePath}/${p}`)] ??= 'is not a known field';
      }
      continue;
    }
    if (e.keyword === 'required') {
      for (const p of (e.params as { requiredProperties?: string[] }).requiredProperties ?? []) {
        out[fieldName(`${e.instancePath}/${p}`)] ??= 'is required';
      }
      continue;
    }
    const field = fieldName(e.instancePath);
    if (e.keyword === 'const') {
      const choices = literalChoices(schemaAt(schema, e.instancePath));
      if (choices) { out[field] = `must be one of: ${choices.join(', ')}`; continue; }
    }
    if (e.keyword === 'anyOf' && out[field]) continue;
    const custom = (schemaAt(schema, e.instancePath) as { errorMessage?: string } | undefined)?.errorMessage;
    out[field] ??= custom ?? e.message;
  }
  // A plain object again for the JSON answer: spreading defines each key as its own property ("__proto__" included).
  return { ...out };
}

/** Validate a JSON body or other structured value; throws 422 naming each bad field. */
export function parseWith<S extends TSchema>(schema: S, value: unknown): Static<S> {
  const errors = fieldErrors(schema, value);
  if (Object.keys(errors).length > 0) throw invalid(errors);
  return value as Static<S>;
}

/**
 * A password field (its name says so): kept exactly as typed, because login and the CLI
 * take passwords as typed too; a password that differs only in spaces is another password.
 */
export function isPasswordField(name: string): boolean {
  return /password/i.test(name);
}

/** True when the schema's field `key` takes text and not true/false (so "on" is text there). */
function takesText(schema: TSchema, key: string): boolean {
  const p = (schema as { properties?: Record<string, { type?: unknown; anyOf?: { type?: unknown }[] }> }).properties?.[key];
  if (!p) return false;
  const types = p.anyOf ? p.anyOf.map((x) => x.type) : [p.type];
  return types.includes('string') && !types.includes('boolean');
}

/**
 * Validate form fields or query strings (all strings): values are trimmed and empty ones
 * become absent, except password fields, which are kept exactly as typed (only an empty
 * one is absent); then values are converted to the schema's types ("3" -> 3, "on" -> true)
 * and checked.
 */
export function parseForm<S extends TSchema>(schema: S, raw: Record<string, unknown>): Static<S> {
  const cleaned: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === '_csrf') continue;
    if (typeof v === 'string' && isPasswordField(k)) {
      if (v !== '') cleaned[k] = v;
      continue;
    }
    if (typeof v === 'string' && v.trim() === '') continue;
    // A ticked checkbox posts "on"; a text field may hold that word too, and keeps it.
    cleaned[k] = v === 'on' && !takesText(schema, k) ? true : typeof v === 'string' ? v.trim() : v;
  }
  const converted = Value.Convert(schema, cleaned);
  return parseWith(schema, converted);
}
