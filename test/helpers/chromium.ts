import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

/** Debian's chromium; scripts/ensure-chromium.sh installs it (scripts/test.sh runs that). */
export const CHROMIUM = '/usr/bin/chromium';

/** Fails (never skips) with what to do when Chromium is missing. */
export function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    assert.fail(`headless Chromium is needed for this test and ${CHROMIUM} is missing: run \`bash scripts/ensure-chromium.sh\` (needs root; scripts/test.sh runs it)`);
  }
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/**
 * Runs headless Chromium once with a fresh profile directory (removed afterwards). Chromium runs
 * in its own process group, which is killed when it exits or times out, so no helper process
 * (zygote, crash handler) outlives the call.
 */
export async function runChromium(args: string[], timeoutMs = 60_000): Promise<string> {
  requireChromium();
  const profile = await mkdtemp(join(tmpdir(), 'oeld-chromium-profile-'));
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      const killGroup = () => { try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } };
      const timer = setTimeout(() => { killGroup(); reject(new Error(`chromium ${args.join(' ')} ran over ${timeoutMs} ms; stderr:\n${Buffer.concat(err).toString().slice(-4000)}`)); }, timeoutMs);
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        killGroup();
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else reject(new Error(`chromium ${args.join(' ')} exited with ${code ?? signal}; stderr:\n${Buffer.concat(err).toString().slice(-4000)}`));
      });
    });
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** The DOM after load, serialised by Chromium (--dump-dom). */
export const dumpDom = (url: string) => runChromium(['--dump-dom', url]);

/** A PNG screenshot of the page at the given window size. */
export async function screenshot(url: string, width = 1280, height = 1200): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'oeld-chromium-shot-'));
  try {
    const file = join(dir, 'page.png');
    await runChromium([`--screenshot=${file}`, `--window-size=${width},${height}`, '--hide-scrollbars', url]);
    return await readFile(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The text a DOM dump shows: tags dropped, character references decoded. */
export function domText(dom: string): string {
  return dom
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
      return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", nbsp: '\u00a0' } as Record<string, string>)[e.toLowerCase()] ?? m;
    })
    .replace(/\s+/g, ' ');
}

export interface Image { width: number; height: number; channels: number; pixels: Buffer }

/** Decodes an 8-bit, non-interlaced PNG (what Chromium writes) into raw pixels. */
export function decodePng(png: Buffer): Image {
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'not a PNG (bad signature)');
  let width = 0, height = 0, depth = 0, colour = -1, interlace = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') { width = data.readUInt32BE(0); height = data.readUInt32BE(4); depth = data[8]!; colour = data[9]!; interlace = data[12]!; }
    if (type === 'IDAT') idat.push(data);
    if (type === 'IEND') break;
    at += 12 + len;
  }
  const channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[colour];
  assert.ok(depth === 8 && channels && interlace === 0, `unsupported PNG: bit depth ${depth}, colour type ${colour}, interlace ${interlace}`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  assert.equal(raw.length, height * (stride + 1), 'PNG data length does not match its header');
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      let v = line[x]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(filter, 0, `bad PNG filter ${filter}`);
      pixels[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}
