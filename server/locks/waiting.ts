/**
 * Server-side waiting: hold a request until the lock is granted (or free), or until its wait
 * window ends. Between store calls the request sleeps on the store's events (a release, or a new
 * expiry) and on the holder's own expiry; where the store cannot push events (Upstash) it also
 * looks again every UPSTASH_POLL_MS.
 */
import type { AcquireOutcome, AcquireParams, LockRef, LockStore } from "../stores/types.js";

/** Where the store pushes no events (Upstash): how often a waiting request peeks (one command). */
export const FALLBACK_POLL_MS = 1000;

type Waiting = Extract<AcquireOutcome, { outcome: "held" | "queued" }>;

/** When to look again, in local milliseconds from now, judging by what the store said. */
function lookAgainIn(result: Waiting): number {
  if (result.outcome === "queued") return Math.max(50, result.wakeAt - result.now);
  const exp = result.lease.expiresAt;
  return exp == null ? Number.POSITIVE_INFINITY : Math.max(10, exp - result.now + 10);
}

/**
 * Acquire, waiting up to waitMs in the key's queue. Resolves with the last outcome: granted or
 * retried, or held/queued when the window ended; forbidden/unknown at once. An aborted request
 * (the client went away) leaves the queue.
 */
export async function acquireWaiting(
  store: LockStore,
  ref: LockRef,
  params: Omit<AcquireParams, "queueWindowMs">,
  waitMs: number,
  signal?: AbortSignal,
): Promise<AcquireOutcome> {
  const deadline = Date.now() + waitMs;
  let granted = false;
  try {
    for (;;) {
      const remaining = deadline - Date.now();
      const result = await store.acquire(ref, {
        ...params,
        queueWindowMs: waitMs > 0 ? Math.max(0, remaining) : null,
      });
      if (result.outcome !== "held" && result.outcome !== "queued") {
        granted = result.outcome === "granted" || result.outcome === "retried";
        return result;
      }
      if (remaining <= 0 || signal?.aborted) return result;
      await sleepUntilChange(store, ref, result, deadline, signal, params.tokenHash);
      // The window is over (timers may fire a little early): answer with what the store said last;
      // the client asks again at once. Gone: don't ask at all (it would queue us again).
      if (signal?.aborted || deadline - Date.now() <= 5) return result;
    }
  } finally {
    if (!granted && signal?.aborted) await store.leave(ref, params.tokenHash).catch(() => {});
  }
}

/** Wait for the key to read free (status with wait_ms): resolves with the last inspection. */
export async function inspectWaiting(store: LockStore, ref: LockRef, waitMs: number, signal?: AbortSignal) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const state = await store.inspect(ref);
    const remaining = deadline - Date.now();
    if (!state.lease || remaining <= 0 || signal?.aborted) return state;
    const exp = state.lease.expiresAt;
    await sleepUntilChange(
      store,
      ref,
      {
        outcome: "queued",
        now: state.now,
        position: 0,
        wakeAt: exp == null ? Number.MAX_SAFE_INTEGER : exp + 10,
      },
      deadline,
      signal,
    );
  }
}

/**
 * Sleep until a release that concerns us (we are the first waiter, or we only watch), the
 * (possibly renewed) expiry, the deadline or the abort.
 */
async function sleepUntilChange(
  store: LockStore,
  ref: LockRef,
  result: Waiting,
  deadline: number,
  signal?: AbortSignal,
  waiter?: string,
) {
  // The store's clock may differ from ours: keep its offset to turn its times into ours.
  const offset = result.now - Date.now();
  let wakeAt = Date.now() + lookAgainIn(result);
  let baseline: string | null | undefined;
  for (;;) {
    const until = Math.min(wakeAt, deadline);
    const timeout = until - Date.now();
    if (timeout <= 0) return;
    if (!store.events) {
      // No push: peek at the lease's expiry field (one command) until it changes.
      baseline ??= await store.peek(ref);
      await new Promise((r) => setTimeout(r, Math.min(timeout, FALLBACK_POLL_MS)));
      if (signal?.aborted || (await store.peek(ref)) !== baseline) return;
      continue;
    }
    const event = await store.events.next(ref, timeout, signal);
    if (!event || signal?.aborted) return;
    if (event.kind === "released") {
      if (!waiter || event.next === null || event.next === waiter) return;
      // Someone ahead goes first: its grant will tell us the new expiry; if it never comes,
      // look again when it loses its place.
      if (event.nextUntil != null) wakeAt = Math.min(wakeAt, event.nextUntil - offset + 10);
      continue;
    }
    // Renewed, or granted to someone else: sleep on, until the new expiry.
    wakeAt = event.expiresAt == null ? Number.POSITIVE_INFINITY : event.expiresAt - offset + 10;
  }
}
