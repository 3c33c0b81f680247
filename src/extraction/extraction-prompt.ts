/**
 * The extraction prompt (docs/oel-method.md, step 2): the policy itself reads ONE trajectory,
 * rendered as per-turn input/output pairs plus the final result and the environment's feedback,
 * together with the knowledge accumulated so far, and is asked for one or two NEW, general,
 * non-repeating experience items, each on its own line behind the fixed marker. Pure text logic.
 */
import { renderedText } from '../events/logged-messages.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { ITEM_MARKER } from '../projections/knowledge/knowledge-base.ts';

export type InteractionData = EventDataMap['InteractionRecorded'];

/** What renderTrajectory reads: a recorded interaction, either a trajectory (turns) or a chat (messages). */
export type TrajectorySource = Pick<InteractionData, 'turns' | 'messages' | 'outcome'>;

type ChatMessage = NonNullable<InteractionData['messages']>[number];

/** One rendered exchange: what the model saw and what it answered (null: no answer was recorded). */
interface Exchange {
  input: string;
  output: string | null;
}

const NO_OUTPUT = '(no response recorded)';

function chatExchanges(messages: readonly ChatMessage[]): Exchange[] {
  const exchanges: Exchange[] = [];
  let pending: ChatMessage[] = [];
  const renderInput = (ms: ChatMessage[]): string => {
    if (ms.length === 0) return '(no new input)';
    // A lone user message is shown bare; anything else names each message's role.
    if (ms.length === 1 && ms[0]!.role === 'user') return renderedText(ms[0]!);
    return ms.map((m) => `[${m.role}${m.name === undefined ? '' : ` ${m.name}`}] ${renderedText(m)}`).join('\n');
  };
  for (const m of messages) {
    if (m.role === 'assistant') {
      exchanges.push({ input: renderInput(pending), output: renderedText(m) });
      pending = [];
    } else {
      pending.push(m);
    }
  }
  if (pending.length > 0) exchanges.push({ input: renderInput(pending), output: null });
  return exchanges;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}

/** The final-result lines: success/failure (or unknown), the reward, the environment's feedback. */
export function renderOutcome(outcome: InteractionData['outcome']): string {
  const success = outcome?.success;
  const result = success === true ? 'success' : success === false ? 'failure' : 'unknown (not recorded)';
  const lines = [`Final result: ${result}`];
  lines.push(`Reward: ${outcome?.reward === undefined ? '(not recorded)' : formatNumber(outcome.reward)}`);
  const feedback = outcome?.feedback?.trim();
  lines.push(`Environment feedback: ${feedback ? feedback : '(none)'}`);
  return lines.join('\n');
}

/**
 * One trajectory as text: "Turn k input: ..." / "Turn k output: ..." for every turn (for a chat,
 * a turn is the non-assistant messages since the last assistant message and the assistant reply
 * that follows), then the final result, the reward and the environment's feedback.
 */
export function renderTrajectory(interaction: TrajectorySource): string {
  let exchanges: Exchange[];
  if (interaction.turns !== undefined) {
    exchanges = interaction.turns.map((t) => ({ input: t.prompt, output: t.response }));
  } else if (interaction.messages !== undefined) {
    exchanges = chatExchanges(interaction.messages);
  } else {
    throw new TypeError('renderTrajectory: the interaction has neither turns (a trajectory) nor messages (a chat)');
  }
  const parts = exchanges.map((x, i) =>
    `Turn ${i + 1} input: ${x.input}\nTurn ${i + 1} output: ${x.output ?? NO_OUTPUT}`);
  parts.push(renderOutcome(interaction.outcome));
  return parts.join('\n\n');
}

/**
 * The knowledge so far as the extracting model sees it: a numbered list, oldest first. It is
 * deliberately NOT written with the item marker, so that a model echoing its context does not
 * produce marked lines (accumulateSlot also drops exact repeats of items already held).
 */
export function renderKnowledgeSoFar(knowledgeSoFar: readonly string[]): string {
  return knowledgeSoFar.length === 0 ? '(none yet)' : knowledgeSoFar.map((t, i) => `${i + 1}. ${t}`).join('\n');
}

/**
 * The prompt that asks the policy for one or two new, general, non-repeating experience items
 * from one rendered trajectory, given the knowledge accumulated so far.
 */
export function extractionPrompt(trajectoryText: string, knowledgeSoFar: readonly string[]): string {
  return [
    'You are reviewing one of your own past attempts at a task, in order to learn from experience.',
    'Below is the trajectory: each turn shows the input you were given and the output you produced, followed by the final result and the feedback from the environment.',
    '',
    '=== Trajectory ===',
    trajectoryText,
    '=== End of trajectory ===',
    '',
    'Experience you have already collected:',
    renderKnowledgeSoFar(knowledgeSoFar),
    '',
    'Think about what this trajectory teaches: what worked, what went wrong and why, and what the symbols, rules or feedback seem to mean.',
    'Then write ONE or TWO NEW pieces of experience that would help you succeed on similar tasks in the future.',
    'Each piece must be general (useful beyond this exact case), must not repeat or rephrase experience you have already collected, and must fit on a single line.',
    `Write each piece on its own line, starting with exactly "${ITEM_MARKER}". Only lines that start with this marker are kept.`,
  ].join('\n');
}
