import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import type { SqlClient } from './sqlClient.js';

/** The store schema versions this library knows, oldest first (files in `src/store/migrations/`). */
export const STORE_MIGRATIONS: readonly { version: number; file: string }[] = [
  { version: 1, file: '001_catalogue.sql' },
];

/** The newest schema version this library writes and reads. */
export const STORE_SCHEMA_VERSION = STORE_MIGRATIONS[STORE_MIGRATIONS.length - 1].version;

/** A fixed key for `pg_advisory_xact_lock`: two processes opening a new store migrate it once. */
const MIGRATION_LOCK = 727_431_021;

async function migrationSql(file: string): Promise<string> {
  // the .sql files sit beside this module's source; the build (tsc) does not copy them to dist/
  const candidates = [
    new URL(`./migrations/${file}`, import.meta.url),
    new URL(`../../../src/store/migrations/${file}`, import.meta.url),
  ];
  for (const url of candidates) {
    try {
      return await readFile(url, 'utf8');
    } catch {}
  }
  throw new ContrastiveError(
    `PostgresStore: the migration ${file} is missing from this installation of tfjs-contrastive (looked in ${candidates.map((u) => u.pathname).join(' and ')}); reinstall it.`,
  );
}

/**
 * Brings the store's schema to {@link STORE_SCHEMA_VERSION}, each migration in one transaction
 * under an advisory lock. A store written by a newer tfjs-contrastive is refused.
 */
export async function migrateStore(client: SqlClient): Promise<void> {
  await client.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS contrastive_migrations (version integer PRIMARY KEY, file text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const rows = await tx.query<{ version: number }>('SELECT version FROM contrastive_migrations');
    const applied = new Set(rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...applied);
    if (newest > STORE_SCHEMA_VERSION)
      throw new ContrastiveError(
        `PostgresStore.open: the store ${client.url} has schema version ${newest}, newer than this tfjs-contrastive knows (${STORE_SCHEMA_VERSION}); upgrade tfjs-contrastive.`,
      );
    for (const { version, file } of STORE_MIGRATIONS) {
      if (applied.has(version)) continue;
      try {
        await tx.exec(await migrationSql(file));
      } catch (error) {
        const e = error as { code?: string; message?: string };
        if (e?.code === '42P07')
          throw new ContrastiveError(
            `PostgresStore.open: the database of ${client.url} already has a table the store needs (${e.message}) that tfjs-contrastive did not write; use another database or schema in --store.`,
          );
        if (e?.code === '0A000' || e?.code === '58P01')
          throw new ContrastiveError(
            `PostgresStore.open: the server of ${client.url} lacks an extension the store needs (${e.message}); install pgvector 0.8+ and ltree there.`,
          );
        throw error;
      }
      await tx.query('INSERT INTO contrastive_migrations (version, file) VALUES ($1, $2)', [version, file]);
    }
  });
}
