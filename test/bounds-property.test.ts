/**
 * Randomized histories of shared, limited, exclusive and pooled acquires, releases and leaves, on
 * every store, checked after every step against the bounds the README promises:
 * - a key's shared-holder entries (its holders hash on Redis): at most twice the largest limit;
 * - a key's queue: at most LSS_MAX_WAITERS, and its deadlines hash two fields per waiter (its
 *   deadline, and what a status shows of it);
 * - a namespace's records (its index, its names, the records themselves): at most LSS_MAX_LOCKS,
 *   and a new key is refused for the cap only when every record holds something live.
 * Leases are short (they run out within the history, after a sleep) or long, limits vary between
 * holds, and tokens come back (retries, releases) or are fresh (one hold each).
 * The seed is printed; BOUNDS_SEED=<seed> replays a run, BOUNDS_RUNS=<n> sets how many.
 */
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { createMemoryStore } from "../server/stores/memory.js";
import {
  DEFAULT_LIMITS,
  type LockMode,
  type LockRef,
  type LockStore,
  type StoreAcquireParams,
} from "../server/stores/types.js";
import { keyspaceOf, type StoreKeyspace } from "./support/keyspace.js";
import { sleep } from "./support/processes.js";
import { STORE_KINDS, type StoreBackends, startBackends } from "./support/stores.js";

const SEED = Number(process.env.BOUNDS_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.BOUNDS_RUNS ?? 20);
const NAMESPACE = "bounds";
const KEYS = ["k0", "k1", "k2", "k3", "k4", "k5"];
const MAX_LOCKS = 4;
const MAX_WAITERS = 3;
const LIMITS = [2, 3];
const limits = { ...DEFAULT_LIMITS, locksPerNamespace: MAX_LOCKS, waitersPerKey: MAX_WAITERS };

let backends: StoreBackends;
let redis: Redis;
beforeAll(async () => {
  backends = await startBackends(STORE_KINDS);
  redis = new Redis(backends.redis!.url);
  console.log(`bounds: seed ${SEED}, ${RUNS} histories per store (BOUNDS_SEED=${SEED} replays them)`);
});
afterAll(async () => {
  redis.disconnect();
  await backends.close();
});

type Op =
  | {
      op: "acquire";
      keys: string[];
      token: string;
      mode: LockMode;
      limit: number;
      queue: boolean;
      short: boolean;
    }
  | { op: "release"; key: string; token: string }
  | { op: "leave"; key: string; token: string }
  | { op: "sleep" };

/** A short lease runs out within the history (after a sleep or two); a long one does not. */
const SHORT_MS = 60;
const LONG_MS = 60_000;

/** Tokens: a few that come back (retries, releases), and many fresh ones (one hold each). */
const token = fc.oneof(
  fc.integer({ min: 0, max: 5 }).map((i) => `t${i}`),
  fc.integer({ min: 0, max: 1_000_000 }).map((i) => `fresh-${i}`),
);
const key = fc.constantFrom(...KEYS);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("acquire" as const),
      keys: key.map((k) => [k]),
      token,
      mode: fc.constantFrom<LockMode>("shared", "exclusive"),
      limit: fc.constantFrom(...LIMITS),
      queue: fc.boolean(),
      short: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("acquire" as const),
      keys: fc.uniqueArray(key, { minLength: 2, maxLength: 3 }),
      token,
      mode: fc.constant<LockMode>("exclusive"),
      limit: fc.constant(1),
      queue: fc.boolean(),
      short: fc.boolean(),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("release" as const), key, token }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("leave" as const), key, token }) },
  { weight: 1, arbitrary: fc.constant({ op: "sleep" as const }) },
);

const ref = (key: string): LockRef => ({ namespace: NAMESPACE, key });

async function apply(store: LockStore, o: Op) {
  if (o.op === "release") {
    return store.release(ref(o.key), { tokenHash: sha256Hex(o.token), registeredOnly: false, actor: null });
  }
  if (o.op === "leave") return store.leave(ref(o.key), sha256Hex(o.token));
  if (o.op === "sleep") return sleep(SHORT_MS - 10);
  const params: StoreAcquireParams = {
    tokenHash: sha256Hex(o.token),
    holderId: o.token,
    reason: null,
    ttlMs: o.short ? SHORT_MS : LONG_MS,
    registeredOnly: false,
    queueWindowMs: o.queue ? 60_000 : null,
    mode: o.mode,
    // Limits differ between holds: a key's limit in force changes once its holders are gone.
    limit: o.mode === "shared" ? o.limit : 1,
    actor: null,
  };
  return o.keys.length === 1
    ? store.acquire(ref(o.keys[0]!), params)
    : store.acquireAny(o.keys.map(ref), params);
}

/** What the store keeps for the namespace, read from its keyspace (the same keys on every store). */
async function footprint(space: StoreKeyspace) {
  const { keys } = space;
  const each = (f: (k: string) => Promise<number>) => Promise.all(KEYS.map(f));
  return {
    indexed: await space.count("ZCARD", keys.index(NAMESPACE)),
    names: await space.count("ZCARD", keys.names(NAMESPACE)),
    records: (await each((k) => space.count("EXISTS", keys.lock(ref(k))))).reduce((a, b) => a + b, 0),
    holders: await each((k) => space.count("HLEN", keys.holders(ref(k)))),
    queues: await each((k) => space.count("ZCARD", keys.queue(ref(k)))),
    deadlines: await each((k) => space.count("HLEN", keys.queueUntil(ref(k)))),
  };
}

/** Keys that hold something live now: a lease, or someone in their queue. */
async function liveKeys(store: LockStore) {
  const states = await Promise.all(KEYS.map((k) => store.inspect(ref(k))));
  return states.filter((s) => s.lease !== null || s.waiting > 0).length;
}

let opened = 0;
describe.each(STORE_KINDS)("the bounds on %s", (kind) => {
  it(`hold after every step of ${RUNS} random histories`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 45 }), async (ops) => {
        const prefix = `bp${opened++}`;
        const store =
          kind === "memory" ? createMemoryStore({ limits }) : backends.open(kind, { prefix, limits });
        const ends: number[] = [];
        for (const [step, o] of ops.entries()) {
          const outcome = await apply(store, o);
          // The cap counts what is live: a new key is refused only when every record holds
          // something. Looked at at once, and judged only when no short lease ended meanwhile
          // (what the refusal saw may have changed since).
          if (outcome && "outcome" in outcome) {
            if ("lease" in outcome && outcome.lease?.expiresAt) ends.push(outcome.lease.expiresAt);
            if (outcome.outcome === "quota" && outcome.limit === "locks") {
              const asked = Date.now();
              const live = await liveKeys(store);
              const seenBy = outcome.now + (Date.now() - asked) + 30;
              if (ends.every((end) => end <= outcome.now - 30 || end > seenBy)) {
                expect(live, `step ${step} (${JSON.stringify(o)})`).toBeGreaterThanOrEqual(MAX_LOCKS);
              }
            }
          }
          const f = await footprint(keyspaceOf(kind, store, prefix, redis));
          const where = `step ${step} (${JSON.stringify(o)}): ${JSON.stringify(f)}`;
          expect(f.indexed, where).toBeLessThanOrEqual(MAX_LOCKS);
          expect(f.names, where).toBeLessThanOrEqual(MAX_LOCKS);
          expect(f.records, where).toBeLessThanOrEqual(MAX_LOCKS);
          for (const [i, size] of f.holders.entries())
            expect(size, `${where} holders of ${KEYS[i]}`).toBeLessThanOrEqual(2 * Math.max(...LIMITS));
          for (const [i, size] of f.queues.entries()) {
            expect(size, `${where} queue of ${KEYS[i]}`).toBeLessThanOrEqual(MAX_WAITERS);
            // Per waiter, its deadline and what a status shows of it (these histories have no
            // supersede groups, which would add one field per group).
            expect(f.deadlines[i], `${where} deadlines of ${KEYS[i]}`).toBe(2 * size);
          }
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);
});
