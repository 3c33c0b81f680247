/**
 * The logged prompts of one interaction, as a round trains on them: a game trajectory gives each
 * turn's situation (one user message); a chat gives, for each assistant turn, the conversation
 * before it (system, user, assistant and tool messages, in order; logged-messages.ts reads a
 * logged message's text). A round may weigh the trajectories whose outcome failed (`failedRepeat`):
 * their turns are where the knowledge corrects the version, and after the world changes they are
 * the turns that still give the old values. Pure.
 */
import type { EventDataMap } from '../events/schemas.ts';
import { promptMessage } from '../events/logged-messages.ts';
import { userPrompt, type Prompt, type PromptMessage } from '../model/inference/chat-prompt.ts';

type Interaction = Pick<EventDataMap['InteractionRecorded'], 'turns' | 'messages'>;

/**
 * The trajectories a round trains on, in order: each once, and each whose outcome says it failed
 * `failedRepeat` times in a row (a trajectory with no outcome counts as not failed). Every
 * trainer draws the round's prompts from this list without replacement, so a repeat is a weight.
 */
export function trainedTrajectories<T extends { data: Pick<EventDataMap['InteractionRecorded'], 'outcome'> }>(trajectories: readonly T[], failedRepeat = 1): T[] {
  if (failedRepeat === 1) return [...trajectories];
  return trajectories.flatMap((t) => (t.data.outcome?.success === false ? Array.from({ length: failedRepeat }, () => t) : [t]));
}

export function trainingPrompts(interaction: Interaction): Prompt[] {
  if (interaction.turns) return interaction.turns.map((t) => userPrompt(t.prompt));
  const messages = interaction.messages ?? [];
  const prompts: Prompt[] = [];
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== 'assistant') continue;
    const before: PromptMessage[] = messages.slice(0, i).map(promptMessage);
    // An assistant turn with nothing but a system message (or nothing) before it answers no one.
    if (before.some((m) => m.role !== 'system')) prompts.push(before);
  }
  return prompts;
}
