/**
 * API token records (one hash: id → the record, its secret only as a hash) and dashboard sessions
 * (one hash per token: the id's hash → the session and when it began and ends, trimmed to the
 * newest SESSIONS_PER_TOKEN and kept as long as its newest session lives).
 */

import {
  SESSIONS_PER_TOKEN,
  type SessionStore,
  type TokenRecord,
  type TokenStore,
  type UiSession,
} from "../../auth/types.js";
import type { RecordKind, RecordStore } from "../types.js";
import type { RedisKeys } from "./keys.js";
import type { RedisTransport } from "./transport.js";

type Guard = <T>(op: () => Promise<T>) => Promise<T>;

export function tokenRecords(transport: RedisTransport, keys: RedisKeys, guard: Guard): TokenStore {
  return {
    put: (record) =>
      guard(() => transport.hset(keys.tokens, record.id, JSON.stringify(record))).then(() => {}),
    get: async (id) => {
      const raw = await guard(() => transport.hget(keys.tokens, id));
      return raw == null ? null : (JSON.parse(raw) as TokenRecord);
    },
    list: async () =>
      (await guard(() => transport.hvals(keys.tokens))).map((raw) => JSON.parse(raw) as TokenRecord),
    delete: async (id) => (await guard(() => transport.hdel(keys.tokens, id))) > 0,
  };
}

/** The sessions of a hash past its newest SESSIONS_PER_TOKEN. */
const oldestBeyondCap = (kept: Record<string, string>) =>
  Object.entries(kept)
    .map(([field, raw]) => ({ field, since: Number((JSON.parse(raw) as { since?: number }).since) || 0 }))
    .sort((a, b) => b.since - a.since)
    .slice(SESSIONS_PER_TOKEN);

export function sessionRecords(transport: RedisTransport, keys: RedisKeys, guard: Guard): SessionStore {
  return {
    put: (tokenId, idHash, session, ttlMs) =>
      guard(async () => {
        const key = keys.session(tokenId);
        const now = Date.now();
        await transport.hset(key, idHash, JSON.stringify({ ...session, since: now, until: now + ttlMs }));
        for (const { field } of oldestBeyondCap((await transport.hgetall(key)) ?? {})) {
          await transport.hdel(key, field);
        }
        await transport.pexpire(key, ttlMs);
      }),
    get: async (tokenId, idHash) => {
      const raw = await guard(() => transport.hget(keys.session(tokenId), idHash));
      const kept = raw == null ? null : (JSON.parse(raw) as UiSession & { until: number });
      if (!kept || kept.until <= Date.now()) return null;
      return { tokenId: kept.tokenId, secretHash: kept.secretHash, holdSecret: kept.holdSecret };
    },
    delete: (tokenId, idHash) => guard(() => transport.hdel(keys.session(tokenId), idHash)).then(() => {}),
  };
}

/** Small JSON records by id, one hash per kind (the GitHub App's gates and outbox). */
export function smallRecords(transport: RedisTransport, keys: RedisKeys, guard: Guard) {
  return (kind: RecordKind): RecordStore => {
    const key = keys.records(kind);
    return {
      put: (id, json) => guard(() => transport.hset(key, id, json)).then(() => {}),
      get: (id) => guard(() => transport.hget(key, id)),
      all: async () => (await guard(() => transport.hgetall(key))) ?? {},
      delete: async (id) => (await guard(() => transport.hdel(key, id))) > 0,
    };
  };
}
