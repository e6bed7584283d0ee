/** The HTTP JSON API over an embedding index (Node's `http`). */
export {
  createSearchServer,
  type DrainResult,
  type SearchServer,
  type SearchServerOptions,
  type SearchServerStats,
} from './server.js';
