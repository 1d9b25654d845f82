/**
 * A key's record as the scripts keep it in Redis: one string, its fields packed. Read here by the
 * plain reads (a status, a peek) that spare a script; written only by the scripts (scripts/).
 */

/**
 * The record's fields, in the order they are packed: one string per key, the fields' values joined
 * by UNIT_SEPARATOR, an empty value for a field that is not set, trailing empty values left out.
 * (A hash of these fields takes twice the memory: a listpack's per-entry overhead and its 64-byte
 * value limit, past which it becomes a hash table, plus the field names.)
 * - token: sha256 of the exclusive holder's lease token (unset after a forced release)
 * - exp: when the exclusive lease ends (ms; 0: no end; -1: released, or held only shared)
 * - gc: the key's Redis expiry (set with each write); hx: its history's
 * - fence, since, holder, reason: the exclusive lease's
 * - w: '1' while someone may wait or watch (changes are PUBLISHed)
 * - sh: no shared holder's lease ends later than this (0: none); lim: the limit in force meanwhile
 * - qx: the Redis expiry of the key's queue; rel: when it was released
 * - cred: a /locks lock's credential (sha256 of its key k)
 */
export const RECORD_FIELDS = [
  "token",
  "exp",
  "gc",
  "fence",
  "since",
  "holder",
  "reason",
  "hx",
  "w",
  "sh",
  "lim",
  "qx",
  "rel",
  "cred",
] as const;

export type RecordField = (typeof RECORD_FIELDS)[number];

/** What separates the parts of a record, of a shared holder's entry, of a history event (no holder id or reason may contain it). */
export const UNIT_SEPARATOR = "\u001f";

/** A packed record's fields (null: not set); a key with no record gives every field null. */
export function unpackRecord(packed: string | null): Record<RecordField, string | null> {
  const parts = packed == null ? [] : packed.split(UNIT_SEPARATOR);
  return Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, parts[i] || null])) as Record<
    RecordField,
    string | null
  >;
}
