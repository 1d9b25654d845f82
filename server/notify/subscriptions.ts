/**
 * Webhook subscriptions, per namespace, managed by admins: a URL, the events it wants, an optional
 * key pattern, its format (signed JSON, or Slack's {"text"}), its thresholds, and a secret that
 * signs each delivery (shown once, when it is created). Kept as JSON records by id; each instance
 * reads them at most every CACHE_MS.
 */
import { z } from "zod";
import { keyMatches as matchesPattern } from "../auth/oidc-policy.js";
import { randomBase64Url, randomHex } from "../crypto.js";
import type { LockStore } from "../stores/types.js";

export const NOTIFY_EVENTS = [
  "granted",
  "released",
  "expired",
  "forced_release",
  "superseded",
  "held_longer_than",
  "queue_longer_than",
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export interface Subscription {
  id: string;
  namespace: string;
  url: string;
  events: NotifyEvent[];
  /** Keys it is about: * matches any run of characters; null: every key. */
  keyPattern: string | null;
  format: "json" | "slack";
  secret: string;
  /** held_longer_than / queue_longer_than: after how long (ms). */
  heldLongerThanMs: number | null;
  queueLongerThanMs: number | null;
  createdAt: string;
}

/** How long an instance trusts the subscriptions it read (a new one reaches every instance within it). */
export const CACHE_MS = 10_000;
/** How often the tick looks for subscriptions while there were none. */
export const IDLE_READ_MS = 5 * 60_000;
/** Subscriptions one namespace may have. */
export const MAX_SUBSCRIPTIONS = 20;

/** Whether `key` matches a subscription's pattern (the OIDC policy's rule: * for any run); null: every key. */
export const keyMatches = (pattern: string | null, key: string): boolean =>
  pattern === null || matchesPattern(pattern, key);

export const newSubscriptionId = () => randomHex(8);
export const newSecret = () => `whsec_${randomBase64Url(24)}`;

export function createSubscriptions(store: Pick<LockStore, "records">, now: () => number) {
  const records = store.records("webhooks");
  let cached: { at: number; all: Subscription[] } | null = null;
  // A subscription made here that this instance has not read back yet.
  let madeHere = false;
  const read = async () => {
    const all = Object.values(await records.all()).map((raw) => JSON.parse(raw) as Subscription);
    madeHere = false;
    return all;
  };
  return {
    /** Every namespace's, fresh from the store. */
    all: read,
    /**
     * For the scheduler's tick: fresh, but while this instance last found none, read again only
     * every IDLE_READ_MS. An idle tick then costs the store nothing most of the time (on Upstash,
     * a read every 30 s would be 86,000 commands a month); one made on this instance counts at once,
     * one made on another within IDLE_READ_MS.
     */
    async forTick(): Promise<Subscription[]> {
      if (cached && cached.all.length === 0 && now() - cached.at < IDLE_READ_MS) return cached.all;
      cached = { at: now(), all: await read() };
      return cached.all;
    },
    /** Whether this instance found no subscription at its last look, or has not looked. */
    knownNone: () => !madeHere && (!cached || cached.all.length === 0),
    /** Every namespace's, as this instance read them at most CACHE_MS ago. */
    async cachedAll(): Promise<Subscription[]> {
      if (cached && now() - cached.at < CACHE_MS) return cached.all;
      cached = { at: now(), all: await read() };
      return cached.all;
    },
    async of(namespace: string) {
      return (await read()).filter((s) => s.namespace === namespace);
    },
    async put(s: Subscription) {
      await records.put(s.id, JSON.stringify(s));
      cached = null;
      madeHere = true;
    },
    async delete(namespace: string, id: string): Promise<boolean> {
      const raw = await records.get(id);
      if (!raw || (JSON.parse(raw) as Subscription).namespace !== namespace) return false;
      await records.delete(id);
      cached = null;
      return true;
    },
  };
}

export type Subscriptions = ReturnType<typeof createSubscriptions>;

/** The request to subscribe, as the API reads it. */
export const SubscribeRequest = z.strictObject({
  url: z.string({ error: "url must be a string" }).max(2048, "url must be at most 2048 characters"),
  events: z
    .array(z.enum(NOTIFY_EVENTS, { error: `events must be some of ${NOTIFY_EVENTS.join(", ")}` }), {
      error: "events must be an array",
    })
    .min(1, "events must name at least one event"),
  key_pattern: z
    .string({ error: "key_pattern must be a string" })
    .min(1, "key_pattern must not be empty (leave it out for every key)")
    .max(512, "key_pattern must be at most 512 characters")
    .optional(),
  format: z.enum(["json", "slack"], { error: "format must be json or slack" }).optional(),
  held_longer_than_ms: z
    .number({ error: "held_longer_than_ms must be a whole number of milliseconds" })
    .int("held_longer_than_ms must be a whole number of milliseconds")
    .min(60_000, "held_longer_than_ms must be at least 60000 (a minute)")
    .max(30 * 86_400_000, "held_longer_than_ms must be at most 30 days")
    .optional(),
  queue_longer_than_ms: z
    .number({ error: "queue_longer_than_ms must be a whole number of milliseconds" })
    .int("queue_longer_than_ms must be a whole number of milliseconds")
    .min(60_000, "queue_longer_than_ms must be at least 60000 (a minute)")
    .max(30 * 86_400_000, "queue_longer_than_ms must be at most 30 days")
    .optional(),
});
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

/** What anyone with admin scope sees of a subscription: never its secret. */
export const subscriptionView = (s: Subscription) => ({
  id: s.id,
  url: s.url,
  events: s.events,
  key_pattern: s.keyPattern,
  format: s.format,
  held_longer_than_ms: s.heldLongerThanMs,
  queue_longer_than_ms: s.queueLongerThanMs,
  created_at: s.createdAt,
});
