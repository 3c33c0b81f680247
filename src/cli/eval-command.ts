import { gameByName, OOD_GAME } from '../envs/games.ts';
import { poolKey } from '../projections/knowledge/knowledge-base.ts';
import { TEST_SEEDS, VALIDATION_SEEDS } from '../envs/seed-ranges.ts';
import { randomUUID } from 'node:crypto';
import { evaluateVersion } from '../evaluation/evaluate.ts';
import { localEngine } from '../engine/local-engine.ts';
import { catchUpProjections } from '../operations/catch-up.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { readModelVersion } from '../projections/models/model-projection.ts';
import { EventStore } from '../store/event-store.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'evaluate a model version on held-out seeds (pass rate, response tokens, turns) and record the result',
  usage: 'oeld eval --model <version> [--knowledge <version>] [--slot N] [--split test|validation] [--game frozenlake|lake-XO|sokoban] [--episodes N]',
  help: [
    'Plays one episode per held-out seed (128 test seeds by default) with the evaluation sampling preset',
    '(temperature 0.7, top_p 0.8, top_k 20), no knowledge in context unless --knowledge names the model',
    'version whose extracted pool (slot --slot, default 0) is put in the prompt: the in-context baseline.',
    '--game lake-XO is the out-of-distribution check: a world the loop never trains on.',
    'The result is recorded as an EvaluationRecorded event. With the embedded database, stop the daemon first.',
  ],
  options: {
    model: { type: 'string' }, knowledge: { type: 'string' }, slot: { type: 'string' },
    split: { type: 'string' }, game: { type: 'string' }, episodes: { type: 'string' },
  },
  async run(v, _p, ctx) {
    if (typeof v.model !== 'string') throw new UsageError('--model <version> is required');
    const split = (v.split ?? 'test') as string;
    if (split !== 'test' && split !== 'validation') throw new UsageError(`--split must be test or validation, got ${JSON.stringify(split)}`);
    const range = split === 'test' ? TEST_SEEDS : VALIDATION_SEEDS;
    const episodes = v.episodes === undefined ? range.count : Number(v.episodes);
    if (!Number.isInteger(episodes) || episodes < 1 || episodes > range.count) throw new UsageError(`--episodes must be an integer from 1 to ${range.count}, got ${JSON.stringify(v.episodes)}`);
    const slot = v.slot === undefined ? 0 : Number(v.slot);
    if (!Number.isInteger(slot) || slot < 0) throw new UsageError(`--slot must be a non-negative integer, got ${JSON.stringify(v.slot)}`);
    const game = gameByName(typeof v.game === 'string' ? v.game : 'frozenlake');
    const result = await withDatabase(ctx.env, async (sql) => {
      await catchUpProjections(sql);
      const model = await readModelVersion(sql, v.model as string);
      if (!model) throw new UsageError(`--model ${JSON.stringify(v.model)}: no such model version (oeld status lists them)`);
      let knowledge: { text: string; modelVersion: string; slot: number } | undefined;
      if (typeof v.knowledge === 'string') {
        const kb = await readKnowledgeVersion(sql);
        // The game's own pools (the out-of-distribution world reads FrozenLake's), or pools from before tasks.
        const task = game.id === OOD_GAME ? 'frozenlake' : game.id;
        const pool = kb?.pools.find((p) => p.modelVersion === v.knowledge && p.slot === slot && (p.taskId === task || p.taskId === ''));
        if (!pool) throw new UsageError(`--knowledge ${JSON.stringify(v.knowledge)} --slot ${slot}: the knowledge base has no such pool of task ${task} (its pools: ${kb?.pools.map((p) => poolKey(p.taskId, p.modelVersion, p.slot)).join(', ') || 'none'})`);
        knowledge = { text: pool.text, modelVersion: pool.modelVersion, slot };
      }
      const engine = localEngine();
      try {
        await engine.load(model.version, model.path);
        const r = await evaluateVersion(engine, model.version, {
          game, seeds: { ...range, count: episodes }, split, maxNewTokens: game.responseTokens, ...(knowledge ? { knowledge } : {}),
          onProgress: (p) => { if (!ctx.json) process.stderr.write(`\r${p.episodesDone}/${p.episodes} episodes`); },
        });
        if (!ctx.json) process.stderr.write('\n');
        await new EventStore(sql).append([{ streamId: `evaluation-${model.version}`, expectedVersion: 'any', events: [{ id: randomUUID(), type: 'EvaluationRecorded', data: r.event }] }]);
        return r.event;
      } finally {
        await engine.close();
      }
    });
    emit(ctx, result, [
      `model           ${result.modelVersion}${result.knowledge ? ` with knowledge ${result.knowledge.modelVersion}#${result.knowledge.slot} in context` : ' (no knowledge in context)'}`,
      `game            ${result.game}, ${result.split} seeds ${result.seeds.start}..${result.seeds.start + result.seeds.count - 1}`,
      `pass rate       ${(100 * result.passRate).toFixed(1)}% of ${result.episodes} episodes`,
      `response tokens ${result.meanResponseTokens.toFixed(2)} per response`,
      `turns           ${result.meanTurns.toFixed(2)} per episode`,
    ].join('\n'));
    return 0;
  },
};
