/** The handoff benchmark's settings, shared by its parts. */
import { redisKeys } from "../../server/stores/redis/keys.js";

export const SERVERS = 2;
const KEY_PREFIX = "lss"; // the server's default LSS_KEY_PREFIX (startService strips LSS_* from our env)
const NAMESPACE = "default"; // where the admin token acts
const keys = redisKeys(KEY_PREFIX);
/** The Redis sorted set of a key's waiters, as the servers write it. */
export const queueKeyOf = (key: string) => keys.queue({ namespace: NAMESPACE, key });

export const MAX_WAIT_MS = 55_000; // LSS_MAX_WAIT_MS, and the wait_ms of every long-polling client
export const TTL_MS = 30_000;
export const HOLD_MS = 20;
export const ARRIVAL_GAP_MS = 5;
export const POLL_MS = 1_000;
export const POLL_JITTER = 0.2;

// Parts 1–3
export const SIZES = [1, 10, 100] as const;
export type Mode = "queued" | "polling";
/** Rounds per size: one chain of N waiters gives N handoffs, so small N is repeated. */
export const ROUNDS: Record<Mode, Record<(typeof SIZES)[number], number>> = {
  queued: { 1: 20, 10: 5, 100: 1 },
  polling: { 1: 10, 10: 3, 100: 1 },
};
export const ROUND_LIMIT_MS: Record<Mode, number> = { queued: 30_000, polling: 45_000 };
/** Bounds on a client's loop, besides the round's time limit. */
export const MAX_ASKS = 20;
export const MAX_POLLS = 200;

// Part 4
export const CMD_WAITERS = 10;
export const CMD_WINDOW_MS = 30_000;
export const HOLDER_TTL_MS = 60_000;
export const RENEW_EVERY_MS = 20_000;
export const PROBE_WAIT_MS = 1_000;
export const PROBE_ASKS = 10;
