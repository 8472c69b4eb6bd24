/** How `consort` ends: exit codes as DESIGN.md §8 fixes them (and `consort --help` lists), and errors that carry theirs. */

/**
 * 0 succeeded; 1 the job failed, expired or was cancelled (or the plan would not converge, or the server failed);
 * 2 usage error (the command line, or a request the server found malformed); 3 server unreachable; 4 not found
 * (a node, job, token or kind); 5 conflict (it exists already, it is in use, or it changed since the revision
 * given); 6 forbidden (the token is unknown, expired, or its role is not enough); 130 interrupted.
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  conflict: 5,
  forbidden: 6,
  interrupted: 130,
} as const;

/** The exit codes as `consort --help` prints them. */
export const EXIT_CODES_HELP = [
  'Exit codes: 0 succeeded, 1 job failed or expired, 2 usage error, 3 server unreachable,',
  '4 not found, 5 conflict (exists, in use, or changed since --if-revision), 6 forbidden',
  '(unknown or expired token, or a role that is not enough), 130 interrupted.',
].join(' ');

/** The exit code of a refused request, by HTTP status. */
export function exitForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.forbidden;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if ([400, 413, 415, 422].includes(status)) return EXIT.usage;
  return EXIT.failed;
}

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
