/** Stream names: one per interaction, one for the knowledge base, one for the model registry, one per round. */
export const STREAMS = {
  interaction: (interactionId: string) => `interaction-${interactionId}`,
  knowledge: 'knowledge',
  models: 'models',
  round: (roundId: string) => `round-${roundId}`,
} as const;
