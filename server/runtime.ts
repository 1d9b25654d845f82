/**
 * What differs between the runtimes LSS is deployed on, decided here once: which stores a runtime
 * can use, and where a request's client address comes from. The entries (node.ts, vercel.ts,
 * workers.ts) pick one; routes never ask which runtime they run on.
 */
import type { Context } from "hono";
import type { StoreConfig } from "./config.js";

export type RuntimeName = "node" | "vercel" | "workers";

export interface Runtime {
  readonly name: RuntimeName;
  /** Store kinds that keep one lock state for every instance of this runtime. */
  readonly stores: readonly StoreConfig["kind"][];
  /** The caller's address, for rate-limiting anonymous calls. */
  clientAddress(c: Context, trustProxy: boolean): string;
}

const firstForwarded = (c: Context) => c.req.header("X-Forwarded-For")?.split(",")[0]?.trim() || undefined;

export const RUNTIMES: Record<RuntimeName, Runtime> = {
  node: {
    name: "node",
    stores: ["memory", "redis", "upstash"],
    clientAddress(c, trustProxy) {
      const forwarded = trustProxy ? firstForwarded(c) : undefined;
      const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
      return forwarded ?? env?.incoming?.socket?.remoteAddress ?? "unknown";
    },
  },
  vercel: {
    name: "vercel",
    // Instances share no memory, so a memory store would hand one lock to two jobs.
    stores: ["upstash", "redis"],
    // Vercel overwrites X-Forwarded-For with the address of the client that reached its edge.
    clientAddress: (c) => firstForwarded(c) ?? "unknown",
  },
  workers: {
    name: "workers",
    // No TCP Redis client runs in a Worker; Upstash speaks HTTP.
    stores: ["upstash"],
    // Cloudflare's edge sets CF-Connecting-IP to the client's address.
    clientAddress: (c) => c.req.header("CF-Connecting-IP") ?? "unknown",
  },
};
