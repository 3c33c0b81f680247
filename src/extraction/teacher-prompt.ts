/**
 * The two prompts of on-policy context distillation (docs/oel-method.md, step 4). The student
 * sees the logged situation alone; the frozen teacher sees the same situation with a knowledge
 * text inserted BEFORE it, plus a note that the experience is a guess that may be incomplete or
 * wrong. The situation text is identical in both, so both score the same response tokens.
 */

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
