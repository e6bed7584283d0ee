import { ContrastiveError } from '../errors.js';

/** One side of a connection that runs SQL: a transaction, or the whole client. */
export interface SqlRunner {
  /** One statement with `$1…` parameters; resolves to its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Several statements without parameters. */
  exec(sql: string): Promise<void>;
}

/** A connection to a store's database: embedded PGlite or a PostgreSQL server through `pg`. */
export interface SqlClient extends SqlRunner {
  /** The store URL with any password replaced by `***`, for messages. */
  readonly url: string;
  /** `'pglite'` (embedded, one process) or `'postgres'` (a server, any number of processes). */
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The URL with its password hidden. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

/** Whether `source` is a store URL (`pglite:…`, `postgres://…` or `postgresql://…`) rather than a file path. */
export function isStoreUrl(source: string): boolean {
  return typeof source === 'string' && /^(pglite:|postgres(ql)?:\/\/)/.test(source);
}

/** What a store URL names: `pglite:<dir>` (or `pglite:memory:`), or `postgres://…`. */
export function parseStoreUrl(
  url: string,
  where: string,
): { kind: 'pglite'; dir: string } | { kind: 'postgres' } {
  if (typeof url !== 'string' || url.trim() === '')
    throw new ContrastiveError(
      `${where} must be a store URL (pglite:./catalogue.pg or postgres://user:password@host:5432/db), but got ${JSON.stringify(url)}.`,
    );
  if (url.startsWith('pglite:')) {
    const dir = url.slice('pglite:'.length);
    if (dir === '')
      throw new ContrastiveError(
        `${where}: pglite: needs a folder (pglite:./catalogue.pg) or memory: (pglite:memory:).`,
      );
    return { kind: 'pglite', dir: dir === 'memory:' ? 'memory://' : dir };
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres' };
  throw new ContrastiveError(
    `${where} must start with pglite: (an embedded store in a folder) or postgres:// (a server), but got ${JSON.stringify(redactUrl(url))}.`,
  );
}

/** The error of a server that refused or failed, as one line that says what to fix in `--store`. */
export function describeConnectionError(url: string, error: unknown, where: string): ContrastiveError {
  const e = error as { code?: string; message?: string };
  const shown = redactUrl(url);
  const code = e?.code ?? '';
  const message = String(e?.message ?? error).split('\n')[0];
  if (['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN'].includes(code))
    return new ContrastiveError(
      `${where}: the store ${shown} does not answer (${code}); start the server or fix the host and port in --store.`,
    );
  if (/timeout|terminated unexpectedly/i.test(message))
    return new ContrastiveError(
      `${where}: the store ${shown} does not answer (${message}); start the server or fix the host and port in --store.`,
    );
  if (code === '28P01' || code === '28000')
    return new ContrastiveError(
      `${where}: the store ${shown} refused the login (${message}); fix the user and password in --store (postgres://user:password@host:port/db).`,
    );
  if (code === '3D000')
    return new ContrastiveError(
      `${where}: the store ${shown} has no such database (${message}); create it or fix the database name in --store.`,
    );
  return new ContrastiveError(`${where}: the store ${shown} failed: ${message}${code ? ` (${code})` : ''}.`);
}

/** Opens a connection; a server that does not answer or refuses is a one-line error. */
export async function openSqlClient(url: string, where = 'PostgresStore.open'): Promise<SqlClient> {
  const target = parseStoreUrl(url, where);
  if (target.kind === 'pglite') return openPglite(url, target.dir, where);
  return openPostgres(url, where);
}

async function openPglite(url: string, dir: string, where: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { vector } = await import('@electric-sql/pglite/vector');
  const { ltree } = await import('@electric-sql/pglite/contrib/ltree');
  let db: InstanceType<typeof PGlite>;
  try {
    db = await PGlite.create(dir, { extensions: { vector, ltree } });
  } catch (error) {
    throw new ContrastiveError(
      `${where}: cannot open the embedded store ${url} (${String((error as Error)?.message ?? error).split('\n')[0]}); --store pglite: needs a folder that PGlite created or none at all.`,
    );
  }
  const runner = (r: {
    query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
    exec(sql: string): Promise<unknown>;
  }): SqlRunner => ({
    async query<T>(sql: string, params?: readonly unknown[]) {
      return (await r.query<T>(sql, params ? [...params] : undefined)).rows;
    },
    async exec(sql: string) {
      await r.exec(sql);
    },
  });
  return {
    url,
    kind: 'pglite',
    ...runner(db),
    transaction: (fn) => db.transaction((tx) => fn(runner(tx))),
    close: () => db.close(),
  };
}

async function openPostgres(url: string, where: string): Promise<SqlClient> {
  const pg = (await import('pg')).default;
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 15_000 });
  // an idle connection dropped by the server must not crash the process; the next query reports it
  pool.on('error', () => {});
  const wrap = (error: unknown): never => {
    const e = error as { code?: string };
    // SQL errors (a class-5-digit SQLSTATE other than login/database ones) pass through for the caller to word
    if (e?.code && /^[0-9A-Z]{5}$/.test(e.code) && !['28P01', '28000', '3D000', '57P01'].includes(e.code))
      throw error;
    throw describeConnectionError(url, error, where);
  };
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => {});
    wrap(error);
  }
  const runner = (r: {
    query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  }): SqlRunner => ({
    async query<T>(sql: string, params?: readonly unknown[]) {
      try {
        return (await r.query(sql, params ? [...params] : undefined)).rows as T[];
      } catch (error) {
        return wrap(error);
      }
    },
    async exec(sql: string) {
      try {
        await r.query(sql);
      } catch (error) {
        wrap(error);
      }
    },
  });
  return {
    url: redactUrl(url),
    kind: 'postgres',
    ...runner(pool),
    async transaction(fn) {
      let client: import('pg').PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        return wrap(error);
      }
      const tx = runner(client);
      try {
        await tx.exec('BEGIN');
        const out = await fn(tx);
        await tx.exec('COMMIT');
        client.release();
        return out;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
        throw error;
      }
    },
    close: () => pool.end(),
  };
}
