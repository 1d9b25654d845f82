/**
 * In-process delivery of lock events to the requests waiting on a key. The memory store emits into
 * it directly; the Redis store feeds it from one SUBSCRIBE connection per server instance, so a
 * waiting request costs no Redis command while it waits.
 */
import type { LockEvent, LockEvents, LockRef } from "./types.js";

export interface EventHub extends LockEvents {
  emit(id: string, event: LockEvent): void;
}

export function createEventHub(
  idOf: (ref: LockRef) => string,
  onClose: () => Promise<void> = async () => {},
): EventHub {
  const waiters = new Map<string, Set<(event: LockEvent) => void>>();
  return {
    emit(id, event) {
      const set = waiters.get(id);
      if (!set) return;
      waiters.delete(id);
      for (const wake of set) wake(event);
    },
    next(ref, timeoutMs, signal) {
      const id = idOf(ref);
      return new Promise((resolve) => {
        if (signal?.aborted) return resolve(null);
        const set = waiters.get(id) ?? new Set<(event: LockEvent) => void>();
        waiters.set(id, set);
        const done = (event: LockEvent | null) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          waiters.get(id)?.delete(wake);
          if (waiters.get(id)?.size === 0) waiters.delete(id);
          resolve(event);
        };
        const wake = (event: LockEvent) => done(event);
        const onAbort = () => done(null);
        const timer = setTimeout(() => done(null), Math.max(0, timeoutMs));
        set.add(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    close: onClose,
  };
}
