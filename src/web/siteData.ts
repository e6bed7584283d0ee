import { ContrastiveError } from '../errors.js';
import type { PathCalibrationJSON } from './calibrationJson.js';
import type { WebBackboneRecord } from './webBackbone.js';

/** The global `site-config.js` sets (a classic script, so the page also works from file://). */
export const SITE_CONFIG_GLOBAL = 'contrastiveSiteConfig';
/** The global `site-data.js` sets: the index and the model embedded, for pages opened from file://. */
export const SITE_DATA_GLOBAL = 'contrastiveSiteData';

/** A model folder with its files as base64 (see `ModelFiles`). */
export interface EncodedModelFiles {
  modelJson: string;
  weights: Record<string, string>;
}

/** What the page needs besides the index and the model (small: always loaded). */
export interface SiteConfig {
  format: 'tfjs-contrastive/web-site@1';
  title: string;
  /** The index file beside the page. */
  indexFile: string;
  /** The model folders beside the page: `model/model.json`, and `head/model.json` for a head index. */
  backboneUrl: string;
  headUrl: string | null;
  /** Calibration for placement (leave-one-out on the index at export time), or null. */
  calibration: PathCalibrationJSON | null;
  /** What the calibration was measured on, in words. */
  calibratedOn: string | null;
  /** Results shown per query. */
  k: number;
  /** Thumbnails written beside the page (`thumbnails/…png`) for items whose index entry has none, by item id. */
  thumbnailFiles: Record<string, string>;
  /**
   * A run on a frozen pretrained backbone: its `backbone.json` record (what the page needs of it)
   * and its files under `backbone/`, in checksum order (the model file first); `ort` is the folder
   * of onnxruntime-web's files for an ONNX backbone. Absent or null otherwise.
   */
  pretrained?: { record: WebBackboneRecord; files: string[]; ort: string | null } | null;
}

/**
 * The index file and the model files byte for byte (base64), in `site-data.js`: a page opened from
 * file:// cannot fetch files, but it can run scripts. Over http(s) the page fetches the plain
 * files instead, which is much faster for a large catalogue.
 */
export interface SiteEmbeddedData {
  format: 'tfjs-contrastive/web-site-data@1';
  index: string;
  backbone: EncodedModelFiles;
  head: EncodedModelFiles | null;
  /** A tfjs (layers or graph) frozen backbone's files, by their name under `backbone/` (base64). */
  pretrained?: Record<string, string> | null;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Bytes → base64 (no Node `Buffer`, so both sides share it). */
export function bytesToBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  let chunk = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i];
    const b = i + 1 < bytes.length ? bytes[i + 1] : 0;
    const c = i + 2 < bytes.length ? bytes[i + 2] : 0;
    chunk +=
      ALPHABET[a >> 2] +
      ALPHABET[((a & 3) << 4) | (b >> 4)] +
      (i + 1 < bytes.length ? ALPHABET[((b & 15) << 2) | (c >> 6)] : '=') +
      (i + 2 < bytes.length ? ALPHABET[c & 63] : '=');
    if (chunk.length >= 65536) {
      parts.push(chunk);
      chunk = '';
    }
  }
  parts.push(chunk);
  return parts.join('');
}

const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** base64 → bytes; a character outside the alphabet is an error naming `what`. */
export function base64ToBytes(text: string, what = 'base64 data'): Uint8Array {
  const clean = text.replace(/=+$/, '');
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (let i = 0; i < clean.length; i++) {
    const code = clean.charCodeAt(i);
    const v = code < 128 ? DECODE[code] : -1;
    if (v < 0)
      throw new ContrastiveError(`${what}: character ${i} (${JSON.stringify(clean[i])}) is not base64.`);
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 255;
    }
  }
  return out;
}
