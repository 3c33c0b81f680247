/**
 * Hugging Face safetensors, read and written by hand (no package).
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header, then the data buffer.
 * The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
 * the start of the data buffer) plus an optional "__metadata__" object of string to string. The
 * tensors must tile the data buffer exactly: sorted by offset, no gaps, no overlap, nothing after
 * the last one.
 *
 * Every tensor is handed out as float32: F32 is copied into a fresh (aligned) Float32Array, F16 and
 * BF16 are widened exactly (bit manipulation, so subnormals, infinities and NaN payloads survive).
 * Other dtypes are recognised, so the error can say what they are, and rejected.
 *
 * Nothing is allocated in proportion to a number taken from the header until that number has been
 * checked against the real size of the file.
 */
import { closeSync, fsyncSync, fstatSync, openSync, readFileSync, existsSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsContents {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

export type WriteDtype = 'F32' | 'BF16' | 'F16';

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** The reference implementation's limit (safetensors MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/** Bits per element of every dtype the format defines; only F32, F16 and BF16 can be read. */
const DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32,
  I64: 64, U64: 64, F64: 64, C64: 64,
};
const READABLE = new Set(['F32', 'F16', 'BF16']);

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Scratch size for widening half-precision data read from a file. */
const CHUNK_BYTES = 8 << 20;

// ---------------------------------------------------------------------------------------------
// Bit-level conversions

let halfTable: Uint32Array | undefined;

/** float32 bit pattern of an IEEE binary16 bit pattern; exact for every input. */
export function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, or NaN keeping its payload
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // 112 = 127 - 15
  if (mant === 0) return sign >>> 0;
  // Subnormal: mant * 2^-24. Normalise so the leading one becomes the implicit bit.
  let e = 113; // biased float32 exponent of 2^-14, the scale of a half subnormal's 0.mmmm
  while ((mant & 0x400) === 0) { mant <<= 1; e--; }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

function halfToFloatTable(): Uint32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloatBits(h);
  }
  return halfTable;
}

/** Round a float32 bit pattern to binary16, to nearest, ties to even; NaN stays NaN (quietened). */
export function floatBitsToHalfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00; // too large even before rounding
  if (e <= 0) {
    // Result is a half subnormal (or rounds up to the smallest normal, or to zero).
    if (e < -10) return sign; // below 2^-25: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and into 0x7c00 (infinity): both correct.
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** Round a float32 bit pattern to bfloat16, to nearest, ties to even; NaN stays NaN (quietened). */
export function floatBitsToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x0040;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Where the bytes come from: a buffer in memory, or a file read piecewise. */
interface ByteSource {
  readonly name: string;
  readonly size: number;
  /** Bytes [offset, offset+length): may be a view that is only valid until the next call. */
  view(offset: number, length: number): Uint8Array;
  /** Copy bytes [offset, offset+dest.length) into dest. */
  readInto(offset: number, dest: Uint8Array): void;
}

function memorySource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.length,
    view: (offset, length) => bytes.subarray(offset, offset + length),
    readInto: (offset, dest) => dest.set(bytes.subarray(offset, offset + dest.length)),
  };
}

function fileSource(fd: number, name: string): ByteSource {
  const size = fstatSync(fd).size;
  let scratch = new Uint8Array(0);
  const readInto = (offset: number, dest: Uint8Array): void => {
    let done = 0;
    while (done < dest.length) {
      const n = readSync(fd, dest, done, Math.min(dest.length - done, 1 << 30), offset + done);
      if (n === 0) throw new SafetensorsError(`${name}: unexpected end of file at byte ${offset + done} (the file shrank while being read?)`);
      done += n;
    }
  };
  return {
    name,
    size,
    view(offset, length) {
      if (scratch.length < length) scratch = new Uint8Array(length);
      const v = scratch.subarray(0, length);
      readInto(offset, v);
      return v;
    },
    readInto,
  };
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
  elements: number;
}

interface Header {
  entries: Entry[];
  metadata: Record<string, string>;
  /** Absolute file offset of the data buffer. */
  dataStart: number;
}

const fmtShape = (shape: readonly unknown[]): string => `[${shape.map((d) => JSON.stringify(d)).join(',')}]`;
const fmtOffsets = (e: { begin: number; end: number }): string => `[${e.begin},${e.end}]`;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseHeader(src: ByteSource): Header {
  const fail = (msg: string): never => { throw new SafetensorsError(`${src.name}: ${msg}`); };
  if (src.size < 8) fail(`file is ${src.size} bytes, too short for the 8-byte header length (truncated?)`);
  const prefix = src.view(0, 8);
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > src.size) fail(`header length ${n} exceeds file size ${src.size} (truncated?)`);
  if (n === 0) fail('header is empty (header length 0)');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(src.view(8, n));
  } catch {
    return fail(`header is not valid UTF-8 (${n} bytes at offset 8)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail(`header is not JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(json)) return fail(`header is not a JSON object (got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json})`);

  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(info)) fail('__metadata__ is not an object of strings');
      const kv = Object.entries(info as Record<string, unknown>);
      for (const [k, v] of kv) if (typeof v !== 'string') fail(`__metadata__ ${JSON.stringify(k)} is ${JSON.stringify(v)}, not a string`);
      metadata = Object.fromEntries(kv) as Record<string, string>;
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(info)) return fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') return fail(`${where}: dtype is missing or not a string`);
    const bits = DTYPE_BITS[dtype];
    if (bits === undefined) return fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape)) return fail(`${where}: shape is missing or not an array`);
    for (const d of shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) fail(`${where}: shape ${fmtShape(shape)} has invalid dimension ${JSON.stringify(d)} (dimensions must be non-negative integers)`);
    }
    const dims = shape as number[];
    if (!Array.isArray(offsets) || offsets.length !== 2) return fail(`${where}: data_offsets must be [begin, end]`);
    const [begin, end] = offsets as unknown[];
    if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < 0) {
      return fail(`${where}: data_offsets ${fmtShape(offsets)} are not non-negative integers`);
    }
    if (end < begin) fail(`${where}: data_offsets [${begin},${end}] end before they begin`);
    if (end > dataSize) fail(`${where}: data_offsets [${begin},${end}] out of bounds (the data buffer is ${dataSize} bytes; truncated?)`);
    let elements = 1;
    if (dims.includes(0)) elements = 0;
    else for (const d of dims) {
      elements *= d;
      if (!Number.isSafeInteger(elements)) fail(`${where}: shape ${fmtShape(dims)} has too many elements`);
    }
    const needBits = BigInt(elements) * BigInt(bits);
    const have = end - begin;
    if (needBits % 8n !== 0n || needBits / 8n !== BigInt(have)) {
      const need = needBits % 8n === 0n ? `${needBits / 8n} bytes` : `${needBits} bits (not a whole number of bytes)`;
      fail(`${where}: shape ${fmtShape(dims)} needs ${need}, offsets give ${have} (${dtype} is ${bits} bits per element)`);
    }
    entries.push({ name, dtype, shape: dims.slice(), begin, end, elements });
  }

  // The tensors must tile the data buffer exactly.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < at) fail(`tensor ${JSON.stringify(e.name)}: data_offsets ${fmtOffsets(e)} overlap tensor ${JSON.stringify(prev!.name)} ${fmtOffsets(prev!)}`);
    if (e.begin > at) {
      fail(prev
        ? `gap of ${e.begin - at} bytes between tensor ${JSON.stringify(prev.name)} ${fmtOffsets(prev)} and tensor ${JSON.stringify(e.name)} ${fmtOffsets(e)}`
        : `gap of ${e.begin} bytes before the first tensor ${JSON.stringify(e.name)} ${fmtOffsets(e)}`);
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataSize) {
    fail(prev
      ? `${dataSize - at} bytes after the last tensor ${JSON.stringify(prev.name)} ${fmtOffsets(prev)} are not covered by any tensor`
      : `${dataSize} bytes of data but the header lists no tensors`);
  }

  for (const e of entries) {
    if (!READABLE.has(e.dtype)) fail(`tensor ${JSON.stringify(e.name)}: dtype ${e.dtype} is not supported (only F32, F16 and BF16 can be read)`);
  }
  return { entries, metadata, dataStart };
}

function decodeTensor(src: ByteSource, dataStart: number, e: Entry): Tensor {
  const start = dataStart + e.begin;
  if (e.dtype === 'F32') {
    const data = new Float32Array(e.elements);
    const bytes = new Uint8Array(data.buffer);
    src.readInto(start, bytes);
    if (!LITTLE_ENDIAN_HOST) swap32(bytes);
    return { shape: e.shape, data };
  }
  const out = new Uint32Array(e.elements);
  const table = e.dtype === 'F16' ? halfToFloatTable() : undefined;
  const total = e.end - e.begin;
  for (let off = 0; off < total; off += CHUNK_BYTES) {
    const len = Math.min(CHUNK_BYTES, total - off);
    const chunk = src.view(start + off, len);
    let o = off >>> 1;
    if (table) for (let i = 0; i < len; i += 2) out[o++] = table[chunk[i]! | (chunk[i + 1]! << 8)]!;
    else for (let i = 0; i < len; i += 2) out[o++] = ((chunk[i]! << 16) | (chunk[i + 1]! << 24)) >>> 0;
  }
  return { shape: e.shape, data: new Float32Array(out.buffer) };
}

function swap32(b: Uint8Array): void {
  for (let i = 0; i + 3 < b.length; i += 4) {
    const t0 = b[i]!, t1 = b[i + 1]!;
    b[i] = b[i + 3]!; b[i + 1] = b[i + 2]!; b[i + 2] = t1; b[i + 3] = t0;
  }
}

function readFrom(src: ByteSource): SafetensorsContents {
  const header = parseHeader(src);
  const tensors = new Map<string, Tensor>();
  for (const e of header.entries) tensors.set(e.name, decodeTensor(src, header.dataStart, e));
  return { tensors, metadata: header.metadata };
}

/** Parse a whole safetensors file held in memory. `source` names it in error messages. */
export function readSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsContents {
  return readFrom(memorySource(bytes, source));
}

/**
 * Read a safetensors file from disk. The header is validated against the file's size before any
 * tensor data is read, and tensor data is read straight into its destination (half-precision data
 * through a bounded scratch buffer), so files larger than one Node Buffer are fine.
 */
export function loadSafetensorsFile(path: string): SafetensorsContents {
  const fd = openSync(path, 'r');
  try {
    return readFrom(fileSource(fd, path));
  } finally {
    closeSync(fd);
  }
}

/** The dtypes a safetensors file stores, from its (validated) header alone: no tensor data is read. */
export function storedDtypesOf(path: string): string[] {
  const fd = openSync(path, 'r');
  try {
    return [...new Set(parseHeader(fileSource(fd, path)).entries.map((e) => e.dtype))].sort();
  } finally {
    closeSync(fd);
  }
}

/**
 * Load a Hugging Face checkpoint directory: every shard named by model.safetensors.index.json when
 * that exists, otherwise model.safetensors. Each tensor must sit in the shard the index names, and
 * the shards together must hold exactly the tensors the index lists. Metadata is the union of the
 * shards' __metadata__ (the first shard, in sorted name order, wins a conflict).
 */
export function loadCheckpoint(dir: string): SafetensorsContents {
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) {
    const single = join(dir, SINGLE_FILE);
    if (!existsSync(single)) throw new SafetensorsError(`${dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} exists`);
    return loadSafetensorsFile(single);
  }

  const fail = (msg: string): never => { throw new SafetensorsError(`${indexPath}: ${msg}`); };
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (err) {
    return fail(`not JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) return fail('has no "weight_map" object');
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== 'string') return fail(`weight_map ${JSON.stringify(tensor)} is ${JSON.stringify(shard)}, not a file name`);
    if (shard === '' || shard === '.' || shard === '..' || shard.includes('/') || shard.includes('\\') || basename(shard) !== shard) {
      fail(`weight_map ${JSON.stringify(tensor)} names shard ${JSON.stringify(shard)}, which is not a plain file name in the checkpoint directory`);
    }
    weightMap.set(tensor, shard);
  }
  if (weightMap.size === 0) fail('weight_map is empty');

  const shards = [...new Set(weightMap.values())].sort();
  const tensors = new Map<string, Tensor>();
  const foundIn = new Map<string, string>();
  const metadata: Record<string, string> = {};
  for (const shard of shards) {
    const path = join(dir, shard);
    if (!existsSync(path)) fail(`shard ${JSON.stringify(shard)} named in weight_map does not exist`);
    const part = loadSafetensorsFile(path);
    for (const [name, t] of part.tensors) {
      const expected = weightMap.get(name);
      if (expected === undefined) fail(`tensor ${JSON.stringify(name)} is in shard ${JSON.stringify(shard)} but not in weight_map`);
      const earlier = foundIn.get(name);
      if (earlier !== undefined) fail(`tensor ${JSON.stringify(name)} is in both ${JSON.stringify(earlier)} and ${JSON.stringify(shard)} (weight_map says ${JSON.stringify(expected)})`);
      foundIn.set(name, shard);
      tensors.set(name, t);
    }
    for (const [k, v] of Object.entries(part.metadata)) if (!Object.hasOwn(metadata, k)) Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  // Only now, with every shard seen, is a misplaced tensor told apart from a duplicated one.
  for (const [name, shard] of foundIn) {
    const expected = weightMap.get(name)!;
    if (expected !== shard) fail(`tensor ${JSON.stringify(name)} is in shard ${JSON.stringify(shard)} but weight_map says ${JSON.stringify(expected)}`);
  }
  const missing = [...weightMap].filter(([name]) => !foundIn.has(name));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).map(([name, shard]) => `${JSON.stringify(name)} (in ${JSON.stringify(shard)})`).join(', ');
    fail(`${missing.length} tensor(s) listed in weight_map are missing from their shard: ${shown}${missing.length > 5 ? ', ...' : ''}`);
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Serialise tensors (in sorted name order, contiguous) with an optional __metadata__. The header
 * is padded with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
 * BF16 and F16 round to nearest, ties to even.
 */
export function writeSafetensors(tensors: Map<string, Tensor>, metadata?: Record<string, string>, dtype: WriteDtype = 'F32'): Uint8Array {
  const fail = (msg: string): never => { throw new SafetensorsError(`writeSafetensors: ${msg}`); };
  if (dtype !== 'F32' && dtype !== 'BF16' && dtype !== 'F16') fail(`cannot write dtype ${JSON.stringify(dtype)} (F32, BF16 or F16)`);
  const width = dtype === 'F32' ? 4 : 2;
  const names = [...tensors.keys()].sort();
  const parts: string[] = [];
  if (metadata !== undefined) {
    const kv = Object.entries(metadata);
    for (const [k, v] of kv) if (typeof v !== 'string') fail(`metadata ${JSON.stringify(k)} is not a string`);
    parts.push(`"__metadata__":{${kv.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === '__metadata__') fail(`${where}: the name is reserved`);
    if (!(t.data instanceof Float32Array)) fail(`${where}: data is not a Float32Array`);
    let elements = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) fail(`${where}: shape ${fmtShape(t.shape)} has invalid dimension ${d}`);
      elements *= d;
    }
    if (elements !== t.data.length) fail(`${where}: shape ${fmtShape(t.shape)} has ${elements} elements but data has ${t.data.length}`);
    const end = offset + elements * width;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const headerText = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(headerText.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(headerText, 8);
  out.fill(0x20, 8 + headerText.length, 8 + headerLen);

  let at = 8 + headerLen;
  for (const name of names) {
    const data = tensors.get(name)!.data;
    if (dtype === 'F32') {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      out.set(bytes, at);
      if (!LITTLE_ENDIAN_HOST) swap32(out.subarray(at, at + bytes.length));
      at += bytes.length;
      continue;
    }
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    const round = dtype === 'BF16' ? floatBitsToBf16Bits : floatBitsToHalfBits;
    for (let i = 0; i < bits.length; i++) {
      const h = round(bits[i]!);
      out[at++] = h & 0xff;
      out[at++] = h >>> 8;
    }
  }
  return out;
}

/** Write a safetensors file atomically: a temporary file in the same directory, fsynced, then renamed. */
export function saveSafetensorsFile(path: string, tensors: Map<string, Tensor>, metadata?: Record<string, string>, dtype: WriteDtype = 'F32'): void {
  const bytes = writeSafetensors(tensors, metadata, dtype);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx');
  try {
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* some platforms cannot fsync a directory; the rename is still atomic */ }
}
