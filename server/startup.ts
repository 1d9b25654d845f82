/** What the server says when it starts: where it listens, on which store, and what that means. */

import type { Config } from "./config.js";
import { randomHex } from "./crypto.js";
import { describeStore } from "./redis-config.js";

/**
 * Trying LSS out must not need configuration, yet the lease API is never open: on the memory
 * store without LSS_ADMIN_TOKEN, a token for this process only is made up and printed.
 */
export function withTryOutAdminToken(config: Config): { config: Config; generated: boolean } {
  if (config.adminToken || config.store.kind !== "memory") return { config, generated: false };
  return { config: { ...config, adminToken: `lss-try-${randomHex(12)}` }, generated: true };
}

export function announce(
  config: Config,
  port: number,
  generatedToken: boolean,
  log: (line: string) => void = console.log,
) {
  const store = describeStore(config.store);
  log(`lss listening on http://localhost:${port} — store: ${store}; docs at /docs`);
  if (config.store.kind === "memory") {
    log("WARNING: in-memory store: locks are NOT durable and vanish when this process stops.");
    log("         Set REDIS_URL, or UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN, for real use.");
  }
  if (generatedToken) {
    log(`admin token for this process (set LSS_ADMIN_TOKEN to choose one): ${config.adminToken}`);
  } else if (!config.adminToken) {
    log(
      "note: LSS_ADMIN_TOKEN is not set: no token can be minted, so the lease API (/infra) refuses every call.",
    );
  }
}
