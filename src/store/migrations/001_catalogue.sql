-- tfjs-contrastive store, schema version 1 (docs/store.md).
-- Applied once, in one transaction, by PostgresStore.open; recorded in contrastive_migrations.
-- The embedding columns get their dimension (vector(d)) when the first index is written.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS ltree;

-- What the store holds: one row. A store is written by one model, in one space, at one dimension.
CREATE TABLE contrastive_meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  dim integer NOT NULL CHECK (dim > 0),
  space text NOT NULL CHECK (space IN ('backbone', 'head')),
  model_checksum text,
  model_source text,
  tree jsonb NOT NULL,
  -- 'building' while an import or a queue of jobs is writing it; 'ready' once complete and counted
  state text NOT NULL CHECK (state IN ('building', 'ready')),
  -- items the build expects (null when unknown): the final count check
  expected_items bigint,
  prototypes_stale boolean NOT NULL DEFAULT true,
  calibration_stale boolean NOT NULL DEFAULT true,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every node of the label tree, with its path as escaped ltree labels (src/store/ltreeLabels.ts).
CREATE TABLE contrastive_nodes (
  level integer NOT NULL,
  node integer NOT NULL,
  path ltree NOT NULL UNIQUE,
  label_path text NOT NULL,
  PRIMARY KEY (level, node)
);

-- The catalogue. leaf is the label tree's leaf id (null: unlabelled); path its node path as ltree.
CREATE TABLE contrastive_items (
  id text PRIMARY KEY,
  leaf integer,
  path ltree,
  label_path text,
  source text,
  thumbnail text,
  embedding vector NOT NULL
);
CREATE INDEX contrastive_items_path ON contrastive_items USING gist (path);

-- Mean (L2-normalised) embedding of every node, from the items; stale after adds and removals.
CREATE TABLE contrastive_prototypes (
  level integer NOT NULL,
  node integer NOT NULL,
  item_count bigint NOT NULL,
  embedding vector,
  PRIMARY KEY (level, node)
);

-- Calibration of path prediction (predictPath's calibrate), as written; stale after changes.
CREATE TABLE contrastive_calibration (
  name text PRIMARY KEY,
  body jsonb NOT NULL
);
