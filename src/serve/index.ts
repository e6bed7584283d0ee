/** The HTTP JSON API over an embedding index (Node's `http`). */
export { createSearchServer, type SearchServerOptions, type SearchServerStats } from './server.js';
