/**
 * The text fields' rules (src/protocol/fields.ts) are applied twice: by zod, in the schemas built
 * from them (the server, the CLI), and by textProblem, poolProblem and limitTextProblem without zod (the action's inputs).
 * Both must find the same first problem for any text.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  HOLDER_ID_RULE,
  KEY_RULE,
  LEASE_TOKEN_RULE,
  limitTextProblem,
  poolProblem,
  REASON_RULE,
  STATE_LOCK_ID_RULE,
  type TextRule,
  textProblem,
} from "../src/protocol/fields.js";
import { HolderId, HolderLimitText, LeaseToken, LockKey, PoolKeys, Reason } from "../src/protocol/lease.js";
import { StateLockId } from "../src/protocol/state-locks.js";

type Schema = { safeParse(v: unknown): { success: boolean; error?: { issues: { message: string }[] } } };
const zodProblem = (schema: Schema, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? null : (r.error?.issues[0]?.message ?? "?");
};

/** Text likely to hit every rule: long, short, control and invisible characters, dots, digits. */
const text = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.string({
    unit: fc.constantFrom("a", ".", "\u0000", "\u200b", "\u202e", "-", "_", "1", "é"),
    maxLength: 12,
  }),
  fc.string({ minLength: 120, maxLength: 600 }),
  fc.constantFrom("", "..", "a..b", "locks/x", "0", "100", "101", "007", " 1"),
);

const FIELDS: Array<[string, TextRule, Schema]> = [
  ["key", KEY_RULE, LockKey],
  ["holder_id", HOLDER_ID_RULE, HolderId],
  ["reason", REASON_RULE, Reason],
  ["token", LEASE_TOKEN_RULE, LeaseToken],
  ["lock id", STATE_LOCK_ID_RULE, StateLockId],
];

describe("the rules without zod find what the schemas find", () => {
  it.each(FIELDS)("%s", (_name, rule, schema) => {
    fc.assert(
      fc.property(text, (t) => {
        expect(textProblem(rule, t)).toBe(zodProblem(schema, t));
      }),
      { numRuns: 2000 },
    );
  });

  it("a pool's keys", () => {
    fc.assert(
      fc.property(fc.array(text, { maxLength: 12 }), (keys) => {
        expect(poolProblem(keys)).toBe(zodProblem(PoolKeys, keys));
      }),
      { numRuns: 2000 },
    );
  });

  it("a holder limit as text", () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(limitTextProblem(t)).toBe(zodProblem(HolderLimitText, t));
      }),
      { numRuns: 2000 },
    );
  });

  it("a few by name", () => {
    expect(textProblem(KEY_RULE, "a..b")).toBe('key must not contain control characters or ".."');
    expect(textProblem(HOLDER_ID_RULE, "x\u202ey")).toMatch(/invisible or bidirectional/);
    expect(poolProblem(["qa-1", "qa-1"])).toBe('keys must not repeat ("qa-1" is named twice)');
    expect(poolProblem(["qa-1", "locks/abc"])).toBe("a lock of the /locks API cannot be in a pool");
    expect(limitTextProblem("0")).toBe("limit must be a whole number from 1 to 100");
    expect(limitTextProblem("100")).toBeNull();
  });
});
