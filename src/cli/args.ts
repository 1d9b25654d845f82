/** The CLI's argument parsers, each with an error that says what is wanted, and its defaults. */
import { hostname, userInfo } from "node:os";
import { InvalidArgumentError, Option } from "commander";
import type { LockTarget } from "../client/client.js";
import { formatDuration, parseDuration } from "../protocol/durations.js";
import { priorityTextProblem } from "../protocol/fields.js";
import { HolderLimitText, keysOf, LockKey, PoolKeys, SupersedeGroup } from "../protocol/lease.js";

export const duration = (text: string) => {
  const ms = parseDuration(text);
  if (ms === null)
    throw new InvalidArgumentError(`'${text}' is not a duration such as 30s, 10m, 1h or seconds`);
  return ms;
};

/**
 * A duration option whose default --help shows as a duration ("default: 30s"): shown as 30000, a
 * copied `--ttl 30000` would be read as seconds (8 hours).
 */
export const durationOption = (flags: string, description: string, defaultMs: number) =>
  new Option(flags, description).argParser(duration).default(defaultMs, formatDuration(defaultMs));

export const schemaArg =
  <T>(schema: {
    safeParse(
      v: unknown,
    ): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } };
  }) =>
  (text: unknown): T => {
    const r = schema.safeParse(text);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0]?.message ?? "invalid");
    return r.data;
  };

/** A key, or a pool written as keys separated by commas (qa-1,qa-2,qa-3). */
export const targetArg = (text: string): LockTarget => {
  const keys = keysOf(text);
  return keys.length === 1 ? schemaArg(LockKey)(keys[0]) : schemaArg(PoolKeys)(keys);
};

export const limitArg = schemaArg(HolderLimitText);

export const priorityArg = (text: string): number => {
  const problem = priorityTextProblem(text);
  if (problem) throw new InvalidArgumentError(problem.replace(/^priority/, "--priority"));
  return Number(text);
};

/** --supersede: a group name, checked as the server checks it. */
export const supersedeArg = (text: string): string => schemaArg(SupersedeGroup)(text);
export const SUPERSEDE_HELP =
  "while waiting: a group (deploy/main); a newer waiter of the group takes this one's place (exit 77)";

export type IfHeld = "wait" | "fail" | "skip";
/** --if-held: wait (up to --timeout), fail or skip (both try once). */
export const ifHeldArg = (text: string): IfHeld => {
  if (text === "wait" || text === "fail" || text === "skip") return text;
  throw new InvalidArgumentError(`'${text}' is not one of wait, fail or skip`);
};
export const IF_HELD_HELP =
  "when another holds it: wait (up to --timeout), fail (try once; exit 75) or skip (run: try once; exit 0 without running the command)";

/** Who holds it, as others see it: the user and host (and, for `run`, the process that holds it). */
export const defaultHolder = (withPid: boolean) =>
  `${userName()}@${hostname()}${withPid ? ` (pid ${process.pid})` : ""}`;

/** The user's name; a container's user may have no passwd entry (userInfo throws), then $USER or the uid. */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER || process.env.LOGNAME || `uid ${process.getuid?.() ?? "?"}`;
  }
}

/** A whole number from 1 to max, for `name`. */
export const count = (name: string, max: number) => (text: string) => {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > max)
    throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
  return n;
};
