/**
 * The two prompts of on-policy context distillation (docs/oel-method.md, step 4). The student
 * sees the logged situation alone; the frozen teacher sees the same situation with a knowledge
 * text inserted BEFORE it, plus a note that the experience is a guess that may be incomplete or
 * wrong. The situation text is identical in both, so both score the same response tokens.
 */
import type { Prompt } from '../model/inference/chat-prompt.ts';

/** The note that tells the teacher not to trust the experience blindly. */
export const KNOWLEDGE_GUESS_NOTE =
  'Note: this experience was collected from earlier attempts. It is a guess that may be incomplete or wrong; use it only where it helps.';

export const KNOWLEDGE_HEADER = 'Experience from earlier attempts at similar tasks:';
export const SITUATION_HEADER = 'Now the current task:';

/** The student's prompt: the situation alone, unchanged (knowledge never enters the deployed model's context). */
export function studentPrompt(situationPrompt: string): string {
  return situationPrompt;
}

/**
 * The teacher's prompt: the knowledge text (e.g. renderPool of one pool, drawn per example), the
 * guess note, then the situation exactly as the student sees it. With empty knowledge it is the
 * student prompt.
 */
export function teacherPrompt(knowledgeText: string, situationPrompt: string): string {
  const knowledge = knowledgeText.trim();
  if (knowledge.length === 0) return studentPrompt(situationPrompt);
  return `${KNOWLEDGE_HEADER}\n${knowledge}\n\n${KNOWLEDGE_GUESS_NOTE}\n\n${SITUATION_HEADER}\n${studentPrompt(situationPrompt)}`;
}

/**
 * Where the teacher reads the knowledge: `user` puts it before the situation in the last user
 * message (teacherPrompt; the game's layout, one user message per situation), `system` in the
 * system message (a logged chat: appended to its own system message, or a new one in front).
 */
export type KnowledgePlacement = 'user' | 'system';

/** The teacher's messages for a prompt: the student's messages with the knowledge placed; unchanged for empty knowledge. */
export function teacherMessages(knowledgeText: string, prompt: Prompt, placement: KnowledgePlacement): Prompt {
  const knowledge = knowledgeText.trim();
  if (knowledge.length === 0) return prompt;
  if (placement === 'user') {
    const last = prompt.length - 1;
    if (prompt[last]!.role !== 'user') throw new Error(`knowledge placement "user" needs a prompt that ends with a user message, not ${prompt[last]!.role}`);
    return prompt.map((m, i) => (i === last ? { ...m, content: teacherPrompt(knowledge, m.content) } : m));
  }
  const block = `${KNOWLEDGE_HEADER}\n${knowledge}\n\n${KNOWLEDGE_GUESS_NOTE}`;
  if (prompt[0]!.role === 'system') return [{ ...prompt[0]!, content: `${prompt[0]!.content}\n\n${block}` }, ...prompt.slice(1)];
  return [{ role: 'system', content: block }, ...prompt];
}
