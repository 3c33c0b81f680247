/**
 * Approximate token count: words and punctuation marks. Used when an extraction event carries no
 * count of its own; the extractor, which has the model's tokenizer, records exact counts.
 * It is part of the projection's definition: changing it changes replays, so it never changes
 * silently.
 */
export function approximateTokens(text: string): number {
  return text.match(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu)?.length ?? 0;
}
