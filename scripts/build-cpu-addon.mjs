#!/usr/bin/env node
/**
 * Builds oeld's native CPU matmul (src/model/kernels/native/cpu/, a Node-API addon) into
 * .build/oeld-cpu-kernels.node with the system's C++ compiler (g++, or $CXX) and Node's own
 * headers (node_api.h). Nothing is downloaded.
 *
 *   node scripts/build-cpu-addon.mjs              # build, or fail with the reason (tests)
 *   node scripts/build-cpu-addon.mjs --optional   # npm's postinstall: on failure, say why and
 *                                                 # exit 0 (the runtime then uses the wasm kernel)
 *
 * Skips the build when .build/oeld-cpu-kernels.stamp records the same sources, compiler, flags
 * and Node version. On x86-64, each instruction set's translation unit gets its own -m flags and
 * the addon picks the widest the CPU has when it loads; elsewhere only the generic one is built.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src/model/kernels/native/cpu');
const outDir = path.join(root, '.build');
const out = path.join(outDir, 'oeld-cpu-kernels.node');
const stampFile = path.join(outDir, 'oeld-cpu-kernels.stamp');
const optional = process.argv.includes('--optional');

let tmp;

function fail(reason) {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (optional) {
    console.warn(`oeld: the native CPU matmul was not built (${reason}); the WebAssembly kernel will be used. Run \`node scripts/build-cpu-addon.mjs\` to retry.`);
    process.exit(0);
  }
  console.error(`build-cpu-addon: ${reason}`);
  process.exit(1);
}

function includeDir() {
  const candidates = [
    process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include/node'),
    path.resolve(process.execPath, '../../include/node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  return candidates.find((d) => existsSync(path.join(d, 'node_api.h')));
}

const x86 = process.arch === 'x64' || process.arch === 'ia32';
const isaFlags = {
  'gemm-avx512.cc': ['-mavx512f', '-mavx2', '-mfma'], 'gemm-avx512-narrow.cc': ['-mavx512f', '-mavx2', '-mfma'], 'elementwise-avx512.cc': ['-mavx512f', '-mavx2', '-mfma'],
  'elementwise-avx2.cc': ['-mavx2', '-mfma'], 'gemm-avx2.cc': ['-mavx2', '-mfma'], 'gemm-generic.cc': [],
  // The decoder's loops of exp (softmax) and dot products vectorize only with reassociation and glibc's vector math.
  'decoder-avx512.cc': ['-mavx512f', '-mavx2', '-mfma', '-ffast-math'], 'decoder-avx2.cc': ['-mavx2', '-mfma', '-ffast-math'], 'decoder-generic.cc': ['-ffast-math'] };
const units = ['addon.cc', 'decoder.cc', 'thread-pool.cc', 'gemm-generic.cc', 'elementwise-generic.cc', 'decoder-generic.cc',
  ...(x86 ? ['gemm-avx512.cc', 'gemm-avx512-narrow.cc', 'gemm-avx2.cc', 'elementwise-avx512.cc', 'elementwise-avx2.cc', 'decoder-avx512.cc', 'decoder-avx2.cc'] : [])];
const cxx = process.env.CXX || 'g++';
const common = ['-O3', '-std=c++17', '-fPIC', '-pthread', '-fvisibility=hidden', '-ffp-contract=fast', '-fno-exceptions', '-Wall'];

const inc = includeDir();
if (!inc) fail('Node\'s headers (node_api.h) were not found; on Debian: apt-get install libnode-dev, or set npm_config_nodedir');
const version = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
if (version.status !== 0) fail(`no C++ compiler: \`${cxx} --version\` ${version.error ? `failed: ${version.error.message}` : `exited ${version.status}`}`);

const hash = createHash('sha256');
for (const f of readdirSync(src).sort()) hash.update(f).update(readFileSync(path.join(src, f)));
hash.update(JSON.stringify({ cxx, v: version.stdout.split('\n')[0], common, isaFlags, units, node: process.versions.modules, inc }));
const stamp = hash.digest('hex');
if (existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) process.exit(0);

mkdirSync(outDir, { recursive: true });
tmp = path.join(outDir, `oeld-cpu-kernels.${process.pid}.tmp`);
mkdirSync(tmp, { recursive: true });
try {
  const objects = [];
  for (const u of units) {
    const o = path.join(tmp, u.replace(/\.cc$/, '.o'));
    const r = spawnSync(cxx, [...common, ...(isaFlags[u] ?? []), `-I${inc}`, '-c', path.join(src, u), '-o', o], { encoding: 'utf8' });
    if (r.status !== 0) fail(`${cxx} failed on ${u}:\n${r.stderr || r.error?.message}`);
    objects.push(o);
  }
  const linked = path.join(tmp, 'oeld-cpu-kernels.node');
  const r = spawnSync(cxx, ['-shared', '-pthread', '-o', linked, ...objects], { encoding: 'utf8' });
  if (r.status !== 0) fail(`linking failed:\n${r.stderr || r.error?.message}`);
  renameSync(linked, out);
  writeFileSync(stampFile, stamp);
  console.log(`oeld: built ${path.relative(root, out)}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
