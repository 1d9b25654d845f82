/**
 * The memory store decides nothing of its own: it runs the scripts Redis runs, over an in-process
 * keyspace. This randomized test holds it to that. Each history of operations (acquires of one key
 * or a pool, exclusive and shared, with and without queueing, of several priorities and supersede
 * groups; renewals, releases and forced
 * releases, leaves, statuses, /locks locks created and locked, histories, listings, sleeps) runs on
 * a real store (redis-server over TCP, or Upstash through the REST bridge) and on a memory store
 * whose clock follows it: each operation runs on the real store first, and the memory store's
 * clock is set to the time that store answered with. Every answer must then be the same, to the
 * millisecond and the fencing token.
 * The seed is printed; EQUIVALENCE_SEED=<seed> replays a run, EQUIVALENCE_RUNS=<n> sets how many.
 * A plain status (read without a script) is held to the inspect script's reading of the same key.
 * A last test breaks one line of the acquire script on the memory side and expects a difference.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { createKeyspace } from "../server/stores/local/keyspace.js";
import { localScripts } from "../server/stores/local/lua.js";
import { localEvents, localTransport } from "../server/stores/local/transport.js";
import { MEMORY_PREFIX } from "../server/stores/memory.js";
import { createRedisStore } from "../server/stores/redis/store.js";
import type { RedisTransport } from "../server/stores/redis/transport.js";
import { ACQUIRE } from "../server/stores/scripts/acquire.js";
import { DEFAULT_LIMITS, type LockMode, type LockRef, type LockStore } from "../server/stores/types.js";
import { sleep } from "./support/processes.js";
import { type StoreBackends, startBackends } from "./support/stores.js";

const SEED = Number(process.env.EQUIVALENCE_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.EQUIVALENCE_RUNS ?? 15);
const NAMESPACE = "eq";
// One name beyond ASCII: Redis orders names by their bytes.
const KEYS = ["k0", "k1", "k2", "k🔒"];
const limits = { ...DEFAULT_LIMITS, locksPerNamespace: 4, waitersPerKey: 3, historyPerKey: 6 };

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(["redis", "upstash"]);
  console.log(
    `equivalence: seed ${SEED}, ${RUNS} histories per store (EQUIVALENCE_SEED=${SEED} replays them)`,
  );
});
afterAll(() => backends.close());

type Op =
  | {
      op: "acquire";
      keys: string[];
      token: string;
      mode: LockMode;
      limit: number;
      queue: boolean;
      ttl: number;
      priority: number;
      group: string | null;
    }
  | { op: "renew"; key: string; token: string; ttl: number }
  | { op: "release"; key: string; token: string | null }
  | { op: "leave"; key: string; token: string }
  | { op: "status"; key: string; watch: boolean }
  | { op: "create"; id: string; credential: string; locked: boolean }
  | { op: "lock"; id: string; credential: string }
  | { op: "history"; key: string }
  | { op: "list"; prefix: string; after: string | null }
  | { op: "sleep"; ms: number };

const key = fc.constantFrom(...KEYS);
const token = fc.constantFrom("t0", "t1", "t2", "t3", "t4", "t5");
const ttl = fc.constantFrom(60, 200, 60_000);
const lockId = fc.constantFrom("a", "b");
const priority = fc.constantFrom(0, 0, 0, 5, -5);
const group = fc.constantFrom(null, null, "g1", "g2");
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("acquire" as const),
      keys: key.map((k) => [k]),
      token,
      mode: fc.constantFrom<LockMode>("exclusive", "shared"),
      limit: fc.constantFrom(2, 3),
      queue: fc.boolean(),
      ttl,
      priority,
      group,
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
      ttl,
      priority,
      group,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("renew" as const), key, token, ttl }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("release" as const), key, token: fc.option(token, { freq: 6 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("leave" as const), key, token }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("status" as const), key, watch: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("create" as const),
      id: lockId,
      credential: fc.constantFrom("c1", "c2"),
      locked: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("lock" as const),
      id: lockId,
      credential: fc.constantFrom("c1", "c2"),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("history" as const), key }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("list" as const),
      prefix: fc.constantFrom("", "k", "k🔒", "locks/"),
      after: fc.option(key, { freq: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("sleep" as const), ms: fc.constantFrom(70, 220) }) },
);

const ref = (k: string): LockRef => ({ namespace: NAMESPACE, key: k });
const actor = { id: "tok", name: "eq" };

/** One operation on a store: its answer (every answer carries the store's clock, `now`). */
function apply(store: LockStore, o: Op): Promise<unknown> {
  switch (o.op) {
    case "acquire": {
      const params = {
        tokenHash: sha256Hex(o.token),
        holderId: o.token,
        reason: o.mode,
        ttlMs: o.ttl,
        registeredOnly: false,
        queueWindowMs: o.queue ? 60_000 : null,
        mode: o.mode,
        limit: o.mode === "shared" ? o.limit : 1,
        priority: o.priority,
        group: o.group,
        actor,
      };
      return o.keys.length === 1
        ? store.acquire(ref(o.keys[0] as string), params)
        : store.acquireAny(o.keys.map(ref), params);
    }
    case "renew":
      return store.renew(ref(o.key), { tokenHash: sha256Hex(o.token), ttlMs: o.ttl });
    case "release":
      return store.release(ref(o.key), {
        tokenHash: o.token === null ? null : sha256Hex(o.token),
        registeredOnly: false,
        actor,
      });
    case "leave":
      return store.leave(ref(o.key), sha256Hex(o.token), { holderId: o.token, actor });
    case "status":
      return store.inspect(ref(o.key), { watch: o.watch });
    case "create":
      return store.register(ref(`locks/${o.id}`), {
        credentialHash: sha256Hex(o.credential),
        lock: o.locked ? { ttlMs: null, holderId: null } : null,
        actor: null,
      });
    case "lock":
      return store.acquire(ref(`locks/${o.id}`), {
        tokenHash: sha256Hex(o.credential),
        holderId: null,
        reason: null,
        ttlMs: 200,
        registeredOnly: true,
        queueWindowMs: null,
        mode: "exclusive",
        limit: 1,
        actor: null,
      });
    case "history":
      return store.history(ref(o.key));
    case "list":
      return store.list(NAMESPACE, { prefix: o.prefix, after: o.after, limit: 3 });
    case "sleep":
      return sleep(o.ms).then(() => null);
  }
}

/** A memory store whose clock the test sets; `variant` may change a script (to prove the test can fail). */
function followingMemoryStore(variant?: (transport: RedisTransport) => RedisTransport) {
  let now = 0;
  const events = localEvents();
  const keyspace = createKeyspace(() => now, events.deliver);
  const transport = localTransport(keyspace, localScripts(keyspace));
  const store = createRedisStore(variant ? variant(transport) : transport, MEMORY_PREFIX, events.source, {
    limits,
  });
  return { store, setClock: (ms: number) => (now = ms) };
}

let opened = 0;
/** Runs a history on the real store and on the memory store that follows it; the first step whose answers differ. */
async function firstDifference(
  kind: "redis" | "upstash",
  ops: Op[],
  variant?: Parameters<typeof followingMemoryStore>[0],
) {
  const real = backends.open(kind, { prefix: `eq${opened++}`, limits });
  const memory = followingMemoryStore(variant);
  for (const [step, o] of ops.entries()) {
    const theirs = (await apply(real, o)) as { now?: number } | null;
    if (theirs?.now !== undefined) memory.setClock(theirs.now);
    const ours = await apply(memory.store, o);
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      return { step, op: o, real: theirs, memory: ours };
    }
  }
  return null;
}

describe.each(["redis", "upstash"] as const)("the memory store and %s", (kind) => {
  it(`answer every step of ${RUNS} random histories the same`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        expect(await firstDifference(kind, ops)).toBeNull();
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 180_000);
});

describe("a plain status and the inspect script", () => {
  // A plain status spares a script: redis/status.ts reads the record and judges its leases live
  // by the scripts' rule. That is a second reading of the rule, so it is held to the script's.
  it(`read every key the same after every step of ${RUNS * 4} random histories`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        const memory = followingMemoryStore();
        let now = 1_000_000;
        memory.setClock(now);
        for (const [step, o] of ops.entries()) {
          if (o.op === "sleep") {
            now += o.ms;
            memory.setClock(now);
          } else await apply(memory.store, o);
          for (const k of KEYS) {
            const plain = await memory.store.inspect(ref(k));
            const scripted = await memory.store.inspect(ref(k), { watch: true });
            const seen = (i: typeof plain) => ({
              lease: i.lease,
              registered: i.registered,
              waiting: i.waiting,
            });
            expect(seen(plain), `step ${step} (${o.op}), key ${k}`).toEqual(seen(scripted));
          }
        }
      }),
      { seed: SEED, numRuns: RUNS * 4, endOnFailure: true },
    );
  }, 180_000);
});

describe("a deliberately broken script on the memory side", () => {
  it("is found: an acquire that queues the newest waiter first", async () => {
    // Waiters queue by arrival; broken, by the reverse of it.
    const broken = ACQUIRE.source.replace(
      "redis.call('ZADD', k.queue, arrival, member)",
      "redis.call('ZADD', k.queue, -arrival, member)",
    );
    expect(broken).not.toBe(ACQUIRE.source);
    const variant = (inner: RedisTransport): RedisTransport => ({
      ...inner,
      evalsha: (sha1, keys, args) =>
        sha1 === ACQUIRE.sha1 ? inner.eval(broken, keys, args) : inner.evalsha(sha1, keys, args),
    });
    const ops: Op[] = [
      {
        op: "acquire",
        keys: ["k0"],
        token: "t0",
        mode: "exclusive",
        limit: 1,
        queue: false,
        ttl: 60_000,
        priority: 0,
        group: null,
      },
      {
        op: "acquire",
        keys: ["k0"],
        token: "t1",
        mode: "exclusive",
        limit: 1,
        queue: true,
        ttl: 60_000,
        priority: 0,
        group: null,
      },
      {
        op: "acquire",
        keys: ["k0"],
        token: "t2",
        mode: "exclusive",
        limit: 1,
        queue: true,
        ttl: 60_000,
        priority: 0,
        group: null,
      },
      { op: "release", key: "k0", token: "t0" },
      {
        op: "acquire",
        keys: ["k0"],
        token: "t2",
        mode: "exclusive",
        limit: 1,
        queue: true,
        ttl: 60_000,
        priority: 0,
        group: null,
      },
    ];
    expect(await firstDifference("redis", ops)).toBeNull();
    const found = await firstDifference("redis", ops, variant);
    // Found as the second waiter joins: it is told it is first (its place is read back after it joins).
    expect(found).toMatchObject({
      step: 2,
      real: { outcome: "held", position: 2 },
      memory: { outcome: "held", position: 1 },
    });
  });
});
