import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from '../../shared/db.ts';

// int8 (count(*), bigint columns) arrives as text; parse it, refusing anything not exact.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 value ${v} is beyond the safe integer range`);
  return n;
});

export function openPostgres(url: string, opts: { poolSize?: number } = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    async close() { await db.destroy(); },
  };
}
