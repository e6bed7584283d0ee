import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from `dist/test/...`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where the shared golden fixtures live: `../shared/fixtures` beside the checkout, or `$CONTRASTIVE_FIXTURES`. */
export const GOLDENS_PATH =
  process.env.CONTRASTIVE_FIXTURES ?? resolve(REPO_ROOT, '../shared/fixtures/contrastive-goldens.json');

// Field names follow the fixture file (snake_case), not our API.
export interface GoldenCase {
  id: string;
  loss: 'ntxent' | 'supcon' | 'hmlc_reference' | 'hmlc_paper' | 'moco' | 'sane';
  params: Record<string, unknown>;
  inputs: Record<string, unknown>;
  expected: Record<string, unknown>;
  expected_unnormalized: Record<string, unknown>;
  notes: string;
}

let cache: GoldenCase[] | undefined;

/** Every case of `contrastive-goldens.json`; throws (failing the suite) when the file is missing. */
export function loadGoldens(): GoldenCase[] {
  cache ??= (JSON.parse(readFileSync(GOLDENS_PATH, 'utf8')) as { cases: GoldenCase[] }).cases;
  return cache;
}
