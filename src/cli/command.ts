import type { ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = 'UsageError'; }
}

export interface CommandContext {
  env: NodeJS.ProcessEnv;
  json: boolean;
  out: (text: string) => void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Lines of help after the usage line. */
  help: string[];
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals: string[], ctx: CommandContext): Promise<number>;
}

/** Prints a result: JSON with --json, otherwise the human text. */
export function emit(ctx: CommandContext, value: unknown, human: string): void {
  ctx.out(ctx.json ? JSON.stringify(value, null, 2) : human);
}
