/**
 * What the PyTorch trainer (python/oeld_trainer) writes on stdout, one JSON object a line, checked
 * here: a line that is not one of these is kept as log text, never trusted as a report.
 */
import { z } from 'zod';

const timings = z.object({ samplingMs: z.number(), teacherMs: z.number(), backwardMs: z.number() });

export const TorchReportSchema = z.discriminatedUnion('event', [
  z.object({ event: z.literal('ready'), device: z.string(), precision: z.string(), torch: z.string(), parameters: z.number().int() }),
  z.object({
    event: z.literal('step'), step: z.number().int(), of: z.number().int(), loss: z.number(), gradNorm: z.number(),
    responseTokens: z.number(), trainedTokens: z.number().int(), timings,
  }),
  z.object({ event: z.literal('checkpoint'), step: z.number().int(), path: z.string() }),
  z.object({ event: z.literal('done'), weights: z.string() }),
  z.object({ event: z.literal('error'), message: z.string() }),
]);

export type TorchReport = z.infer<typeof TorchReportSchema>;

/** The report on one stdout line, or null when the line is not one (library output, a stray print). */
export function parseTorchReport(line: string): TorchReport | null {
  if (!line.startsWith('{')) return null;
  let value: unknown;
  try { value = JSON.parse(line); } catch { return null; }
  const r = TorchReportSchema.safeParse(value);
  return r.success ? r.data : null;
}

/** What `python -m oeld_trainer --probe` prints: the interpreter, torch and the devices it sees. */
export const TorchProbeSchema = z.object({ python: z.string(), torch: z.string(), cuda: z.boolean(), devices: z.array(z.string()) });
export type TorchProbe = z.infer<typeof TorchProbeSchema>;
