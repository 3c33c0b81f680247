/**
 * The command-line options that choose a corpus (its mix and CorpusOptions), shared by the
 * scripts that draw one: export-pretraining-corpus.ts and make-base-model.ts. Every option
 * defaults to the shipped model's recipe; a bad value is refused with the option's name.
 */
import { DEFAULT_CORPUS_OPTIONS, DEFAULT_MIX, type CorpusMix, type CorpusOptions } from './corpus.ts';

export const CORPUS_ARG_OPTIONS = {
  mix: { type: 'string' },
  'extraction-random-moves': { type: 'string', default: String(DEFAULT_CORPUS_OPTIONS.extractionRandomMoves) },
  'state-positions': { type: 'string', default: String(DEFAULT_CORPUS_OPTIONS.statePositions) },
  'balanced-counts': { type: 'string', default: String(DEFAULT_CORPUS_OPTIONS.balancedCounts) },
  guess: { type: 'string', default: DEFAULT_CORPUS_OPTIONS.guess },
} as const;

type CorpusArgValues = { [K in keyof typeof CORPUS_ARG_OPTIONS]?: string };

export function corpusFromArgs(values: CorpusArgValues): { mix: CorpusMix; options: CorpusOptions } {
  const moves = Number(values['extraction-random-moves'] ?? DEFAULT_CORPUS_OPTIONS.extractionRandomMoves);
  if (!(moves >= 0 && moves <= 1)) throw new Error(`--extraction-random-moves must be a share between 0 and 1, got ${values['extraction-random-moves']}`);
  return {
    mix: parseMix(values.mix),
    options: {
      extractionRandomMoves: moves,
      statePositions: parseFlag('state-positions', values['state-positions'], DEFAULT_CORPUS_OPTIONS.statePositions),
      balancedCounts: parseFlag('balanced-counts', values['balanced-counts'], DEFAULT_CORPUS_OPTIONS.balancedCounts),
      guess: parseGuess(values.guess),
    },
  };
}

function parseGuess(text: string | undefined): CorpusOptions['guess'] {
  if (text === undefined) return DEFAULT_CORPUS_OPTIONS.guess;
  if (text === 'truth' || text === 'first-letter') return text;
  throw new Error(`--guess must be truth or first-letter, got "${text}"`);
}

function parseFlag(name: string, text: string | undefined, fallback: boolean): boolean {
  if (text === undefined) return fallback;
  if (text === 'true' || text === 'false') return text === 'true';
  throw new Error(`--${name} must be true or false, got "${text}"`);
}

/** "familiar=0.1,guess=0.3" over DEFAULT_MIX (the kinds not named keep their default weight). */
export function parseMix(text: string | undefined): CorpusMix {
  const mix: CorpusMix = { ...DEFAULT_MIX };
  for (const part of text ? text.split(',') : []) {
    const [kind, value] = part.split('=');
    const weight = Number(value);
    if (!kind || !(kind in mix) || value === undefined || value.trim() === '' || !Number.isFinite(weight) || weight < 0) {
      throw new Error(`--mix: "${part}" must be KIND=WEIGHT with KIND one of ${Object.keys(mix).join(', ')} and WEIGHT >= 0`);
    }
    mix[kind as keyof CorpusMix] = weight;
  }
  if (Object.values(mix).every((w) => w === 0)) throw new Error('--mix: every weight is 0');
  return mix;
}
