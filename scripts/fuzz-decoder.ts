/**
 * A long fuzzing run of the interaction decoder (`npm run fuzz -- --count 2000000 --seed 1`):
 * the generators and the contract of test/decoder-fuzz.test.ts, more inputs and any seed. Prints
 * progress and every input that breaks the contract; with --save, writes each one to
 * test/fixtures/decoder/ so that `npm test` checks it from then on. Exit status 1 when any broke it.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkDecoder, fuzzInputs } from '../test/helpers/decoder-fuzz.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '1000000' }, seed: { type: 'string', default: String(Date.now() % 1_000_000) }, save: { type: 'boolean', default: false } } });
const count = Number(values.count), seed = Number(values.seed);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) throw new Error(`--count and --seed take integers (got ${values.count}, ${values.seed})`);

const fixtures = new URL('../test/fixtures/decoder/', import.meta.url).pathname;
let broken = 0, accepted = 0, done = 0;
const t0 = performance.now();
for (const { family, bytes } of fuzzInputs(seed, count)) {
  const r = checkDecoder(bytes);
  done++;
  if (r.accepted) accepted++;
  if (r.violation) {
    broken++;
    const name = `fuzz-${family}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.json`;
    console.log(`input ${done} (${family}, ${bytes.length} bytes): ${r.violation}${values.save ? ` -> test/fixtures/decoder/${name}` : ''}`);
    if (values.save) writeFileSync(`${fixtures}${name}`, bytes);
  }
  if (done % 100_000 === 0) console.log(`${done}/${count} inputs, ${accepted} accepted, ${broken} broke the contract (${(done / ((performance.now() - t0) / 1000)).toFixed(0)}/s)`);
}
console.log(`seed ${seed}: ${done} inputs, ${accepted} accepted, ${done - accepted - broken} rejected with a reason, ${broken} broke the contract`);
process.exitCode = broken ? 1 : 0;
