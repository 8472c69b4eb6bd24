/** How `consort` ends: exit codes as DESIGN.md §8 fixes them, and errors that carry theirs. */

/** 0 succeeded, 1 job failed or expired (or the server refused), 2 usage error, 3 server unreachable. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, interrupted: 130 } as const;

/** An error that ends `consort` with a one-line message and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A mistake in the command line: exit 2. */
export function usage(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
