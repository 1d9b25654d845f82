/**
 * What a lock change through this instance lets the GitHub App decide at once: a release may let
 * a gated deployment in, a grant or a release of a freeze key turns its checks. Serverless
 * instances have no loop of their own, so the request that made the change carries the work: a
 * Worker hands it to waitUntil, Vercel finishes it before answering; a Node process lets it run.
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
    await next();
    if (pending.size === 0 || opts.background) return;
    const work = Promise.allSettled([...pending]).then(() => {});
    const ctx = executionContext(c);
    if (ctx) ctx.waitUntil(work);
    else await work;
  };
  return { store: observed, settle };
}

/** A Worker's execution context; Hono's getter throws where there is none. */
function executionContext(c: Context): { waitUntil(p: Promise<unknown>): void } | null {
  try {
    return c.executionCtx;
  } catch {
    return null;
  }
}
