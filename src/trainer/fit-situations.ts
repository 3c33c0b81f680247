/**
 * A logged prompt fitted into the model's context beside the reply and the teacher's knowledge
 * (rounds and the chat gate): the student's prompt is cut from the left (chat-prompt.ts fitPrompt)
 * until the teacher's prompt, the same messages with the knowledge placed, leaves room for the
 * reply. A prompt that fits is returned as it is, so a game's short situations never change; the
 * token ids come with it, so that nothing is encoded twice.
 */
import { teacherMessages, type KnowledgePlacement } from '../extraction/teacher-prompt.ts';
import { fitPrompt, promptIds, type FittedPrompt, type Prompt, type TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';

export interface FitOptions { maxNewTokens: number; knowledgePlacement: KnowledgePlacement; templateVariables?: TemplateVariables }

/** A prompt fitted for one example: what the student and the teacher read, and their token ids. */
export interface FittedPair { prompt: Prompt; studentIds: number[]; teacherIds: number[] }

export function fitWithKnowledge(tokenizer: Tokenizer, contextTokens: number, prompt: Prompt, knowledge: string, o: FitOptions): FittedPair {
  const room = contextTokens - o.maxNewTokens;
  const noRoom = (teacherTokens: number) => new RangeError(`the model's context (${contextTokens} tokens) leaves no room for a prompt beside a ${o.maxNewTokens}-token reply and a knowledge text (the teacher's prompt needs ${teacherTokens} tokens); lower OELD_KNOWLEDGE_TOKEN_BUDGET or the task's responseTokens`);
  let budget = room;
  // Each pass shortens the student's budget by what the teacher's prompt overflowed: a few passes at most.
  for (let pass = 0; pass < 8; pass++) {
    let student: FittedPrompt;
    try {
      student = fitPrompt(tokenizer, prompt, budget, o.templateVariables);
    } catch {
      throw noRoom(promptIds(tokenizer, teacherMessages(knowledge, prompt, o.knowledgePlacement), o.templateVariables).length);
    }
    const teacherIds = promptIds(tokenizer, teacherMessages(knowledge, student.prompt, o.knowledgePlacement), o.templateVariables);
    const teacherTokens = teacherIds.length;
    if (teacherTokens <= room) return { prompt: student.prompt, studentIds: student.ids, teacherIds };
    budget -= teacherTokens - room;
    if (budget < 1) throw noRoom(teacherTokens);
  }
  throw noRoom(promptIds(tokenizer, teacherMessages(knowledge, prompt, o.knowledgePlacement), o.templateVariables).length);
}
