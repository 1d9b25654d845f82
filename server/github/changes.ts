/**
 * What a lock change through this instance lets the GitHub App decide at once: a release may let
 * a gated deployment in, a grant or a release of a freeze key turns its checks. Serverless
 * instances have no loop of their own, so the request that made the change carries the work: a
 * Worker and Vercel hand it to waitUntil (where Vercel offers none, it is finished before
 * answering, for at most a few seconds); a Node process lets it run.
 * Keys no rule names cost nothing.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { LockRef, LockStore } from "../stores/types.js";

export function noticingChanges(
  store: LockStore,
  changed: (ref: LockRef) => Promise<void> | null,
  opts: { background: boolean },
): { store: LockStore; settle: MiddlewareHandler } {
  const pending = new Set<Promise<void>>();
  const notice = (ref: LockRef | undefined) => {
    const work = ref ? changed(ref) : null;
    if (!work) return;
    const tracked = work.finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  const observed: LockStore = {
    ...store,
    acquire: async (ref, params) => {
      const outcome = await store.acquire(ref, params);
      if (outcome.outcome === "granted") notice(ref);
      return outcome;
    },
    acquireAny: async (refs, params) => {
      const outcome = await store.acquireAny(refs, params);
      if (outcome.outcome === "granted") notice(refs[outcome.index]);
      return outcome;
    },
    release: async (ref, params) => {
      const outcome = await store.release(ref, params);
      if (outcome.outcome === "released") notice(ref);
      return outcome;
    },
    leave: async (ref, tokenHash, who) => {
      const outcome = await store.leave(ref, tokenHash, who);
      if (outcome.left) notice(ref);
      return outcome;
    },
    register: async (ref, params) => {
      const outcome = await store.register(ref, params);
      if (outcome.outcome === "created" && outcome.lease) notice(ref);
      return outcome;
    },
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
