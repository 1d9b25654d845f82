/**
 * Lock events reach waiting requests through a Watch, opened BEFORE the request asks the store:
 * whatever happens on the key after that is kept until the request looks, so a release that lands
 * between the store's answer and the request going to sleep is not missed.
 *
 * Two sources feed watches: an EventHub (the memory store emits into it; on TCP Redis one
 * PSUBSCRIBE connection per server instance does), and Upstash's SSE subscriptions, one per watch
 * (upstash-events.ts). While a source is down, watches say so (`live` false): waiters then peek at
 * the store, and a `resync` event tells them to ask again once the source is back.
 */
import type { LockEvent, LockEvents, LockRef, Watch } from "./types.js";

/**
 * Wire format of the scripts' PUBLISH: "r <first waiter or -> <its deadline>", "e <expiry ms>", or
 * "s <superseded waiter>".
 */
export function parseLockEvent(message: string): LockEvent | null {
  const [kind, a, b] = message.split(" ");
  if (kind === "r") {
    return { kind: "released", next: !a || a === "-" ? null : a, nextUntil: Number(b) || null };
  }
  if (kind === "e") return { kind: "expiry", expiresAt: Number(a) || null };
  if (kind === "s" && a) return { kind: "superseded", member: a };
  return null;
}

/** A watch's mailbox: events wait here until the request asks for the next one. */
export class Mailbox implements Watch {
  private readonly queued: LockEvent[] = [];
  private wake: ((event: LockEvent | null) => void) | null = null;
  private up: boolean;

  constructor(
    live: boolean,
    private readonly onClose: () => void = () => {},
  ) {
    this.up = live;
  }

  get live(): boolean {
    return this.up;
  }

  /**
   * The source went down: wake the waiter so that it looks at the store and goes on by peeking.
   * It came back: events in between may be lost (`missed`), so tell the waiter to ask again.
   */
  setLive(live: boolean, missed = true): void {
    if (live === this.up) return;
    this.up = live;
    if (live && missed) this.push({ kind: "resync" });
    else this.wake?.(null);
  }

  push(event: LockEvent): void {
    if (this.wake) this.wake(event);
    else this.queued.push(event);
  }

  next(timeoutMs: number, signal?: AbortSignal): Promise<LockEvent | null> {
    const queued = this.queued.shift();
    if (queued) return Promise.resolve(queued);
    if (signal?.aborted || timeoutMs <= 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      const done = (event: LockEvent | null) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.wake = null;
        resolve(event);
      };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.wake?.(null);
    this.onClose();
  }
}

export interface EventHub extends LockEvents {
  /** Deliver an event to every watch on the channel. */
  emit(channel: string, event: LockEvent): void;
  /** The source went down (false) or came back (true: every watch is told to ask again). */
  setLive(live: boolean): void;
}

export function createEventHub(
  channelOf: (ref: LockRef) => string,
  onClose: () => Promise<void> = async () => {},
  initiallyLive = true,
): EventHub {
  const watches = new Map<string, Set<Mailbox>>();
  let live = initiallyLive;
  return {
    emit(channel, event) {
      for (const watch of watches.get(channel) ?? []) watch.push(event);
    },
    setLive(now) {
      if (now === live) return;
      live = now;
      for (const set of watches.values()) for (const watch of set) watch.setLive(now);
    },
    async watch(ref) {
      const channel = channelOf(ref);
      const set = watches.get(channel) ?? new Set<Mailbox>();
      watches.set(channel, set);
      const watch: Mailbox = new Mailbox(live, () => {
        set.delete(watch);
        if (set.size === 0 && watches.get(channel) === set) watches.delete(channel);
      });
      set.add(watch);
      return watch;
    },
    close: onClose,
  };
}

/**
 * One watch over several (a pool's keys): the next event of any of them. Events that arrive while
 * another one is being handed over are kept for the next call, never dropped.
 */
export function mergeWatches(watches: Watch[]): Watch {
  if (watches.length === 1) return watches[0] as Watch;
  const kept: LockEvent[] = [];
  return {
    get live() {
      return watches.every((w) => w.live);
    },
    next(timeoutMs, signal) {
      const queued = kept.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => {
        const stop = new AbortController();
        const onAbort = () => stop.abort();
        signal?.addEventListener("abort", onAbort, { once: true });
        let pending = watches.length;
        let settled = false;
        for (const w of watches) {
          void w.next(timeoutMs, stop.signal).then((event) => {
            if (event && settled) kept.push(event);
            else if (event) {
              settled = true;
              stop.abort();
              signal?.removeEventListener("abort", onAbort);
              resolve(event);
            } else if (--pending === 0 && !settled) {
              signal?.removeEventListener("abort", onAbort);
              resolve(null);
            }
          });
        }
      });
    },
    close() {
      for (const w of watches) w.close();
    },
  };
}
