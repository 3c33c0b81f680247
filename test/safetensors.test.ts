import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  floatBitsToBf16Bits,
  floatBitsToHalfBits,
  halfBitsToFloatBits,
  loadCheckpoint,
  loadSafetensorsFile,
  readSafetensors,
  saveSafetensorsFile,
  SafetensorsError,
  writeSafetensors,
  type Tensor,
} from '../src/model/formats/safetensors.ts';

const FIXTURES = new URL('./fixtures/safetensors/', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Helpers

const bitsOf = (f: Float32Array): number[] => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
const fromBits = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer);
const f32Bits = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const f32OfBits = (b: number): number => new Float32Array(new Uint32Array([b]).buffer)[0]!;
const tensor = (shape: number[], values: number[] | Float32Array): Tensor => ({ shape, data: values instanceof Float32Array ? values : new Float32Array(values) });

/** Build a file by hand, independently of writeSafetensors: prefix, header text, data. */
function rawFile(header: unknown, data: Uint8Array | number = 0, headerLen?: bigint): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => { out[2 * i] = v & 0xff; out[2 * i + 1] = v >>> 8; });
  return out;
}

/** The header JSON and the data buffer of a file, parsed without the module under test. */
function split(bytes: Uint8Array): { headerLen: number; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Uint8Array; headerText: string } {
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  return { headerLen, header: JSON.parse(headerText), data: bytes.subarray(8 + headerLen), headerText };
}

function rejects(fn: () => unknown, expected: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${String(err)}`);
    if (typeof expected === 'string') assert.equal(err.message, expected);
    else assert.match(err.message, expected);
    return true;
  });
}

const read = (bytes: Uint8Array) => readSafetensors(bytes, 't.safetensors');

// A small well-formed file made by hand: a F32 [2,3] at [0,24], b F32 [2] at [24,32].
const GOOD_HEADER = { a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, b: { dtype: 'F32', shape: [2], data_offsets: [24, 32] } };

// ---------------------------------------------------------------------------------------------

describe('half and bfloat16 conversions', () => {
  it('widens hand-picked binary16 patterns to the right float32', () => {
    const cases: [number, number][] = [
      [0x0000, 0x00000000], [0x8000, 0x80000000], [0x3c00, 0x3f800000], [0xc000, 0xc0000000],
      [0x7bff, 0x477fe000], // 65504
      [0x0001, 0x33800000], // 2^-24
      [0x8001, 0xb3800000],
      [0x0002, 0x34000000], // 2^-23
      [0x0003, 0x34400000], // 3 * 2^-24
      [0x03ff, 0x387fc000], // 1023 * 2^-24, largest subnormal
      [0x0400, 0x38800000], // 2^-14, smallest normal
      [0x3555, 0x3eaaa000], // 0.333251953125
      [0x7c00, 0x7f800000], [0xfc00, 0xff800000],
      [0x7e00, 0x7fc00000], // quiet NaN
      [0x7c01, 0x7f802000], // signalling NaN keeps its payload
      [0xfe00, 0xffc00000],
    ];
    for (const [h, f] of cases) assert.equal(halfBitsToFloatBits(h), f, `half 0x${h.toString(16)}`);
  });

  it('widens every binary16 pattern to the value the IEEE formula gives', () => {
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      const got = f32OfBits(halfBitsToFloatBits(h));
      if (exp === 31) {
        if (mant === 0) assert.equal(got, sign * Infinity);
        else assert.ok(Number.isNaN(got), `0x${h.toString(16)} is NaN`);
        continue;
      }
      const want = exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
      assert.ok(Object.is(got, want), `half 0x${h.toString(16)}: got ${got}, want ${want}`);
    }
  });

  it('rounds float32 to binary16 to nearest, ties to even, over every half interval', () => {
    for (const sign of [0, 0x8000]) {
      for (let h = 0; h < 0x7c00; h++) {
        const lo = h | sign;
        const loBits = halfBitsToFloatBits(lo);
        assert.equal(floatBitsToHalfBits(loBits), lo, `exact half 0x${lo.toString(16)}`);
        // Midpoint to the next half up (for 0x7bff: 65520, the midpoint to 2^16, which rounds to inf).
        const hiVal = h === 0x7bff ? 65536 : Math.abs(f32OfBits(halfBitsToFloatBits(h + 1)));
        const mid = (Math.abs(f32OfBits(loBits)) + hiVal) / 2;
        assert.equal(Math.fround(mid), mid, 'a binary16 midpoint is exact in float32');
        const midBits = (f32Bits(mid) | (sign << 16)) >>> 0;
        const even = (h & 1) === 0 ? lo : (h + 1) | sign;
        assert.equal(floatBitsToHalfBits(midBits), even, `tie above 0x${lo.toString(16)}`);
        assert.equal(floatBitsToHalfBits(midBits - 1), lo, `just below the midpoint above 0x${lo.toString(16)}`);
        assert.equal(floatBitsToHalfBits(midBits + 1), (h + 1) | sign, `just above the midpoint above 0x${lo.toString(16)}`);
      }
    }
    // Beyond the range, and below the smallest subnormal.
    assert.equal(floatBitsToHalfBits(f32Bits(1e6)), 0x7c00);
    assert.equal(floatBitsToHalfBits(f32Bits(-3.4028234663852886e38)), 0xfc00);
    assert.equal(floatBitsToHalfBits(0x7f800000), 0x7c00);
    assert.equal(floatBitsToHalfBits(0xff800000), 0xfc00);
    assert.equal(floatBitsToHalfBits(f32Bits(2 ** -26)), 0x0000);
    assert.equal(floatBitsToHalfBits(f32Bits(-(2 ** -30))), 0x8000);
    assert.equal(floatBitsToHalfBits(0x00000001), 0x0000); // float32 subnormal
    assert.equal(floatBitsToHalfBits(0x80000001), 0x8000);
  });

  it('rounds float32 to bfloat16 to nearest, ties to even, over every bfloat16 interval', () => {
    for (const sign of [0, 0x8000]) {
      for (let b = 0; b < 0x7f80; b++) {
        const lo = b | sign;
        const loBits = (lo << 16) >>> 0;
        assert.equal(floatBitsToBf16Bits(loBits), lo);
        const mid = (loBits | 0x8000) >>> 0; // bit pattern halfway to the next bfloat16 up
        const even = (b & 1) === 0 ? lo : (b + 1) | sign;
        assert.equal(floatBitsToBf16Bits(mid), even, `tie above 0x${lo.toString(16)}`);
        assert.equal(floatBitsToBf16Bits(mid - 1), lo);
        assert.equal(floatBitsToBf16Bits(mid + 1), (b + 1) | sign);
      }
    }
    assert.equal(floatBitsToBf16Bits(0x7f7fffff), 0x7f80, 'float32 max rounds to inf');
    assert.equal(floatBitsToBf16Bits(f32Bits(1 + 2 ** -8)), 0x3f80);
    assert.equal(floatBitsToBf16Bits(f32Bits(1 + 3 * 2 ** -8)), 0x3f82);
  });

  it('keeps NaN as NaN even when the payload sits only in the bits that are dropped', () => {
    for (const nan of [0x7fc00000, 0x7f800001, 0xff800001, 0x7f801fff, 0x7fffffff]) {
      const h = floatBitsToHalfBits(nan);
      assert.equal(h & 0x7c00, 0x7c00);
      assert.notEqual(h & 0x3ff, 0, `half of 0x${nan.toString(16)} is NaN, not inf`);
      assert.equal(h & 0x8000, (nan >>> 16) & 0x8000, 'sign kept');
      const b = floatBitsToBf16Bits(nan);
      assert.equal(b & 0x7f80, 0x7f80);
      assert.notEqual(b & 0x7f, 0, `bfloat16 of 0x${nan.toString(16)} is NaN, not inf`);
      assert.equal(b & 0x8000, (nan >>> 16) & 0x8000, 'sign kept');
    }
    assert.equal(floatBitsToHalfBits(0x7fc00000), 0x7e00);
    assert.equal(floatBitsToBf16Bits(0x7fc00000), 0x7fc0);
  });
});

describe('F32 round trip', () => {
  const specials = [
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, // ±0, ±inf
    0x00000001, 0x80000001, 0x007fffff, 0x807fffff, // subnormals
    0x00800000, 0x7f7fffff, 0xff7fffff, // smallest normal, ±max
    0x3f800000, 0xbeaaaaab, 0x3dcccccd,
    0x7fc00000, 0xffc00000, 0x7fa00001, 0x7f800001, // NaNs, payloads included
  ];

  it('is bit-exact for special values, every shape kind, awkward names and metadata', () => {
    const random = new Uint32Array(3 * 4 * 5);
    for (let i = 0; i < random.length; i++) random[i] = (Math.imul(i + 1, 2654435761) ^ (i << 7)) >>> 0;
    const tensors = new Map<string, Tensor>([
      ['specials', { shape: [specials.length], data: fromBits(specials) }],
      ['random', { shape: [3, 4, 5], data: new Float32Array(random.buffer) }],
      ['scalar', tensor([], [-0])],
      ['empty', tensor([0], [])],
      ['empty.middle', tensor([2, 0, 3], [])],
      ['10', tensor([1], [10])],
      ['9', tensor([1], [9])],
      ['__proto__', tensor([1], [1])],
      ['ünïcode/名前 "quoted"\\', tensor([2, 1], [1.5, -2.5])],
    ]);
    const metadata = { format: 'pt', '10': 'ten', note: 'ünï "q" \\ \n', __proto__x: 'y' };
    const bytes = writeSafetensors(tensors, metadata);
    const back = read(bytes);
    assert.deepEqual(back.metadata, metadata);
    assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      assert.deepEqual(got.shape, t.shape, name);
      assert.ok(got.data instanceof Float32Array);
      assert.equal(got.data.byteOffset % 4, 0);
      assert.deepEqual(bitsOf(got.data), bitsOf(t.data), name);
    }
    assert.ok(Object.is(back.tensors.get('scalar')!.data[0], -0));
  });

  it('lays the file out as the reference writer does: sorted names, contiguous, header padded with spaces to 8 bytes', () => {
    const tensors = new Map<string, Tensor>([['b', tensor([3], [1, 2, 3])], ['a', tensor([1], [4])], ['10', tensor([2], [5, 6])], ['9', tensor([], [7])]]);
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const { headerLen, header, data, headerText } = split(bytes);
    assert.equal(headerLen % 8, 0);
    assert.match(headerText, /^\{"__metadata__":\{"format":"pt"\},"10":.*\} *$/);
    assert.ok(headerText.length - headerText.trimEnd().length < 8);
    // Sorted by name (code units: "10" < "9" < "a" < "b"), in that order in the header text and in the buffer.
    const order = [...headerText.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    assert.deepEqual(order, ['10', '9', 'a', 'b']);
    assert.deepEqual(header['10']!.data_offsets, [0, 8]);
    assert.deepEqual(header['9']!.data_offsets, [8, 12]);
    assert.deepEqual(header.a!.data_offsets, [12, 16]);
    assert.deepEqual(header.b!.data_offsets, [16, 28]);
    assert.deepEqual(header.b, { dtype: 'F32', shape: [3], data_offsets: [16, 28] });
    assert.equal(data.length, 28);
    assert.deepEqual(Array.from(new Float32Array(data.slice().buffer)), [5, 6, 7, 4, 1, 2, 3]);
    // No metadata argument: no __metadata__ key.
    assert.doesNotMatch(split(writeSafetensors(tensors)).headerText, /__metadata__/);
    // An empty file round-trips.
    const empty = writeSafetensors(new Map());
    assert.equal(read(empty).tensors.size, 0);
  });

  it('reads from a misaligned view and from a pooled Buffer, and never aliases the input', () => {
    const tensors = new Map([['w', tensor([2, 2], [1, 2, 3, 4])], ['h', tensor([3], [0.5, -0.5, 0])]]);
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const bytes = writeSafetensors(tensors, undefined, dtype);
      const backing = new Uint8Array(bytes.length + 3);
      backing.set(bytes, 1);
      const view = backing.subarray(1, 1 + bytes.length);
      const got = read(view);
      assert.deepEqual(Array.from(got.tensors.get('w')!.data), [1, 2, 3, 4]);
      const buf = Buffer.concat([Buffer.from('x'), Buffer.from(bytes)]).subarray(1);
      assert.deepEqual(Array.from(read(buf).tensors.get('h')!.data), [0.5, -0.5, 0]);
      view.fill(0);
      assert.deepEqual(Array.from(got.tensors.get('w')!.data), [1, 2, 3, 4], 'decoded data is a copy');
    }
  });

  it('rejects tensors it cannot write', () => {
    const bad = (t: Tensor, name = 'x') => () => writeSafetensors(new Map([[name, t]]));
    rejects(bad(tensor([2, 3], [1, 2, 3, 4, 5])), 'writeSafetensors: tensor "x": shape [2,3] has 6 elements but data has 5');
    rejects(bad(tensor([-1], [])), /tensor "x": shape \[-1\] has invalid dimension -1/);
    rejects(bad(tensor([1.5], [1])), /invalid dimension 1.5/);
    rejects(bad(tensor([1], [1]), '__metadata__'), /"__metadata__": the name is reserved/);
    rejects(bad({ shape: [1], data: [1] as unknown as Float32Array }), /data is not a Float32Array/);
    rejects(() => writeSafetensors(new Map(), undefined, 'F64' as 'F32'), /cannot write dtype "F64"/);
    rejects(() => writeSafetensors(new Map(), { n: 1 as unknown as string }), /metadata "n" is not a string/);
  });
});

describe('F16 and BF16', () => {
  it('widens hand-built F16 and BF16 tensors to the hand-computed float32 values', () => {
    const f16 = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8001, 0x7c00, 0xfc00, 0x7e00, 0x8000];
    const f16Want = [1, -2, 0.333251953125, 65504, 5.9604644775390625e-8, 6.097555160522461e-5, 6.103515625e-5, -5.9604644775390625e-8, Infinity, -Infinity, NaN, -0];
    const bf16 = [0x3f80, 0xc040, 0x3dcd, 0x7f7f, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x4049];
    const bf16Want = [1, -3, 0.10009765625, 3.3895313892515355e38, 9.183549615799121e-41, -0, Infinity, -Infinity, NaN, 3.140625];
    const data = new Uint8Array([...u16le(f16), ...u16le(bf16)]);
    const bytes = rawFile({
      h: { dtype: 'F16', shape: [3, 4], data_offsets: [0, 24] },
      b: { dtype: 'BF16', shape: [10], data_offsets: [24, 44] },
    }, data);
    const got = read(bytes);
    const h = got.tensors.get('h')!;
    const b = got.tensors.get('b')!;
    assert.deepEqual(h.shape, [3, 4]);
    f16Want.forEach((w, i) => assert.ok(Object.is(h.data[i], w), `F16[${i}]: ${h.data[i]} vs ${w}`));
    bf16Want.forEach((w, i) => assert.ok(Object.is(b.data[i], w), `BF16[${i}]: ${b.data[i]} vs ${w}`));
    assert.deepEqual(bitsOf(b.data), bf16.map((x) => (x << 16) >>> 0), 'BF16 widening is a shift, NaN bits included');
  });

  it('writes BF16 by round-to-nearest-even and reads back the rounded values', () => {
    const src = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 0.1, 3.4028234663852886e38, -0, 2 ** -140, -1 - 2 ** -7 - 2 ** -8, 65504, Math.PI];
    const want = [1, 1 + 2 ** -6, 0.10009765625, Infinity, -0, 0, -1 - 2 ** -6, 65536, 3.140625];
    const bytes = writeSafetensors(new Map([['w', tensor([3, 3], src)]]), undefined, 'BF16');
    const { header, data } = split(bytes);
    assert.deepEqual(header.w, { dtype: 'BF16', shape: [3, 3], data_offsets: [0, 18] });
    assert.equal(data.length, 18);
    const got = read(bytes).tensors.get('w')!;
    want.forEach((w, i) => assert.ok(Object.is(got.data[i], w), `[${i}] ${got.data[i]} vs ${w}`));
  });

  it('writes F16 with correct rounding and reads back the rounded values', () => {
    const src = [65519, 65520, -65520, 2 ** -25, 2 ** -25 * 1.5, 0.1, 1e-7, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, 2 ** -14 - 2 ** -25, NaN];
    const want = [65504, Infinity, -Infinity, 0, 2 ** -24, 0.0999755859375, 1.1920928955078125e-7, 1, 1 + 2 ** -9, -0, 2 ** -14, NaN];
    const bytes = writeSafetensors(new Map([['w', tensor([12], src)]]), undefined, 'F16');
    assert.equal(split(bytes).header.w!.dtype, 'F16');
    const got = read(bytes).tensors.get('w')!;
    want.forEach((w, i) => assert.ok(Object.is(got.data[i], w), `[${i}] ${got.data[i]} vs ${w}`));
  });

  it('reads a half-precision file larger than the read chunk the same from disk as from memory', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-st-chunk-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const n = 5_000_001; // 10 MB of F16: more than one 8 MiB chunk, and an odd element count
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = ((i * 7919) % 256) / 4 - 32; // quarters below 32: at most 8 significant bits, exact in F16 and BF16
    for (const dtype of ['F16', 'BF16'] as const) {
      const path = join(dir, `big-${dtype}.safetensors`);
      saveSafetensorsFile(path, new Map([['big', tensor([n], data)], ['tail', tensor([2], [1, 2])]]), undefined, dtype);
      const fromDisk = loadSafetensorsFile(path);
      const fromMemory = read(readFileSync(path));
      const a = fromDisk.tensors.get('big')!.data;
      assert.equal(a.length, n);
      assert.ok(Buffer.from(a.buffer).equals(Buffer.from(fromMemory.tensors.get('big')!.data.buffer)), `${dtype}: disk and memory agree`);
      assert.ok(Buffer.from(a.buffer).equals(Buffer.from(data.buffer)), `${dtype}: values survive`);
      assert.deepEqual(Array.from(fromDisk.tensors.get('tail')!.data), [1, 2]);
    }
  });
});

describe('a file from an independent writer (test/fixtures/safetensors, made by make_reference.py)', () => {
  interface Expected { dtype: string; shape: number[]; f32_bits: number[]; stored_bits: number[]; source_f32_bits?: number[] }
  const expected = JSON.parse(readFileSync(new URL('reference.json', FIXTURES), 'utf8')) as { metadata: Record<string, string>; tensors: Record<string, Expected> };
  const path = new URL('reference.safetensors', FIXTURES).pathname;

  it('reads every tensor exactly, from disk and from memory', () => {
    for (const file of [loadSafetensorsFile(path), readSafetensors(readFileSync(path), path)]) {
      assert.deepEqual(file.metadata, expected.metadata);
      assert.deepEqual([...file.tensors.keys()].sort(), Object.keys(expected.tensors).sort());
      assert.ok(file.tensors.has('ünïcode/名前'));
      for (const [name, e] of Object.entries(expected.tensors)) {
        const t = file.tensors.get(name)!;
        assert.deepEqual(t.shape, e.shape, name);
        assert.deepEqual(bitsOf(t.data), e.f32_bits, name);
      }
    }
    // The fixture covers what it claims to.
    const dtypes = new Set(Object.values(expected.tensors).map((e) => e.dtype));
    assert.deepEqual([...dtypes].sort(), ['BF16', 'F16', 'F32']);
  });

  it('rounds to F16 exactly as numpy does and to BF16 as the hand-written Python does', () => {
    for (const [name, e] of Object.entries(expected.tensors)) {
      if (e.source_f32_bits === undefined) continue;
      const bytes = writeSafetensors(new Map([[name, { shape: e.shape, data: fromBits(e.source_f32_bits) }]]), undefined, e.dtype as 'F16' | 'BF16');
      const { data } = split(bytes);
      const stored = Array.from({ length: data.length / 2 }, (_, i) => data[2 * i]! | (data[2 * i + 1]! << 8));
      assert.deepEqual(stored, e.stored_bits, name);
    }
  });

  it('writes back an F32 copy that the reader returns unchanged', () => {
    const file = loadSafetensorsFile(path);
    const again = read(writeSafetensors(file.tensors, file.metadata));
    assert.deepEqual(again.metadata, file.metadata);
    for (const [name, t] of file.tensors) assert.deepEqual(bitsOf(again.tensors.get(name)!.data), bitsOf(t.data), name);
  });
});

describe('files on disk', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'oeld-st-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('saves atomically: no temporary left behind, an existing file replaced whole', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const path = join(sub, 'model.safetensors');
    saveSafetensorsFile(path, new Map([['a', tensor([2], [1, 2])]]), { v: '1' });
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
    saveSafetensorsFile(path, new Map([['b', tensor([1], [3])]]), { v: '2' }, 'BF16');
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
    const got = loadSafetensorsFile(path);
    assert.deepEqual(got.metadata, { v: '2' });
    // Replaced by rename, not rewritten in place: a reader holding the old file still sees it whole.
    const before = readFileSync(path);
    const fd = openSync(path, 'r');
    const inode = fstatSync(fd).ino;
    try {
      saveSafetensorsFile(path, new Map([['c', tensor([4], [1, 2, 3, 4])]]), { v: '2' });
      assert.notEqual(statSync(path).ino, inode);
      const old = Buffer.alloc(before.length + 16);
      assert.equal(readSync(fd, old, 0, old.length, 0), before.length);
      assert.ok(old.subarray(0, before.length).equals(before));
    } finally {
      closeSync(fd);
    }
    saveSafetensorsFile(path, new Map([['b', tensor([1], [3])]]), { v: '2' }, 'BF16');
    assert.deepEqual([...got.tensors.keys()], ['b']);
    // A failed write leaves the old file alone and nothing else.
    rejects(() => saveSafetensorsFile(path, new Map([['bad', tensor([3], [1])]])), /has 3 elements but data has 1/);
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
    assert.deepEqual(loadSafetensorsFile(path).metadata, { v: '2' });
    assert.throws(() => saveSafetensorsFile(join(sub, 'missing-dir', 'x.safetensors'), new Map()), /ENOENT/);
    assert.deepEqual(readdirSync(sub), ['model.safetensors']);
  });

  it('names the file in errors', () => {
    const path = join(dir, 'short.safetensors');
    writeFileSync(path, rawFile(GOOD_HEADER, 32).subarray(0, 50));
    rejects(() => loadSafetensorsFile(path), new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: header length \\d+ exceeds file size 50`));
  });
});

describe('checkpoints', () => {
  let dir: string;
  let n = 0;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'oeld-ckpt-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const all = new Map<string, Tensor>([
    ['model.embed_tokens.weight', tensor([4, 2], [1, 2, 3, 4, 5, 6, 7, 8])],
    ['model.layers.0.mlp.up_proj.weight', tensor([2, 2], [0.5, -0.5, 0.25, -0.25])],
    ['model.layers.1.mlp.up_proj.weight', tensor([2, 2], [9, 10, 11, 12])],
    ['model.norm.weight', tensor([2], [1, 1])],
  ]);
  const shard1 = 'model-00001-of-00002.safetensors';
  const shard2 = 'model-00002-of-00002.safetensors';

  /** A checkpoint directory with the given shards (name -> tensor names) and weight_map. */
  function sharded(shards: Record<string, string[]>, weightMap?: Record<string, string> | string): string {
    const d = join(dir, `ckpt-${n++}`);
    mkdirSync(d);
    const map: Record<string, string> = {};
    for (const [file, names] of Object.entries(shards)) {
      saveSafetensorsFile(join(d, file), new Map(names.map((k) => [k, all.get(k)!])), { format: 'pt' }, 'BF16');
      for (const k of names) map[k] = file;
    }
    const index = typeof weightMap === 'string' ? weightMap : JSON.stringify({ metadata: { total_size: 48 }, weight_map: weightMap ?? map });
    writeFileSync(join(d, 'model.safetensors.index.json'), index);
    return d;
  }
  const goodShards = { [shard1]: ['model.embed_tokens.weight', 'model.layers.0.mlp.up_proj.weight'], [shard2]: ['model.layers.1.mlp.up_proj.weight', 'model.norm.weight'] };

  it('loads a single model.safetensors', () => {
    const d = join(dir, 'single');
    mkdirSync(d);
    saveSafetensorsFile(join(d, 'model.safetensors'), all, { format: 'pt' });
    const got = loadCheckpoint(d);
    assert.deepEqual(got.metadata, { format: 'pt' });
    assert.deepEqual([...got.tensors.keys()].sort(), [...all.keys()].sort());
    for (const [k, t] of all) assert.deepEqual(got.tensors.get(k), t);
  });

  it('loads every shard an index names, and prefers the index over model.safetensors', () => {
    const d = sharded(goodShards);
    writeFileSync(join(d, 'model.safetensors'), rawFile(GOOD_HEADER, 32)); // ignored
    const got = loadCheckpoint(d);
    assert.deepEqual(got.metadata, { format: 'pt' });
    assert.deepEqual([...got.tensors.keys()].sort(), [...all.keys()].sort());
    for (const [k, t] of all) assert.deepEqual(got.tensors.get(k), t, k);
  });

  it('rejects a tensor missing from its shard', () => {
    const d = sharded({ [shard1]: ['model.embed_tokens.weight'], [shard2]: ['model.norm.weight'] }, {
      'model.embed_tokens.weight': shard1, 'model.norm.weight': shard2, 'model.layers.0.mlp.up_proj.weight': shard1,
    });
    rejects(() => loadCheckpoint(d), /model\.safetensors\.index\.json: 1 tensor\(s\) listed in weight_map are missing from their shard: "model\.layers\.0\.mlp\.up_proj\.weight" \(in "model-00001-of-00002\.safetensors"\)$/);
  });

  it('rejects a tensor in a different shard from the one the index names', () => {
    const d = sharded(goodShards, {
      'model.embed_tokens.weight': shard1, 'model.layers.0.mlp.up_proj.weight': shard2,
      'model.layers.1.mlp.up_proj.weight': shard2, 'model.norm.weight': shard2,
    });
    rejects(() => loadCheckpoint(d), /tensor "model\.layers\.0\.mlp\.up_proj\.weight" is in shard "model-00001-of-00002\.safetensors" but weight_map says "model-00002-of-00002\.safetensors"/);
  });

  it('rejects a tensor the index does not list', () => {
    const d = sharded(goodShards, { 'model.embed_tokens.weight': shard1, 'model.layers.1.mlp.up_proj.weight': shard2, 'model.norm.weight': shard2 });
    rejects(() => loadCheckpoint(d), /tensor "model\.layers\.0\.mlp\.up_proj\.weight" is in shard "model-00001-of-00002\.safetensors" but not in weight_map/);
  });

  it('rejects a tensor present in two shards', () => {
    for (const owner of [shard1, shard2]) {
      const d = sharded({ [shard1]: ['model.embed_tokens.weight', 'model.norm.weight'], [shard2]: ['model.norm.weight', 'model.layers.0.mlp.up_proj.weight'] }, {
        'model.embed_tokens.weight': shard1, 'model.layers.0.mlp.up_proj.weight': shard2, 'model.norm.weight': owner,
      });
      rejects(() => loadCheckpoint(d), new RegExp(`tensor "model\\.norm\\.weight" is in both "${shard1}" and "${shard2}" \\(weight_map says "${owner}"\\)`));
    }
  });

  it('rejects a missing shard, a shard outside the directory, a broken index and a broken shard, naming the file', () => {
    const d1 = sharded(goodShards, { ...Object.fromEntries([...all.keys()].map((k) => [k, shard1])), 'model.norm.weight': 'model-00003-of-00003.safetensors' });
    rejects(() => loadCheckpoint(d1), /index\.json: shard "model-00003-of-00003\.safetensors" named in weight_map does not exist/);
    for (const evil of ['../x.safetensors', '/etc/passwd', 'a/b.safetensors', '..', '']) {
      const d = sharded(goodShards, { 'model.norm.weight': evil });
      rejects(() => loadCheckpoint(d), /names shard .* which is not a plain file name in the checkpoint directory/);
    }
    rejects(() => loadCheckpoint(sharded(goodShards, '{"weight_map": ')), /model\.safetensors\.index\.json: not JSON: /);
    rejects(() => loadCheckpoint(sharded(goodShards, '{"metadata": {}}')), /index\.json: has no "weight_map" object$/);
    rejects(() => loadCheckpoint(sharded(goodShards, '{"weight_map": {}}')), /index\.json: weight_map is empty$/);
    rejects(() => loadCheckpoint(sharded(goodShards, '{"weight_map": {"a": 3}}')), /index\.json: weight_map "a" is 3, not a file name$/);
    const d2 = sharded(goodShards);
    const p = join(d2, shard2);
    writeFileSync(p, readFileSync(p).subarray(0, -1));
    rejects(() => loadCheckpoint(d2), new RegExp(`${shard2}: tensor "model\\.norm\\.weight": data_offsets \\[8,12\\] out of bounds \\(the data buffer is 11 bytes`));
    const empty = join(dir, 'empty-dir');
    mkdirSync(empty);
    rejects(() => loadCheckpoint(empty), /empty-dir: neither model\.safetensors nor model\.safetensors\.index\.json exists$/);
  });
});

describe('malformed files are rejected with the specific reason', () => {
  const good = rawFile(GOOD_HEADER, new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer));
  const headerLen = good.length - 8 - 32;

  it('accepts the well-formed file these cases start from', () => {
    const got = read(good);
    assert.deepEqual(Array.from(got.tensors.get('a')!.data), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(got.tensors.get('b')!.data), [7, 8]);
  });

  it('truncation anywhere, with the reason for each region', () => {
    for (const at of [0, 1, 7]) rejects(() => read(good.subarray(0, at)), `t.safetensors: file is ${at} bytes, too short for the 8-byte header length (truncated?)`);
    for (const at of [8, 9, 20, 8 + headerLen - 1]) rejects(() => read(good.subarray(0, at)), `t.safetensors: header length ${headerLen} exceeds file size ${at} (truncated?)`);
    const dataStart = 8 + headerLen;
    rejects(() => read(good.subarray(0, dataStart)), /^t\.safetensors: tensor "a": data_offsets \[0,24\] out of bounds \(the data buffer is 0 bytes; truncated\?\)$/);
    rejects(() => read(good.subarray(0, dataStart + 24)), /^t\.safetensors: tensor "b": data_offsets \[24,32\] out of bounds \(the data buffer is 24 bytes; truncated\?\)$/);
    rejects(() => read(good.subarray(0, good.length - 1)), /tensor "b": data_offsets \[24,32\] out of bounds \(the data buffer is 31 bytes/);
    for (let at = 0; at < good.length; at++) assert.throws(() => read(good.subarray(0, at)), SafetensorsError, `truncated at ${at}`);
  });

  it('a header length past the end of the file, or over the 100 MB limit', () => {
    const body = new Uint8Array(1234);
    body.set(good.subarray(8, 8 + 1226), 8);
    const set = (n: bigint) => { const f = body.slice(); new DataView(f.buffer).setBigUint64(0, n, true); return f; };
    rejects(() => read(set(9999999n)), 't.safetensors: header length 9999999 exceeds file size 1234 (truncated?)');
    rejects(() => read(set(1227n)), 't.safetensors: header length 1227 exceeds file size 1234 (truncated?)');
    rejects(() => read(set(100_000_000n)), 't.safetensors: header length 100000000 exceeds file size 1234 (truncated?)');
    rejects(() => read(set(100_000_001n)), 't.safetensors: header length 100000001 exceeds the 100000000-byte limit');
    rejects(() => read(set(2n ** 60n)), 't.safetensors: header length 1152921504606846976 exceeds the 100000000-byte limit');
    rejects(() => read(set(2n ** 64n - 1n)), 't.safetensors: header length 18446744073709551615 exceeds the 100000000-byte limit');
    rejects(() => read(set(0n)), 't.safetensors: header is empty (header length 0)');
  });

  it('a header that is not UTF-8, not JSON, or not an object', () => {
    rejects(() => read(rawFile('{"a": 1\xff}')), /header is not JSON/);
    const bad = good.slice();
    bad[8 + 3] = 0xff; // inside the first name
    rejects(() => read(bad), `t.safetensors: header is not valid UTF-8 (${headerLen} bytes at offset 8)`);
    const brace = good.slice();
    brace[8] = '['.charCodeAt(0);
    rejects(() => read(brace), /^t\.safetensors: header is not JSON: /);
    rejects(() => read(rawFile('\uFEFF{}')), /header is not JSON/);
    rejects(() => read(rawFile('{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}')), /header is not JSON/);
    rejects(() => read(rawFile('[]')), 't.safetensors: header is not a JSON object (got an array)');
    rejects(() => read(rawFile('null')), 't.safetensors: header is not a JSON object (got null)');
    rejects(() => read(rawFile('42   ')), 't.safetensors: header is not a JSON object (got number)');
    rejects(() => read(rawFile({ a: 5 })), 't.safetensors: tensor "a": entry is not an object');
    rejects(() => read(rawFile({ __metadata__: ['x'] })), 't.safetensors: __metadata__ is not an object of strings');
    rejects(() => read(rawFile({ __metadata__: { total_size: 12 } })), 't.safetensors: __metadata__ "total_size" is 12, not a string');
    // Padding and whitespace are fine; an empty tensor list is a valid (empty) file.
    assert.equal(read(rawFile('  {}        ')).tensors.size, 0);
  });

  it('data_offsets out of bounds, reversed, or not integers', () => {
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8)), 't.safetensors: tensor "x": data_offsets [0,16] out of bounds (the data buffer is 8 bytes; truncated?)');
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [0], data_offsets: [9, 9] } }, 8)), /tensor "x": data_offsets \[9,9\] out of bounds/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [2 ** 53, 2 ** 53 + 4] } }, 8)), /tensor "x": data_offsets \[9007199254740992,9007199254740996\] are not non-negative integers/);
    rejects(() => read(rawFile('{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551620]}}', 8)), /are not non-negative integers/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8)), 't.safetensors: tensor "x": data_offsets [8,0] end before they begin');
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [-1, 7] } }, 8)), 't.safetensors: tensor "x": data_offsets [-1,7] are not non-negative integers');
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 7.5] } }, 8)), /data_offsets \[0,7.5\] are not non-negative integers/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, 8)), /data_offsets \["0","8"\] are not non-negative integers/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8)), 't.safetensors: tensor "x": data_offsets must be [begin, end]');
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2] } }, 8)), /data_offsets must be \[begin, end\]/);
  });

  it('a shape that does not match its byte range', () => {
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20)), 't.safetensors: tensor "x": shape [2,3] needs 24 bytes, offsets give 20 (F32 is 32 bits per element)');
    rejects(() => read(rawFile({ x: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 24] } }, 24)), /tensor "x": shape \[2,3\] needs 12 bytes, offsets give 24 \(BF16 is 16 bits/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [], data_offsets: [0, 0] } })), /shape \[\] needs 4 bytes, offsets give 0/);
    rejects(() => read(rawFile({ x: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 2)), /shape \[3\] needs 12 bits \(not a whole number of bytes\), offsets give 2/);
    // A shape built to overflow, or to ask for a huge allocation, fails before anything is allocated.
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2 ** 26, 2 ** 26], data_offsets: [0, 8] } }, 8)), /shape \[67108864,67108864\] needs 18014398509481984 bytes, offsets give 8/);
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8)), /shape \[1073741824,1073741824,1073741824\] has too many elements/);
    // Zero anywhere makes zero elements, however large the rest.
    assert.deepEqual(read(rawFile({ x: { dtype: 'F32', shape: [2 ** 40, 0], data_offsets: [0, 0] } })).tensors.get('x')!.data.length, 0);
  });

  it('negative, fractional or non-numeric dimensions', () => {
    for (const [dim, shown] of [[-1, '-1'], [2.5, '2.5'], ['3', '"3"'], [null, 'null'], [1e300, '1e+300'], [2 ** 53, '9007199254740992']] as const) {
      const header = { x: { dtype: 'F32', shape: [2, dim], data_offsets: [0, 8] } };
      rejects(() => read(rawFile(header, 8)), `t.safetensors: tensor "x": shape [2,${shown}] has invalid dimension ${shown} (dimensions must be non-negative integers)`);
    }
    rejects(() => read(rawFile({ x: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, 8)), 't.safetensors: tensor "x": shape is missing or not an array');
  });

  it('unknown and unsupported dtypes', () => {
    rejects(() => read(rawFile({ x: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, 8)), 't.safetensors: tensor "x": unknown dtype "F33"');
    rejects(() => read(rawFile({ x: { dtype: 'f32', shape: [2], data_offsets: [0, 8] } }, 8)), 't.safetensors: tensor "x": unknown dtype "f32"');
    rejects(() => read(rawFile({ x: { shape: [2], data_offsets: [0, 8] } }, 8)), 't.safetensors: tensor "x": dtype is missing or not a string');
    for (const [dtype, bytes] of [['I64', 8], ['F64', 8], ['I32', 4], ['U8', 1], ['BOOL', 1], ['F8_E4M3', 1], ['I16', 2]] as const) {
      const f = rawFile({ ok: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'layer.x': { dtype, shape: [3], data_offsets: [4, 4 + 3 * bytes] } }, 4 + 3 * bytes);
      rejects(() => read(f), `t.safetensors: tensor "layer.x": dtype ${dtype} is not supported (only F32, F16 and BF16 can be read)`);
    }
  });

  it('overlapping tensors, gaps, and bytes no tensor covers', () => {
    const f32 = (begin: number, n: number) => ({ dtype: 'F32', shape: [n], data_offsets: [begin, begin + 4 * n] });
    rejects(() => read(rawFile({ a: f32(0, 2), b: f32(4, 2) }, 12)), 't.safetensors: tensor "b": data_offsets [4,12] overlap tensor "a" [0,8]');
    rejects(() => read(rawFile({ a: f32(0, 2), b: f32(0, 2) }, 8)), /tensor "[ab]": data_offsets \[0,8\] overlap tensor "[ab]" \[0,8\]/);
    rejects(() => read(rawFile({ a: f32(0, 3), b: f32(4, 1) }, 12)), 't.safetensors: tensor "b": data_offsets [4,8] overlap tensor "a" [0,12]');
    rejects(() => read(rawFile({ a: f32(0, 2), b: f32(12, 2) }, 20)), 't.safetensors: gap of 4 bytes between tensor "a" [0,8] and tensor "b" [12,20]');
    rejects(() => read(rawFile({ b: f32(8, 2) }, 16)), 't.safetensors: gap of 8 bytes before the first tensor "b" [8,16]');
    rejects(() => read(rawFile({ a: f32(0, 2) }, 12)), 't.safetensors: 4 bytes after the last tensor "a" [0,8] are not covered by any tensor');
    rejects(() => read(rawFile({}, 4)), 't.safetensors: 4 bytes of data but the header lists no tensors');
    // Out of name order in the buffer is fine, and zero-size tensors may share an offset.
    const ok = read(rawFile({ z: f32(0, 1), a: f32(4, 1), e1: f32(4, 0), e2: f32(8, 0) }, new Uint8Array(new Float32Array([1, 2]).buffer)));
    assert.deepEqual([...ok.tensors].map(([k, t]) => [k, Array.from(t.data)]).sort(), [['a', [2]], ['e1', []], ['e2', []], ['z', [1]]]);
  });

  it('flipped bytes anywhere in the length or header: a SafetensorsError or a consistent file, never anything else', () => {
    const file = writeSafetensors(new Map([['alpha', tensor([2, 3], [1, 2, 3, 4, 5, 6])], ['beta', tensor([2], [7, 8])]]), { format: 'pt' }, 'BF16');
    const { headerLen: n } = split(file);
    let rejected = 0;
    let accepted = 0;
    for (let i = 0; i < 8 + n; i++) {
      for (const mask of [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff]) {
        const bad = file.slice();
        bad[i]! ^= mask;
        let got;
        try {
          got = readSafetensors(bad, 'fuzz');
        } catch (err) {
          assert.ok(err instanceof SafetensorsError, `byte ${i} ^ 0x${mask.toString(16)}: ${String(err)}`);
          assert.match(err.message, /^fuzz: /);
          rejected++;
          continue;
        }
        accepted++; // e.g. a changed letter in a name or in metadata, or a space changed to another space
        let bytes = 0;
        for (const t of got.tensors.values()) {
          assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
          bytes += 2 * t.data.length;
        }
        assert.equal(bytes, 16, `byte ${i} ^ 0x${mask.toString(16)} still covers the whole buffer`);
      }
    }
    assert.ok(rejected > accepted, `${rejected} rejected, ${accepted} accepted`);
    // Specific flips: the length's top byte, a digit of an offset, the dtype.
    const top = file.slice();
    top[7] = 0x10;
    rejects(() => readSafetensors(top, 'fuzz'), `fuzz: header length ${0x10n << 56n | BigInt(n)} exceeds the 100000000-byte limit`);
    const text = new TextDecoder().decode(file.subarray(8, 8 + n));
    const digit = file.slice();
    digit[8 + text.indexOf('"data_offsets":[0,12]') + 19] = '4'.charCodeAt(0); // [0,12] -> [0,14]
    rejects(() => readSafetensors(digit, 'fuzz'), 'fuzz: tensor "alpha": shape [2,3] needs 12 bytes, offsets give 14 (BF16 is 16 bits per element)');
    const dtype = file.slice();
    dtype[8 + text.indexOf('"BF16"') + 1] = 'C'.charCodeAt(0);
    rejects(() => readSafetensors(dtype, 'fuzz'), 'fuzz: tensor "alpha": unknown dtype "CF16"');
  });
});
