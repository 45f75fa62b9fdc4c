import type { Kysely, Transaction } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

/** The database handle passed around the app. Tables are typed per module in each store. */
export type Db = Kysely<any>;
/** A transaction (or the root handle where a read needs no transaction). */
export type Tx = Transaction<any>;
export type Executor = Kysely<any> | Transaction<any>;

export interface Database {
  readonly db: Db;
  readonly dialect: Dialect;
  close(): Promise<void>;
}

/** True when err is a unique-constraint violation on either database. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code === '23505') return true; // postgres unique_violation
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return true;
  return false;
}
