/**
 * Failures that belong to the command line itself rather than to the library. The library's own failures are
 * RestoreErrors (printed as `error [CODE]: message`); these two cover what only the CLI can get wrong.
 */

/** Bad arguments: an unknown command or option, a missing or malformed value. Exit code 2, usage text. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to print (undefined: the overview). */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A refusal the CLI makes on its own (an existing output without --force, an output that is the input). */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
