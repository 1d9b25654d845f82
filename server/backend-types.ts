/** Which store a deployment uses (from its configuration), and what opening one gives. */
import type { RateLimiter } from "./auth/rate-limit.js";
import type { LockStore } from "./stores/types.js";

export type StoreConfig =
  | { kind: "memory" }
  | { kind: "redis"; url: string }
  | { kind: "upstash"; url: string; token: string };

export interface Backend {
  store: LockStore;
  rateLimiter: RateLimiter | null;
}
