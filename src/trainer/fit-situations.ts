/** Logged prompts fitted into the model's context beside the reply and the teacher's knowledge (rounds and the chat gate). */
import { teacherMessages, type KnowledgePlacement } from '../extraction/teacher-prompt.ts';
import { fitPrompt, promptIds, userPrompt, type Prompt, type TemplateVariables } from '../model/chat-prompt.ts';
import type { Tokenizer } from '../model/tokenizer.ts';

export interface FitOptions { maxNewTokens: number; knowledgePlacement: KnowledgePlacement; templateVariables?: TemplateVariables }

/**
 * The prompts fitted into the model's context (chat-prompt.ts fitPrompt: cut from the left,
 * keeping the system message), leaving room for the sampled response and for the longest
 * knowledge text the teacher adds. Throws when the knowledge alone leaves no room.
 */
export function fitSituations(tokenizer: Tokenizer, contextTokens: number, situations: readonly Prompt[], knowledgeTexts: readonly string[], o: FitOptions): Prompt[] {
  const probe = userPrompt('x');
  const base = promptIds(tokenizer, probe, o.templateVariables).length;
  const overhead = Math.max(0, ...knowledgeTexts.map((k) => promptIds(tokenizer, teacherMessages(k, probe, o.knowledgePlacement), o.templateVariables).length - base));
  const budget = contextTokens - o.maxNewTokens - overhead;
  if (budget < base + 8) {
    throw new RangeError(`the model's context (${contextTokens} tokens) leaves no room for a prompt beside a ${o.maxNewTokens}-token response and the longest knowledge text (${overhead} tokens)`);
  }
  return situations.map((s) => fitPrompt(tokenizer, s, budget, o.templateVariables).prompt);
}
