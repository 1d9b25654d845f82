/**
 * Server-side waiting: hold a request until the lock is granted (or free), or until its wait
 * window ends. The request watches the key's events from before its first store call, so nothing
 * that happens after can be missed; between store calls it sleeps on those events (a release, a
 * new expiry) and on the holder's own expiry. While the events source is down it peeks at the
 * store every FALLBACK_PEEK_MS (one command), and asks again when the source is back.
 */
import { mergeWatches } from "../stores/events.js";
import {
  type AcquireOutcome,
  type LockRef,
  type LockStore,
  type PoolOutcome,
  queueMember,
  type StoreAcquireParams,
  type Watch,
} from "../stores/types.js";

/** How often a waiter peeks (one command) while its events source is down. */
export const FALLBACK_PEEK_MS = 2000;

type Waiting = Extract<AcquireOutcome, { outcome: "held" | "queued" }>;

/** When to look again, in local milliseconds from now, judging by what the store said. */
function lookAgainIn(result: Waiting): number {
  if (result.outcome === "queued") return Math.max(50, result.wakeAt - result.now);
  const exp = result.lease.expiresAt;
  return exp == null ? Number.POSITIVE_INFINITY : Math.max(10, exp - result.now + 10);
}

/**
 * Acquire one of the keys (one key, or a pool), waiting up to waitMs in their queues. Resolves with
 * the last outcome (and which key it is about): granted or retried, or held/queued when the window
 * ended; refusals at once. A refused or aborted request (the client went away) leaves the queues.
 */
export async function acquireWaiting(
  store: LockStore,
  refs: LockRef[],
  params: Omit<StoreAcquireParams, "queueWindowMs">,
  waitMs: number,
  signal?: AbortSignal,
): Promise<PoolOutcome> {
  const deadline = Date.now() + waitMs;
  const watch = mergeWatches(await Promise.all(refs.map((ref) => store.events.watch(ref, signal))));
  const ask = async (queueWindowMs: number): Promise<PoolOutcome> =>
    refs.length === 1
      ? { ...(await store.acquire(refs[0] as LockRef, { ...params, queueWindowMs })), index: 0 }
      : store.acquireAny(refs, { ...params, queueWindowMs });
  let granted = false;
  let refused = false;
  try {
    for (;;) {
      const remaining = deadline - Date.now();
      const result = await ask(Math.max(0, remaining));
      if (result.outcome !== "held" && result.outcome !== "queued") {
        granted = result.outcome === "granted" || result.outcome === "retried";
        refused = !granted;
        return result;
      }
      if (remaining <= 0 || signal?.aborted) return result;
      // Events name waiters by their place in the queue: mode and token hash.
      await sleepUntilChange(
        store,
        refs,
        watch,
        result,
        deadline,
        signal,
        queueMember(params.mode, params.tokenHash),
      );
      // The window is over (timers may fire a little early): answer with what the store said last;
      // the client asks again at once. Gone: don't ask at all (it would queue us again).
      if (signal?.aborted || deadline - Date.now() <= 5) return result;
    }
  } finally {
    watch.close();
    // Gone, or refused (a limit or quota met once it had queued, maybe on another key of a pool):
    // leave every queue, or its place would hold up those behind it until it went stale.
    if (!granted && (signal?.aborted || refused)) {
      await Promise.all(refs.map((ref) => store.leave(ref, params.tokenHash).catch(() => {})));
    }
  }
}

/** Wait for the key to read free (status with wait_ms): resolves with the last inspection. */
export async function inspectWaiting(store: LockStore, ref: LockRef, waitMs: number, signal?: AbortSignal) {
  const deadline = Date.now() + waitMs;
  const watch = await store.events.watch(ref, signal);
  try {
    for (;;) {
      const state = await store.inspect(ref, { watch: true });
      const remaining = deadline - Date.now();
      if (!state.lease || remaining <= 0 || signal?.aborted) return state;
      const held: Waiting = { outcome: "held", now: state.now, lease: state.lease, position: 0 };
      await sleepUntilChange(store, [ref], watch, held, deadline, signal);
    }
  } finally {
    watch.close();
  }
}

/**
 * Sleep until a release that concerns us (we are the first waiter, or we only watch), the
 * (possibly renewed) expiry, the deadline, the abort, or a sign that events were missed.
 */
async function sleepUntilChange(
  store: LockStore,
  refs: LockRef[],
  watch: Watch,
  result: Waiting,
  deadline: number,
  signal?: AbortSignal,
  waiter?: string,
) {
  // The store's clock may differ from ours: keep its offset to turn its times into ours.
  const offset = result.now - Date.now();
  const soleLease = refs.length === 1 && result.outcome === "held" && result.lease.mode === "exclusive";
  let wakeAt = Date.now() + lookAgainIn(result);
  // What a peek reads while nothing changed: the expiry the store just reported ("0": none). A key
  // that is free but promised to an earlier waiter has no such value: compare with the first peek.
  const peek = async () => (await Promise.all(refs.map((ref) => store.peek(ref)))).join(" ");
  let baseline: string | null | undefined = soleLease ? String(result.lease.expiresAt ?? 0) : undefined;
  for (;;) {
    const timeout = Math.min(wakeAt, deadline) - Date.now();
    if (timeout <= 0 || signal?.aborted) return;
    const peeking = !watch.live;
    // Events may be missed while the source is down: look at the lease now and then (one command).
    if (peeking) baseline ??= await peek();
    const event = await watch.next(peeking ? Math.min(timeout, FALLBACK_PEEK_MS) : timeout, signal);
    if (signal?.aborted) return;
    if (!event) {
      if (!peeking) return; // the expiry or the window's end: look again
      if ((await peek()) !== baseline) return;
      continue;
    }
    switch (event.kind) {
      case "resync":
        return;
      case "superseded":
        // Ours: the next ask reads by whom. Another waiter's: nothing changed for us.
        if (event.member === waiter) return;
        break;
      case "released":
        if (!waiter || event.next === null || event.next === waiter) return;
        // Someone ahead goes first: its grant will tell us the new expiry; if it never comes,
        // look again when it loses its place.
        if (event.nextUntil != null) wakeAt = Math.min(wakeAt, event.nextUntil - offset + 10);
        break;
      case "expiry": {
        // Renewed, or granted to someone else: sleep on, until the new expiry. A single exclusive
        // lease is the one we wait for; with several holders or keys it may be any of them, and
        // the one we wait for may end sooner: then never wake later than planned.
        const expiry = event.expiresAt == null ? Number.POSITIVE_INFINITY : event.expiresAt - offset + 10;
        wakeAt = soleLease ? expiry : Math.min(wakeAt, expiry);
        break;
      }
    }
  }
}
