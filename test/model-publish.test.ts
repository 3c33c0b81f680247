/**
 * `oeld model generate` (what to compare with another runtime) and `oeld model publish` (a folder
 * into a running daemon's registry through its admin API): the checks before publication, the
 * copy into the artifact store, the sha256, activation, and the refusals with their reasons.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { oeld } from './helpers/oeld-cli.ts';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const TOKEN = 'publish-test-token-0123456789';

describe('oeld model generate and publish', () => {
  let base = '';
  let other = '';
  let dataDir = '';
  let daemon: DaemonProcess;
  let url = '';
  before(async () => {
    base = await makeTinyModel(undefined, 1);
    other = await makeTinyModel(undefined, 2);
    dataDir = await mkdtemp(join(tmpdir(), 'oeld-publish-'));
    daemon = spawnDaemon({ OELD_DATA_DIR: dataDir, OELD_LEARNING: 'true', OELD_SIMULATOR: 'off', OELD_BASE_MODEL_DIR: base, OELD_ADMIN_TOKEN: TOKEN, OELD_ROUND_MIN_INTERACTIONS: '100000', OELD_PROJECTION_POLL_MS: '100' });
    url = await daemon.url();
    await daemon.waitForLog(/published and activated the base model/, 60_000);
  });
  after(async () => {
    await daemon?.kill('SIGTERM');
    for (const d of [dataDir, dirname(base), dirname(other)]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('generate prints the prompt ids, the greedy continuation and the top logits, consistent with each other', async () => {
    const r = await oeld(['model', 'generate', other, '--prompt', 'Where is the goal?', '--tokens', '6', '--top', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { promptIds: number[]; tokens: number[]; topLogits: { id: number; logit: number }[] };
    assert.ok(out.promptIds.length > 3);
    assert.ok(out.tokens.length >= 1 && out.tokens.length <= 6);
    assert.equal(out.topLogits.length, 4);
    assert.ok(out.topLogits.every((t, i) => i === 0 || t.logit <= out.topLogits[i - 1]!.logit), 'largest first');
    assert.equal(out.tokens[0], out.topLogits[0]!.id, 'the greedy first token is the largest logit (generation and the forward pass agree)');
    const bad = await oeld(['model', 'generate', other, '--prompt', 'x', '--tokens', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tokens: expected an integer from 1 to 4096, got "0"/);
  });

  it('publishes a folder into the running daemon: checked, copied, its sha256 recorded, active when asked', async () => {
    const r = await oeld(['model', 'publish', other, '--version', 'imported-1', '--activate', '--url', url, '--json'], { OELD_ADMIN_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { path: string; sha256: string; activated: boolean };
    assert.equal(out.path, join(dataDir, 'artifacts', 'models', 'imported-1'));
    assert.equal(out.sha256, createHash('sha256').update(readFileSync(join(other, 'model.safetensors'))).digest('hex'));
    assert.ok(out.activated);
    // The copy is the version: the folder it came from may change or go.
    writeFileSync(join(other, 'model.safetensors'), 'changed');
    assert.equal(createHash('sha256').update(readFileSync(join(out.path, 'model.safetensors'))).digest('hex'), out.sha256);
    const status = async () => (await (await fetch(`${url}/admin/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { activeModel: { version: string; reason: string } | null };
    for (let i = 0; i < 50 && (await status()).activeModel?.version !== 'imported-1'; i++) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual((await status()).activeModel && { version: (await status()).activeModel!.version, reason: (await status()).activeModel!.reason }, { version: 'imported-1', reason: 'published' });
  });

  it('refuses, with the reason, a version name already published, a name the registry cannot hold, and a folder the runtime could not load', async () => {
    const post = (body: unknown) => fetch(`${url}/admin/models`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const again = await post({ folder: base, version: 'imported-1' });
    assert.equal(again.status, 409);
    assert.match(((await again.json()) as { error: string }).error, /imported-1 is already published/);
    const name = await post({ folder: base, version: 'has spaces' });
    assert.equal(name.status, 409);
    assert.match(((await name.json()) as { error: string }).error, /version "has spaces": model versions use letters, digits/);
    const broken = join(dataDir, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'model.safetensors'), readFileSync(join(base, 'model.safetensors')));
    writeFileSync(join(broken, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(base, 'config.json'), 'utf8')), model_type: 'mamba' }));
    const refused = await post({ folder: broken, version: 'broken-1' });
    assert.equal(refused.status, 409);
    assert.match(((await refused.json()) as { error: string }).error, /broken: config: model_type: expected one of "llama", "qwen2", "qwen3" \(got "mamba"\)/);
    assert.ok(!existsSync(join(dataDir, 'artifacts', 'models', 'broken-1')), 'nothing copied');
  });
});
