/** The `lss` exit codes, documented in the README, so that a shell `if` reads naturally. */
export const Exit = {
  ok: 0,
  /** `check`: the lock is locked. */
  locked: 1,
  /** `check`: no such lock. */
  unknown: 2,
  /** The server could not be reached, or answered with an error (never read as "unlocked"). */
  failure: 3,
  /** Bad command line: unknown command, bad duration, missing key. */
  usage: 64,
  /** `acquire`, `wait`, `run`: the lock was still held when --timeout ran out (or at once, --if-held fail). */
  timeout: 75,
  /** `run`: the lease was lost while the command ran; the command was stopped. */
  leaseLost: 76,
  /** `acquire`, `run` with --supersede: a newer waiter of the group took its place (run: the command was not run). */
  superseded: 77,
} as const;
