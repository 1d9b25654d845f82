/**
 * Notifications: lock events delivered to the namespace's webhook subscriptions. An event is
 * noticed after the lock operation answered (never inside it), claimed once across instances,
 * and put in the durable outbox, one delivery per subscription that wants it; the instance that
 * noticed it sends it at once, and the scheduler's tick retries what is left and finds the
 * time-based events (a hold, or a wait, longer than a subscription's threshold).
 */
import type { LockChange } from "../changes.js";
import type { Config } from "../config.js";
import { hmacHex } from "../github/signature.js";
import type { Metrics } from "../metrics.js";
import { type Attempt, createOutbox, type OutboxMessage } from "../outbox/outbox.js";
import type { Lease, LockRef, LockStore } from "../stores/types.js";
import { type Notice, payloadOf, slackText } from "./notices.js";
import { deliveryProblem } from "./ssrf.js";
import {
  createSubscriptions,
  IDLE_READ_MS,
  keyMatches,
  type Subscription,
  type Subscriptions,
} from "./subscriptions.js";

interface Delivery extends OutboxMessage {
  subscriptionId: string;
  event: Notice["event"];
  notice: Notice;
}

/** A receiver has this long to answer (a hanging one is a failed attempt). */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** A notice is worth delivering for an hour; after that it is news no more. */
const WORTH_MS = 3_600_000;
const MAX_BACKOFF_MS = 60_000;
/** How long a notice's claim is kept: the same event noticed again within it is not sent again. */
const NOTICE_MEMORY_MS = 86_400_000;
/** Keys the tick looks at per namespace for held_longer_than and queue_longer_than. */
const TICK_KEYS = 1_000;

export interface NotifierOptions {
  store: LockStore;
  now?: () => number;
  log?: (line: string) => void;
  metrics?: Pick<Metrics, "webhookDelivery" | "webhookLatency"> | null;
  /** LSS_WEBHOOK_ALLOW_PRIVATE: deliveries may go to private and loopback addresses. */
  allowPrivate: boolean;
  /** LSS_WEBHOOK_MAX_PENDING: deliveries one namespace may have waiting; past it, new ones are dropped. */
  maxPendingPerNamespace: number;
  fetch?: typeof fetch;
  /** How long a receiver has to answer (DELIVERY_TIMEOUT_MS). */
  deliveryTimeoutMs?: number;
}

export interface Notifier {
  readonly subscriptions: Subscriptions;
  /** A lock operation's outcome: the work it leads to, or null (nothing subscribes to it). */
  changed(ref: LockRef, change: LockChange): Promise<void> | null;
  /** Retries what is due, and the time-based events: when the next retry is due, or null. */
  tick(): Promise<number | null>;
  /** This instance knows of nothing to do: it found no subscription (or never looked) and sent nothing since. */
  idle(): boolean;
  pending(): Promise<Delivery[]>;
}

export function createNotifier(o: NotifierOptions): Notifier {
  const now = o.now ?? Date.now;
  const log = o.log ?? ((line: string) => console.log(line));
  const send = o.fetch ?? fetch;
  const subscriptions = createSubscriptions(o.store, now);
  // Whether the outbox was empty at the last tick's end and this instance has sent nothing since;
  // whether this instance has sent something the outbox may still hold.
  let outboxEmpty = false;
  let sentHere = false;

  const attempt = async (d: Delivery): Promise<Attempt> => {
    const sub = (await subscriptions.cachedAll()).find((s) => s.id === d.subscriptionId);
    if (!sub) return "refused";
    const problem = await deliveryProblem(sub.url, o.allowPrivate);
    if (problem) {
      log(`lss webhooks: not delivering ${d.id} to ${sub.url}: ${problem}`);
      return "refused";
    }
    const body =
      sub.format === "slack"
        ? JSON.stringify({ text: slackText(d.notice) })
        : JSON.stringify(payloadOf(d.notice, d.id));
    const timestamp = Math.floor(now() / 1000);
    const res = await send(sub.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(o.deliveryTimeoutMs ?? DELIVERY_TIMEOUT_MS),
      headers: {
        "Content-Type": "application/json",
        "User-Agent": "lss-webhooks",
        "X-LSS-Event": d.event,
        "X-LSS-Delivery": d.id,
        "X-LSS-Signature": `t=${timestamp},v1=${hmacHex(sub.secret, `${timestamp}.${body}`)}`,
      },
      body,
    });
    await res.body?.cancel().catch(() => {});
    if (res.status >= 200 && res.status < 300) {
      if (d.attempts === 0) o.metrics?.webhookLatency(Math.max(0, now() - d.notice.at) / 1000);
      return "done";
    }
    log(`lss webhooks: ${sub.url} answered ${res.status} to ${d.id}`);
    // Redirects are not followed; a 4xx (but 408 and 429) will not change: refused for good.
    if (
      (res.status >= 300 && res.status < 500 && res.status !== 408 && res.status !== 429) ||
      res.status === 0
    )
      return "refused";
    return "retry";
  };

  const outbox = createOutbox<Delivery>({
    store: o.store,
    kind: "deliveries",
    claimPrefix: "webhook-send",
    now,
    log,
    attempt,
    worthMs: () => WORTH_MS,
    backoffMs: (attempts) => Math.min(1000 * 2 ** (attempts - 1), MAX_BACKOFF_MS),
    counted: (d, result) => o.metrics?.webhookDelivery(d.event, result),
  });

  /** The subscriptions that want this notice. */
  const wanting = (all: Subscription[], n: Notice) =>
    all.filter(
      (s) =>
        s.namespace === n.namespace &&
        s.events.includes(n.event) &&
        keyMatches(s.keyPattern, n.key) &&
        (n.subscriptionId === undefined || n.subscriptionId === s.id),
    );

  /** Claim the notice once across instances, then one delivery per subscription that wants it. */
  const deliver = async (n: Notice, all: Subscription[]) => {
    const subs = wanting(all, n);
    if (subs.length === 0) return;
    if (!(await o.store.claimOnce(`notice:${n.id}`, NOTICE_MEMORY_MS))) return;
    const waiting = (await outbox.pending()).filter((d) => d.notice.namespace === n.namespace).length;
    await Promise.all(
      subs.map(async (s, i) => {
        if (waiting + i >= o.maxPendingPerNamespace) {
          log(
            `lss webhooks: namespace ${n.namespace} has ${waiting} deliveries pending; dropped ${n.event} for ${s.url}`,
          );
          o.metrics?.webhookDelivery(n.event, "overflow");
          return;
        }
        outboxEmpty = false;
        sentHere = true;
        await outbox.send({ id: `${s.id}:${n.id}`, subscriptionId: s.id, event: n.event, notice: n });
      }),
    );
  };

  const noticesOf = (ref: LockRef, c: LockChange): Notice[] => {
    const base = { namespace: ref.namespace, key: ref.key };
    const ofLease = (l: Lease) => ({ holderId: l.holderId, reason: l.reason, fencingToken: l.fencingToken });
    switch (c.kind) {
      case "granted": {
        const out: Notice[] = [];
        // A grant that found the last lease ended by expiry: its holder died (the history has it).
        if (c.expired > 0) {
          out.push({
            ...base,
            id: `expired:${ref.namespace}:${ref.key}:${c.lease.fencingToken}`,
            event: "expired",
            at: c.now,
            holderId: null,
            reason: null,
            fencingToken: null,
          });
        }
        if (c.queued) {
          const id = `granted:${ref.namespace}:${ref.key}:${c.lease.fencingToken}`;
          out.push({ ...base, id, event: "granted", at: c.now, ...ofLease(c.lease) });
        }
        return out;
      }
      case "released": {
        if (c.again || !c.lease) return [];
        const event = c.forced ? "forced_release" : "released";
        const id = `${event}:${ref.namespace}:${ref.key}:${c.lease.fencingToken}`;
        return [{ ...base, id, event, at: c.now, ...ofLease(c.lease), heldMs: c.now - c.lease.acquiredAt }];
      }
      case "superseded":
        return [
          {
            ...base,
            id: `superseded:${ref.namespace}:${ref.key}:${c.tokenHash}`,
            event: "superseded",
            at: c.now,
            holderId: c.holderId,
            reason: null,
            fencingToken: null,
            supersededBy: c.by,
          },
        ];
      case "other":
        return [];
    }
  };

  /** Who the expired lease was: the history's newest expiry of the key (read only when someone wants it). */
  const withExpiredHolder = async (ref: LockRef, n: Notice): Promise<Notice> => {
    if (n.event !== "expired") return n;
    const history = await o.store.history(ref).catch(() => null);
    const e = history?.entries.find((x) => x.kind === "expired");
    if (!e) return n;
    return {
      ...n,
      at: e.at,
      holderId: e.holderId,
      reason: e.reason,
      fencingToken: e.fencingToken,
      heldMs: e.heldMs,
    };
  };

  /** held_longer_than and queue_longer_than of one namespace's subscriptions. */
  const lookAtNamespace = async (namespace: string, subs: Subscription[]) => {
    const timed = subs.filter((s) => s.heldLongerThanMs !== null || s.queueLongerThanMs !== null);
    if (timed.length === 0) return;
    let after: string | null = null;
    for (let seen = 0; seen < TICK_KEYS; ) {
      const page = await o.store.list(namespace, { prefix: "", after, limit: 100 });
      for (const k of page.keys) {
        for (const s of timed) {
          if (!keyMatches(s.keyPattern, k.key)) continue;
          const ref = { namespace, key: k.key };
          const l = k.lease;
          if (s.heldLongerThanMs !== null && s.events.includes("held_longer_than") && l) {
            const heldMs = page.now - l.acquiredAt;
            if (heldMs > s.heldLongerThanMs) {
              const id = `held:${s.id}:${namespace}:${k.key}:${l.fencingToken}`;
              const n: Notice = {
                id,
                event: "held_longer_than",
                ...ref,
                at: page.now,
                holderId: l.holderId,
                reason: l.reason,
                fencingToken: l.fencingToken,
                heldMs,
                thresholdMs: s.heldLongerThanMs,
                subscriptionId: s.id,
              };
              await deliver(n, subs);
            }
          }
          if (s.queueLongerThanMs !== null && s.events.includes("queue_longer_than") && k.waiting > 0) {
            const first = (await o.store.inspect(ref)).queue[0];
            const waitedMs = first?.since ? page.now - first.since : 0;
            if (first?.since && waitedMs > s.queueLongerThanMs) {
              const id = `queue:${s.id}:${namespace}:${k.key}:${first.since}:${first.holderId ?? ""}`;
              const n: Notice = {
                id,
                event: "queue_longer_than",
                ...ref,
                at: page.now,
                holderId: first.holderId,
                reason: null,
                fencingToken: null,
                waitedMs,
                thresholdMs: s.queueLongerThanMs,
                subscriptionId: s.id,
              };
              await deliver(n, subs);
            }
          }
        }
      }
      seen += page.keys.length;
      if (!page.more || page.last === null) break;
      after = page.last;
    }
  };

  return {
    subscriptions,
    changed(ref, change) {
      if (change.kind === "other") return null;
      const notices = noticesOf(ref, change);
      if (notices.length === 0) return null;
      return (async () => {
        const all = await subscriptions.cachedAll();
        for (const n of notices) {
          if (wanting(all, n).length === 0) continue;
          await deliver(await withExpiredHolder(ref, n), all);
        }
      })().catch((err) => log(`lss webhooks: ${(err as Error).message}`));
    },
    async tick() {
      const all = await subscriptions.forTick();
      // Nobody subscribed, and nothing left to send: nothing to look at.
      if (all.length === 0 && outboxEmpty) return null;
      const namespaces = new Set(all.map((s) => s.namespace));
      for (const ns of namespaces) {
        await lookAtNamespace(
          ns,
          all.filter((s) => s.namespace === ns),
        ).catch((err) => log(`lss webhooks: ${(err as Error).message}`));
      }
      const due = await outbox.flush();
      outboxEmpty = due === null;
      if (outboxEmpty) sentHere = false;
      return due;
    },
    idle: () => subscriptions.knownNone() && !sentHere,
    pending: () => outbox.pending(),
  };
}

/** The notifier of an entry's configuration. */
export function notifierOf(
  config: Pick<Config, "webhooks">,
  store: LockStore,
  metrics?: Pick<Metrics, "webhookDelivery" | "webhookLatency">,
): Notifier {
  return createNotifier({
    store,
    metrics,
    allowPrivate: config.webhooks.allowPrivate,
    maxPendingPerNamespace: config.webhooks.maxPending,
  });
}

/** How often a Node instance ticks for notifications (LSS_GITHUB_TICK_MS, when set, rules both). */
export const NOTIFY_TICK_MS = 30_000;

/**
 * The notifier as a Cron Trigger ticks it (Workers). A Worker's isolate is often new for each
 * trigger and so knows of no subscription: the tick's own rule (look again every IDLE_READ_MS
 * while there were none) would then read the store every minute. While this instance knows of
 * nothing to do, only the trigger at the start of each IDLE_READ_MS slot looks; one that knows of
 * a subscription, or of a delivery it sent, ticks at every trigger.
 */
export function slottedNotifier(notifier: Notifier, scheduledTime: number): Notifier {
  if (!notifier.idle() || scheduledTime % IDLE_READ_MS < 60_000) return notifier;
  return { ...notifier, tick: async () => null };
}

/** Until the signal aborts: tick every `everyMs`, and sooner when the outbox's next retry is due. */
export async function tickEvery(tick: () => Promise<number | null>, signal: AbortSignal, everyMs: number) {
  while (!signal.aborted) {
    const due = await tick().catch(() => null);
    const wait = due === null ? everyMs : Math.min(everyMs, Math.max(200, due - Date.now()));
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, wait);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
