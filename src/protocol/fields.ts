/**
 * The rules of the wire format's text fields (lock keys, holder ids, reasons, lease tokens, /locks
 * ids, pools, holder limits), written once as plain data: the zod schemas of lease.ts, common.ts
 * and state-locks.ts are built from them, and the action checks its inputs with `textProblem` (and its kin)
 * without loading zod (which would cost every step's start-up tens of milliseconds). A check is
 * applied in the order given and the first that fails is the problem, as zod's first issue.
 */

/** One rule of a text field: a length bound, a pattern it must match, or a test it must pass. */
export type TextCheck =
  | { min: number; message: string }
  | { max: number; message: string }
  | { pattern: RegExp; message: string }
  | { test: (text: string) => boolean; message: string };

export interface TextRule {
  /** The message for a value that is not a string (zod's own when left out). */
  notString?: string;
  checks: readonly TextCheck[];
}

/** The first check the text fails, as its message; null when it passes them all. */
export function textProblem(rule: TextRule, text: string): string | null {
  for (const check of rule.checks) {
    const ok =
      "min" in check
        ? text.length >= check.min
        : "max" in check
          ? text.length <= check.max
          : "pattern" in check
            ? check.pattern.test(text)
            : check.test(text);
    if (!ok) return check.message;
  }
  return null;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const NO_CONTROL_CHARACTERS = /^[^\x00-\x1f\x7f]*$/;

/** Printable text without control characters (holder ids, reasons, tokens, lock keys, names). */
export const printableRule = (field: string, max: number, min = 0): TextRule => ({
  notString: `${field} must be a string`,
  checks: [
    { min, message: `${field} must be at least ${min} character${min === 1 ? "" : "s"}` },
    { max, message: `${field} must be at most ${max} characters` },
    { pattern: NO_CONTROL_CHARACTERS, message: `${field} must not contain control characters` },
  ],
});

/**
 * Invisible and bidirectional formatting characters: in a holder id or reason shown to other jobs
 * and people, they can make text read as something else (a reordered name, a hidden part).
 */
export const INVISIBLE_FORMATTING = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

/** Printable text that others will read: also without invisible or bidirectional formatting. */
export const shownRule = (field: string, max: number): TextRule => ({
  notString: printableRule(field, max).notString,
  checks: [
    ...printableRule(field, max).checks,
    {
      test: (text) => !INVISIBLE_FORMATTING.test(text),
      message: `${field} must not contain invisible or bidirectional formatting characters (such as U+200B or U+202E)`,
    },
  ],
});

/** 1–512 chars, no control characters, no "..": the document's pattern, verbatim. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
export const KEY_PATTERN = /^(?!.*\.\.)[^\x00-\x1f\x7f]+$/;

export const KEY_RULE: TextRule = {
  checks: [
    { min: 1, message: "key must not be empty" },
    { max: 512, message: "key must be at most 512 characters" },
    { pattern: KEY_PATTERN, message: 'key must not contain control characters or ".."' },
  ],
};

export const HOLDER_ID_RULE = shownRule("holder_id", 256);
export const REASON_RULE = shownRule("reason", 512);
export const LEASE_TOKEN_RULE = printableRule("token", 256, 1);
/** A supersede group: 1–128 characters others read (deploy/main). */
export const SUPERSEDE_RULE: TextRule = {
  notString: "supersede must be a string: a group name such as deploy/main",
  checks: [
    { min: 1, message: "supersede must be 1–128 characters: a group name such as deploy/main" },
    ...shownRule("supersede", 128).checks.slice(1),
  ],
};

export const STATE_LOCK_ID_RULE: TextRule = {
  checks: [
    { pattern: /^[A-Za-z0-9_-]{1,128}$/, message: "lock id must be 1–128 letters, digits, '_' or '-'" },
  ],
};

/** The most holders a shared key admits; a shared hold without a limit admits this many. */
export const MAX_HOLDERS = 100;

export const LIMIT_RANGE = `limit must be a whole number from 1 to ${MAX_HOLDERS}`;

/** A limit as a command line or a workflow writes it: digits from 1 to MAX_HOLDERS (one message for every mistake). */
export const LIMIT_TEXT_PATTERN = /^\d+$/;

/** A priority as a command line or a workflow writes it: an integer from -100 to 100. */
export const PRIORITY_RANGE = "priority must be a whole number from -100 to 100";
export function priorityTextProblem(text: string): string | null {
  if (!/^[+-]?\d{1,3}$/.test(text)) return PRIORITY_RANGE;
  const n = Number(text);
  return n < -100 || n > 100 ? PRIORITY_RANGE : null;
}

export function limitTextProblem(text: string): string | null {
  if (!LIMIT_TEXT_PATTERN.test(text)) return LIMIT_RANGE;
  const n = Number(text);
  return n >= 1 && n <= MAX_HOLDERS ? null : LIMIT_RANGE;
}

/** The most keys one pool may name. */
export const MAX_POOL_KEYS = 10;

/** The keys of a target written as text: one key, or a pool as keys separated by commas (qa-1, qa-2). */
export const keysOf = (text: string) => text.split(",").map((k) => k.trim());

/** A pool's rules on its list of keys, after each key's own (KEY_RULE). */
export const POOL_CHECKS = {
  min: { min: 2, message: "keys must name at least 2 keys (one key: acquire it directly)" },
  max: { max: MAX_POOL_KEYS, message: `keys must name at most ${MAX_POOL_KEYS} keys` },
  /** The first key named twice, if any. */
  repeated: (keys: readonly string[]) => keys.find((k, i) => keys.indexOf(k) !== i),
  repeatedMessage: (key: string | undefined) => `keys must not repeat ("${key}" is named twice)`,
  stateLock: {
    test: (keys: readonly string[]) => !keys.some((k) => k.startsWith("locks/")),
    message: "a lock of the /locks API cannot be in a pool",
  },
} as const;

/** The first problem of a pool's keys (a key's own first, as zod reports them), or null. */
export function poolProblem(keys: readonly string[]): string | null {
  for (const key of keys) {
    const problem = textProblem(KEY_RULE, key);
    if (problem) return problem;
  }
  if (keys.length < POOL_CHECKS.min.min) return POOL_CHECKS.min.message;
  if (keys.length > POOL_CHECKS.max.max) return POOL_CHECKS.max.message;
  const twice = POOL_CHECKS.repeated(keys);
  if (twice !== undefined) return POOL_CHECKS.repeatedMessage(twice);
  if (!POOL_CHECKS.stateLock.test(keys)) return POOL_CHECKS.stateLock.message;
  return null;
}
