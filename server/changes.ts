/**
 * What a lock change through this instance sets off at once: for the GitHub App, a release may let
 * a gated deployment in, a grant or a release of a freeze key turns its checks; for notifications,
 * a grant, a release or a supersede is an event to deliver. It runs after the store answered,
 * never inside a lock operation. Serverless
 * instances have no loop of their own, so the request that made the change carries the work: a
 * Worker and Vercel hand it to waitUntil (where Vercel offers none, it is finished before
 * answering, for at most a few seconds); a Node process lets it run.
 * Keys no rule names cost nothing.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Lease, LockRef, LockStore } from "./stores/types.js";

/** A lock operation's outcome, as those who act on changes hear of it. */
export type LockChange =
  | { kind: "granted"; now: number; lease: Lease; queued: boolean; expired: number }
  | { kind: "released"; now: number; forced: boolean; again: boolean; lease: Lease | null }
  | { kind: "superseded"; now: number; tokenHash: string; holderId: string | null; by: string | null }
  /** A waiter left the queue, or a /locks lock was created locked. */
  | { kind: "other" };

export type ChangeListener = (ref: LockRef, change: LockChange) => Promise<void> | null;

export function noticingChanges(
  store: LockStore,
  changed: ChangeListener,
  opts: { background: boolean },
): { store: LockStore; settle: MiddlewareHandler } {
  const pending = new Set<Promise<void>>();
  const notice = (ref: LockRef | undefined, change: LockChange) => {
    const work = ref ? changed(ref, change) : null;
    if (!work) return;
    const tracked = work.finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  const observed: LockStore = {
    ...store,
    acquire: async (ref, params) => {
      const outcome = await store.acquire(ref, params);
      noticeAcquire(ref, params, outcome);
      return outcome;
    },
    acquireAny: async (refs, params) => {
      const outcome = await store.acquireAny(refs, params);
      noticeAcquire(refs[outcome.index], params, outcome);
      return outcome;
    },
    release: async (ref, params) => {
      const outcome = await store.release(ref, params);
      if (outcome.outcome === "released") {
        const { now, again = false, lease = null } = outcome;
        notice(ref, { kind: "released", now, forced: params.tokenHash === null, again, lease });
      }
      return outcome;
    },
    leave: async (ref, tokenHash, who) => {
      const outcome = await store.leave(ref, tokenHash, who);
      if (outcome.left) notice(ref, { kind: "other" });
      return outcome;
    },
    register: async (ref, params) => {
      const outcome = await store.register(ref, params);
      if (outcome.outcome === "created" && outcome.lease) notice(ref, { kind: "other" });
      return outcome;
    },
  };
  const noticeAcquire = (
    ref: LockRef | undefined,
    params: Parameters<LockStore["acquire"]>[1],
    outcome: Awaited<ReturnType<LockStore["acquire"]>>,
  ) => {
    if (outcome.outcome === "granted") {
      const { now, lease, queued = false, expired = 0 } = outcome;
      notice(ref, { kind: "granted", now, lease, queued, expired });
    } else if (outcome.outcome === "superseded") {
      const { now, by } = outcome;
      notice(ref, { kind: "superseded", now, tokenHash: params.tokenHash, holderId: params.holderId, by });
    }
  };
  const settle: MiddlewareHandler = async (c, next) => {
    const before = new Set(pending);
    await next();
    if (pending.size === 0 || opts.background) return;
    // This request's work (and any another request began meanwhile), not all the instance's.
    const mine = [...pending].filter((p) => !before.has(p));
    if (mine.length === 0) return;
    const work = Promise.allSettled(mine).then(() => {});
    const waitUntil = executionContext(c)?.waitUntil ?? vercelWaitUntil();
    if (waitUntil) return waitUntil(work);
    // No way to outlive the answer: finish here, but never hold the answer long; what is left
    // is in the outbox, and the next tick sends it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, SETTLE_MAX_MS)))]);
    clearTimeout(timer);
  };
  return { store: observed, settle };
}

/** How long a request without waitUntil carries its change's work before answering. */
const SETTLE_MAX_MS = 3_000;

type WaitUntil = (p: Promise<unknown>) => void;

/** A Worker's execution context; Hono's getter throws where there is none. */
function executionContext(c: Context): { waitUntil: WaitUntil } | null {
  try {
    const ctx = c.executionCtx;
    return { waitUntil: (p) => ctx.waitUntil(p) };
  } catch {
    return null;
  }
}

/** Vercel's waitUntil, from the request context its runtime keeps (as @vercel/functions reads it). */
function vercelWaitUntil(): WaitUntil | null {
  const context = (globalThis as Record<symbol, { get?: () => { waitUntil?: WaitUntil } } | undefined>)[
    Symbol.for("@vercel/request-context")
  ];
  const waitUntil = context?.get?.()?.waitUntil;
  return typeof waitUntil === "function" ? waitUntil : null;
}
