/**
 * A round's plan with its replies sampled once, up front, from the round-start model (as step 1
 * would sample them: the student's prompts for OPCD and opcd-forward, the teacher's for off-policy): the input of
 * replay mode, in which two trainers (or one trainer in one and in several processes) compute the
 * same round on the same tokens. For comparisons (tests, the GPU check), not for rounds.
 */
import { loadModel } from '../model/formats/checkpoint.ts';
import { loadTokenizer } from '../model/formats/tokenizer.ts';
import type { Prompt } from '../model/inference/chat-prompt.ts';
import { generate } from '../model/inference/generate.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { studentSamples, type RoundTrainingOptions } from './opcd-round.ts';
import { planRound, type PlannedStep } from './round-plan.ts';

export async function planWithReplies(dir: string, prompts: readonly Prompt[], knowledgeTexts: readonly string[], o: RoundTrainingOptions, reading: readonly Prompt[] = []): Promise<{ plan: PlannedStep[]; replay: number[][][] }> {
  const tokenizer = await loadTokenizer(dir);
  const { model, weightsDir } = loadModel(dir, { trainable: false });
  try {
    const special = weightsDir === dir ? tokenizer : await loadTokenizer(weightsDir);
    const plan = planRound(special, model.config.maxPositions, prompts, knowledgeTexts, o, reading);
    const replay = plan.map((s) => generate(model, s.examples.map((e) => (studentSamples(o.method) ? e.studentIds : e.teacherIds)), {
      ...DEPLOYMENT_SAMPLING, temperature: o.temperature, maxNewTokens: o.maxNewTokens, eosTokenIds: [...special.eosTokenIds], padTokenId: special.padTokenId ?? 0, seed: s.sampleSeed,
    }).tokens);
    return { plan, replay };
  } finally {
    model.dispose();
  }
}
