/** The catalogue in PostgreSQL + pgvector + ltree (embedded PGlite or a server), and its job queue. */

export { decodeLtreeLabel, encodeLtreeLabel, ltreePath } from './ltreeLabels.js';
export { STORE_SCHEMA_VERSION } from './migrate.js';
export {
  PostgresStore,
  type PostgresStoreOptions,
  type StoreAddOptions,
  type StoreInfo,
  type StoreQuery,
  type StoreSchema,
  type StoreSearchOptions,
  type StoreSearchResult,
  type StoreWriteOptions,
} from './postgresStore.js';
export { isStoreUrl, parseStoreUrl, redactUrl } from './sqlClient.js';
