/**
 * The Redis keys a store with a prefix writes, and the channel of a key's events.
 *
 * Every key of one namespace carries the namespace as its hash tag (`{acme}`), so that in a Redis
 * Cluster a lock's record, its queue, its holders, its history, a pool's keys, the namespace's
 * index and its counters all sit in one slot, where one script can reach them all. A namespace is
 * therefore the unit that spreads load across a cluster's nodes. Outside a cluster the tag changes
 * nothing.
 */
import { sha256Hex } from "../../crypto.js";
import type { LockRef } from "../types.js";

/**
 * The start of every key of a namespace. Namespaces are lower-case letters, digits, '_' and '-'
 * (NAMESPACE_PATTERN), so the tag is the first '{…}' of each key, whatever a key's name holds.
 * The scripts build their own keys from it (key_of in the prelude).
 */
export const namespaceBase = (prefix: string, namespace: string) => `${prefix}:{${namespace}}`;

export function redisKeys(prefix: string) {
  const perKey = (kind: string) => (ref: LockRef) =>
    `${namespaceBase(prefix, ref.namespace)}:${kind}:${ref.key}`;
  const perNamespace = (kind: string) => (namespace: string) => `${namespaceBase(prefix, namespace)}:${kind}`;
  const lock = perKey("lock");
  return {
    base: (namespace: string) => namespaceBase(prefix, namespace),
    // The namespace's fencing counter and its queue's arrival counter.
    fence: perNamespace("fence"),
    queueSeq: perNamespace("queue-seq"),
    lock,
    queue: perKey("queue"),
    queueUntil: perKey("queue-until"),
    holders: perKey("holders"),
    history: perKey("history"),
    // The namespace's key names, for the listing (a sorted set read in lexical order).
    names: perNamespace("names"),
    // The namespace's index of records, by when Redis drops them.
    index: perNamespace("index"),
    // The namespace's keys whose last holder released them, by when (where reclaim looks first).
    ended: perNamespace("ended"),
    // API tokens, and a token's dashboard sessions (a hash by the sha256 of each session's id):
    // read and written by single commands, never by a script, so they need no namespace's slot.
    tokens: `${prefix}:tokens`,
    session: (tokenId: string) => `${prefix}:sessions:${tokenId}`,
    // The GitHub App's records (its gates, its outbox: a hash each) and the deliveries it has seen.
    records: (kind: string) => `${prefix}:${kind}`,
    claim: (id: string) => `${prefix}:claimed:${id}`,
    // One channel per key, named by a hash: keys may hold any character, Upstash puts the channel in a URL.
    channel: (ref: LockRef) => `${prefix}:ev:${sha256Hex(lock(ref)).slice(0, 32)}`,
    channels: `${prefix}:ev:*`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
