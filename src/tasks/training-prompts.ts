/**
 * The logged prompts of one interaction, as a round trains on them: a game trajectory gives each
 * turn's situation (one user message); a chat gives, for each assistant turn, the conversation
 * before it (system, user, assistant and tool messages, in order; logged-messages.ts reads a
 * logged message's text). Pure.
 */
import type { EventDataMap } from '../events/schemas.ts';
import { promptMessage } from '../events/logged-messages.ts';
import { userPrompt, type Prompt, type PromptMessage } from '../model/inference/chat-prompt.ts';

type Interaction = Pick<EventDataMap['InteractionRecorded'], 'turns' | 'messages'>;

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
