import { ContrastiveError } from '../errors.js';

/**
 * Class names as `ltree` labels. An `ltree` label may hold only `A-Za-z0-9_` (and `-` from
 * PostgreSQL 16), so a name is escaped byte by byte: ASCII letters and digits stay as they are;
 * every other byte of the name's UTF-8, `_` included, becomes `_` and two upper-case hex digits.
 * `T-shirt/top` → `T_2Dshirt_2Ftop`, `Ankle boot` → `Ankle_20boot`, `Été` → `_C3_89t_C3_A9`.
 * The rule is one-to-one (a `_` always starts an escape), so {@link decodeLtreeLabel} inverts it,
 * and it never uses `-`, so the labels are valid on every PostgreSQL that has `ltree`.
 */
export function encodeLtreeLabel(name: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(name)) {
    const isAlnum =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
    out += isAlnum ? String.fromCharCode(byte) : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out === '') throw new ContrastiveError('encodeLtreeLabel: a class name must not be empty.');
  // PostgreSQL 16+ allows 1000 characters per label (older ones 255): stay under the stricter limit
  if (out.length > 255)
    throw new ContrastiveError(
      `encodeLtreeLabel: class name ${JSON.stringify(name.slice(0, 40))}… is ${out.length} characters as an ltree label (escaped), more than the 255 PostgreSQL allows; shorten it in the label tree.`,
    );
  return out;
}

/** Inverse of {@link encodeLtreeLabel}; a label that the rule cannot produce is an error. */
export function decodeLtreeLabel(label: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const ch = label[i];
    if (ch === '_') {
      const hex = label.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex))
        throw new ContrastiveError(`decodeLtreeLabel: ${JSON.stringify(label)} has a bad escape at ${i}.`);
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (/[A-Za-z0-9]/.test(ch)) bytes.push(ch.charCodeAt(0));
    else throw new ContrastiveError(`decodeLtreeLabel: ${JSON.stringify(label)} has ${JSON.stringify(ch)}.`);
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}

/** A label path (segments, coarsest first) as an `ltree` path: escaped labels joined by dots. */
export function ltreePath(segments: readonly string[]): string {
  return segments.map(encodeLtreeLabel).join('.');
}
