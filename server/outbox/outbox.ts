/**
 * A durable outbox: a message another service must get (a GitHub approval, a webhook) is put in
 * the store before it is sent, and stays there until the receiver takes it, refuses it for good,
 * or it is too old to matter. The instance that decides a message sends it at once, and a tick
 * sends what is left, later and later; each attempt is claimed, so that instances send it once.
 * Nothing here runs inside a lock operation: a message is put after the operation answered.
 */
import type { LockStore, RecordKind } from "../stores/types.js";

export interface OutboxMessage {
  /** One message per id: the same decision put twice is one message. */
  id: string;
  /** Two instances sending one id and version send it once; a new version replaces the old. */
  version?: string;
  attempts: number;
  nextAt: number;
  firstAt: number;
}

/** How one attempt ended: taken, refused for good, or worth another try. */
export type Attempt = "done" | "refused" | "retry";
export type DeliveryResult = "done" | "dropped" | "retry" | "expired";

/** How long the outbox leaves a message to the instance that sends it at once, before a tick may. */
const SENDER_GRACE_MS = 10_000;
/** An attempt's claim: longer than an attempt takes (a sender's own retries included). */
const ATTEMPT_CLAIM_MS = 60_000;
const FLUSH_CONCURRENCY = 8;
const FLUSH_BUDGET_MS = 20_000;

export interface OutboxOptions<M extends OutboxMessage> {
  store: Pick<LockStore, "records" | "claimOnce">;
  /** Where its messages are kept. */
  kind: RecordKind;
  /** The prefix of its attempts' claims (instances of one version must agree on it). */
  claimPrefix: string;
  /** Attempts a flush runs at once, and how long it starts new ones (what is left waits a tick). */
  concurrency?: number;
  flushBudgetMs?: number;
  now: () => number;
  log: (line: string) => void;
  /** One attempt at sending it. */
  attempt(message: M): Promise<Attempt>;
  /** How long a message is worth sending, from when it was first put. */
  worthMs(message: M): number;
  /** The wait before attempt n+1 (n ≥ 1). */
  backoffMs(attempts: number): number;
  /** Whether it is still wanted (false: dropped unsent). */
  wanted?(message: M): Promise<boolean>;
  /** Each message's end, or its retry. */
  counted?(message: M, result: DeliveryResult): void;
}

export interface Outbox<M extends OutboxMessage> {
  /** Record the message, then send it (unless another instance is sending it). */
  send(message: Omit<M, "attempts" | "nextAt" | "firstAt">): Promise<void>;
  /** Send every message that is due (the tick); when the next of those left is due, or null. */
  flush(): Promise<number | null>;
  /** The messages not yet taken. */
  pending(): Promise<M[]>;
  /** Forget the messages `which` picks. */
  cancel(which: (message: M) => boolean): Promise<void>;
}

export function createOutbox<M extends OutboxMessage>(o: OutboxOptions<M>): Outbox<M> {
  const { now, log } = o;
  const messages = o.store.records(o.kind);

  /** Whether the slot still holds this message (not a newer version of it, put meanwhile). */
  const current = async (m: M) => {
    const raw = await messages.get(m.id);
    return raw !== null && (JSON.parse(raw) as M).version === m.version;
  };
  const forget = async (m: M, result: DeliveryResult) => {
    o.counted?.(m, result);
    if (await current(m)) await messages.delete(m.id);
  };
  const claim = (m: M) =>
    o.store.claimOnce(`${o.claimPrefix}:${m.id}:${m.version ?? ""}:${m.attempts}`, ATTEMPT_CLAIM_MS);

  const deliver = async (m: M) => {
    if (o.wanted && !(await o.wanted(m))) {
      log(`lss ${o.kind}: ${m.id} is no longer wanted; dropped`);
      return forget(m, "dropped");
    }
    const attempt = await o.attempt(m).catch((err: Error): Attempt => {
      log(`lss ${o.kind}: ${err.message}`);
      return "retry";
    });
    if (attempt === "done") return forget(m, "done");
    if (attempt === "refused") return forget(m, "dropped");
    const attempts = m.attempts + 1;
    if (now() - m.firstAt > o.worthMs(m)) {
      log(`lss ${o.kind}: ${m.id} not taken after ${attempts} attempts; given up`);
      return forget(m, "expired");
    }
    o.counted?.(m, "retry");
    const next = { ...m, attempts, nextAt: now() + o.backoffMs(attempts) };
    if (await current(m)) await messages.put(m.id, JSON.stringify(next));
  };

  const pending = async () => Object.values(await messages.all()).map((raw) => JSON.parse(raw) as M);

  return {
    async send(fields) {
      const m = { ...fields, attempts: 0, nextAt: now() + SENDER_GRACE_MS, firstAt: now() } as M;
      await messages.put(m.id, JSON.stringify(m));
      if (await claim(m)) await deliver(m);
    },
    async flush() {
      // A few at once, and for a while: one receiver that hangs must not hold up the rest, nor
      // make a tick outlast its scheduler's request.
      const all = await pending();
      const due = all.filter((m) => m.nextAt <= now());
      // Nothing due: what is pending says when to come back, with no second read.
      if (due.length === 0) return all.length ? Math.min(...all.map((m) => m.nextAt)) : null;
      const stopAt = now() + (o.flushBudgetMs ?? FLUSH_BUDGET_MS);
      const worker = async () => {
        for (let m = due.shift(); m && now() < stopAt; m = due.shift()) {
          try {
            if (await claim(m)) await deliver(m);
          } catch (err) {
            log(`lss ${o.kind}: ${(err as Error).message}`);
          }
        }
      };
      await Promise.all(Array.from({ length: o.concurrency ?? FLUSH_CONCURRENCY }, worker));
      const left = (await pending()).map((m) => m.nextAt);
      return left.length ? Math.min(...left) : null;
    },
    pending,
    async cancel(which) {
      for (const m of await pending()) if (which(m)) await messages.delete(m.id);
    },
  };
}
