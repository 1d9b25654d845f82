/** The Redis keys a store with a prefix writes, and the channel of a key's events. */
import { sha256Hex } from "../../crypto.js";
import type { LockRef } from "../types.js";

/** What each key holds: the scripts (scripts/) say, and record.ts the record's fields. */
export function redisKeys(prefix: string) {
  // Namespaces cannot contain ':' (see auth), so these keys are unambiguous.
  const perKey = (kind: string) => (ref: LockRef) => `${prefix}:${kind}:${ref.namespace}:${ref.key}`;
  const lock = perKey("lock");
  return {
    fence: `${prefix}:fence`,
    tokens: `${prefix}:tokens`,
    queueSeq: `${prefix}:queue-seq`,
    lock,
    queue: perKey("queue"),
    queueUntil: perKey("queue-until"),
    holders: perKey("holders"),
    history: perKey("history"),
    // The namespace's key names, for the listing (a sorted set read in lexical order).
    names: (namespace: string) => `${prefix}:names:${namespace}`,
    // The namespace's index of records, by when Redis drops them.
    index: (namespace: string) => `${prefix}:ns:${namespace}`,
    // The namespace's keys whose last holder released them, by when (where reclaim looks first).
    ended: (namespace: string) => `${prefix}:ended:${namespace}`,
    // A token's dashboard sessions (a hash by the sha256 of each session's id).
    session: (tokenId: string) => `${prefix}:sessions:${tokenId}`,
    // One channel per key, named by a hash: keys may hold any character, Upstash puts the channel in a URL.
    channel: (ref: LockRef) => `${prefix}:ev:${sha256Hex(lock(ref)).slice(0, 32)}`,
    channels: `${prefix}:ev:*`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
