/**
 * The queue's policies against a model: randomized histories of waiters (a priority from -100 to
 * 100, maybe a supersede group, arriving up to five minutes apart) queue behind a holder on the
 * memory store, whose clock the test moves; then the key is released again and again, every waiter
 * asking each time, as waiting requests do. A waiter whose group a later one joined must be told
 * it was superseded, by that one; the others must be granted in the model's order: by arrival time
 * less a minute per point of priority, and by arrival among equals. The seed is printed;
 * QUEUE_MODEL_SEED=<seed> replays a run.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { DEFAULT_LIMITS, PRIORITY_AGE_MS, type StoreAcquireParams } from "../server/stores/types.js";

const SEED = Number(process.env.QUEUE_MODEL_SEED ?? Date.now() % 2 ** 31);
const REF = { namespace: "model", key: "deploy" };

const params = (name: string, priority: number, group: string | null = null): StoreAcquireParams => ({
  tokenHash: sha256Hex(name),
  holderId: name,
  reason: null,
  ttlMs: 60_000,
  registeredOnly: false,
  queueWindowMs: 86_400_000,
  mode: "exclusive",
  limit: 1,
  priority,
  group,
  actor: null,
});

type Waiter = { name: string; at: number; priority: number; group: string | null };

/** The model: who supersedes whom (a later arrival of a group, the one of that group before it). */
const modelSuperseded = (waiters: Waiter[]) => {
  const by = new Map<string, string>();
  const newest = new Map<string, string>();
  for (const w of waiters) {
    if (w.group === null) continue;
    const before = newest.get(w.group);
    if (before) by.set(before, w.name);
    newest.set(w.group, w.name);
  }
  return by;
};

/** The model: who is served first. */
const modelOrder = (waiters: Waiter[]) =>
  waiters
    .map((w, i) => ({ ...w, i }))
    .sort((a, b) => a.at - a.priority * PRIORITY_AGE_MS - (b.at - b.priority * PRIORITY_AGE_MS) || a.i - b.i)
    .map((w) => w.name);

describe("a newcomer whose priority puts it first", () => {
  it("takes a free key at once, and is told its true place when it must wait", async () => {
    let now = 1_800_000_000_000;
    const store = createMemoryStore({ clock: () => now });
    await store.acquire(REF, { ...params("holder", 0), ttlMs: 86_400_000, queueWindowMs: null });
    expect((await store.acquire(REF, params("early", 0))).outcome).toBe("held");
    // Behind the holder, a later hotfix is first in line: place 1, not 2.
    now += 1_000;
    expect(await store.acquire(REF, params("hotfix", 50))).toMatchObject({ outcome: "held", position: 1 });
    await store.release(REF, { tokenHash: sha256Hex("holder"), registeredOnly: false, actor: null });
    await store.release(REF, { tokenHash: sha256Hex("hotfix"), registeredOnly: false, actor: null });
    // The key is free and "early" has not asked again yet: a newcomer of a higher priority is
    // first in line, so it is granted now, not told to wait for a turn nobody else will take.
    now += 1_000;
    expect((await store.acquire(REF, params("urgent", 60))).outcome).toBe("granted");
    expect((await store.acquire(REF, params("early", 0))).outcome).toBe("held");
    await store.close();
  });

  it("a shared newcomer of a higher priority takes a free slot ahead of a waiting exclusive one", async () => {
    const now = 1_800_000_000_000;
    const store = createMemoryStore({ clock: () => now });
    const shared = (name: string, priority: number) => ({
      ...params(name, priority),
      mode: "shared" as const,
      limit: 5,
    });
    expect((await store.acquire(REF, { ...shared("reader", 0), queueWindowMs: null })).outcome).toBe(
      "granted",
    );
    expect((await store.acquire(REF, params("writer", 0))).outcome).toBe("held");
    // Priority 0: behind the writer, as the readers-writer rule says.
    expect((await store.acquire(REF, shared("late-reader", 0))).outcome).toBe("queued");
    // Priority 10: ahead of it, and a slot is free: granted at once.
    expect((await store.acquire(REF, shared("urgent-reader", 10))).outcome).toBe("granted");
    await store.close();
  });
});

describe("supersede's edges", () => {
  const release = (store: ReturnType<typeof createMemoryStore>, name: string) =>
    store.release(REF, { tokenHash: sha256Hex(name), registeredOnly: false, actor: null });
  const holding = async (store: ReturnType<typeof createMemoryStore>) =>
    store.acquire(REF, { ...params("holder", 0), ttlMs: 86_400_000, queueWindowMs: null });

  it("an older waiter that left and comes back cannot supersede the newer one", async () => {
    const store = createMemoryStore();
    await holding(store);
    expect((await store.acquire(REF, params("old", 0, "g"))).outcome).toBe("held");
    // Its connection dropped: it left the queue. The newer run joins, then the old one retries.
    await store.leave(REF, sha256Hex("old"), { holderId: "old", actor: null });
    expect((await store.acquire(REF, params("new", 0, "g"))).outcome).toBe("held");
    expect(await store.acquire(REF, params("old", 0, "g"))).toMatchObject({
      outcome: "superseded",
      by: "new",
    });
    expect((await store.acquire(REF, params("new", 0, "g"))).outcome).toBe("held");
    await release(store, "holder");
    expect((await store.acquire(REF, params("new", 0, "g"))).outcome).toBe("granted");
    await store.close();
  });

  it("a waiter that joined again in another group, or the caller's own token, is not superseded", async () => {
    const store = createMemoryStore();
    await holding(store);
    await store.acquire(REF, params("a", 0, "g"));
    await store.leave(REF, sha256Hex("a"), { holderId: "a", actor: null });
    await store.acquire(REF, params("a", 0, "h"));
    expect((await store.acquire(REF, params("c", 0, "g"))).outcome).toBe("held");
    expect((await store.acquire(REF, params("a", 0, "h"))).outcome).toBe("held");
    // The same token, waiting shared in a group, then exclusive in it: not superseded by itself.
    const shared = { ...params("s", 0, "k"), mode: "shared" as const, limit: 2 };
    expect((await store.acquire(REF, shared)).outcome).toBe("held");
    expect((await store.acquire(REF, params("s", 0, "k"))).outcome).toBe("held");
    expect((await store.acquire(REF, shared)).outcome).toBe("held");
    await store.close();
  });

  it("a holder's retried acquire is answered as a retry, even if a newer run of its group came since", async () => {
    const store = createMemoryStore();
    expect((await store.acquire(REF, params("a", 0, "g"))).outcome).toBe("granted");
    await store.acquire(REF, params("b", 0, "g"));
    expect((await store.acquire(REF, params("a", 0, "g"))).outcome).toBe("retried");
    await store.close();
  });

  it("a pool whose other key's queue is full supersedes nobody", async () => {
    const store = createMemoryStore({ limits: { ...DEFAULT_LIMITS, waitersPerKey: 1 } });
    const k2 = { namespace: REF.namespace, key: "other" };
    await holding(store);
    await store.acquire(k2, { ...params("holder2", 0), ttlMs: 86_400_000, queueWindowMs: null });
    expect((await store.acquire(REF, params("a", 0, "g"))).outcome).toBe("held");
    expect((await store.acquire(k2, params("z", 0))).outcome).toBe("held");
    expect((await store.acquireAny([REF, k2], params("b", 0, "g"))).outcome).toBe("quota");
    // A keeps its place: it was not superseded.
    expect((await store.acquire(REF, params("a", 0, "g"))).outcome).toBe("held");
    await store.close();
  });
});

describe("priority and supersede, against their model", () => {
  it("supersedes as the model does, and serves the rest in its order: highest first, aged by their wait, FIFO among equals", async () => {
    console.log(`queue model: seed ${SEED} (QUEUE_MODEL_SEED=${SEED} replays it)`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            priority: fc.oneof(fc.constantFrom(-100, -1, 0, 1, 100), fc.integer({ min: -100, max: 100 })),
            gapMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300_000 })),
            group: fc.constantFrom(null, null, "deploy/main", "deploy/next"),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        async (arrivals) => {
          let now = 1_800_000_000_000;
          const store = createMemoryStore({ clock: () => now });
          expect(
            (await store.acquire(REF, { ...params("holder", 0), ttlMs: 86_400_000, queueWindowMs: null }))
              .outcome,
          ).toBe("granted");
          const waiters = arrivals.map((a, i) => {
            now += a.gapMs;
            return { name: `w${i}`, at: now, priority: a.priority, group: a.group };
          });
          // Each joins at its own time.
          now = 1_800_000_000_000;
          for (const [i, w] of waiters.entries()) {
            now += arrivals[i]?.gapMs ?? 0;
            const joined = await store.acquire(REF, params(w.name, w.priority, w.group));
            expect(["held", "queued"]).toContain(joined.outcome);
          }
          // Each superseded waiter reads so at its next ask (again and again), and by whom.
          const superseded = modelSuperseded(waiters);
          for (const w of waiters) {
            const asked = await store.acquire(REF, params(w.name, w.priority, w.group));
            if (superseded.has(w.name))
              expect(asked).toMatchObject({ outcome: "superseded", by: superseded.get(w.name) });
            else expect(asked.outcome).toBe("held");
          }
          await store.release(REF, { tokenHash: sha256Hex("holder"), registeredOnly: false, actor: null });
          const served: string[] = [];
          let left = waiters.filter((w) => !superseded.has(w.name));
          while (left.length > 0) {
            now += 1_000;
            const granted = [];
            for (const w of left) {
              const outcome = await store.acquire(REF, params(w.name, w.priority, w.group));
              if (outcome.outcome === "granted") granted.push(w.name);
            }
            expect(granted).toHaveLength(1);
            const name = granted[0] as string;
            served.push(name);
            left = left.filter((w) => w.name !== name);
            await store.release(REF, { tokenHash: sha256Hex(name), registeredOnly: false, actor: null });
          }
          expect(served).toEqual(modelOrder(waiters.filter((w) => !superseded.has(w.name))));
          for (const name of superseded.keys()) {
            const w = waiters.find((x) => x.name === name) as Waiter;
            expect((await store.acquire(REF, params(w.name, w.priority, w.group))).outcome).toBe(
              "superseded",
            );
          }
          await store.close();
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  }, 60_000);
});
