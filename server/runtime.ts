/**
 * What differs between the runtimes LSS is deployed on, decided here once: which stores a runtime
 * can use, and where a request's client address comes from. The entries (node.ts, vercel.ts,
 * workers.ts) pick one; routes never ask which runtime they run on.
 */
import type { Context } from "hono";
import type { StoreConfig } from "./backend-types.js";

export type RuntimeName = "node" | "vercel" | "workers";

export interface Runtime {
  readonly name: RuntimeName;
  /** Store kinds that keep one lock state for every instance of this runtime. */
  readonly stores: readonly StoreConfig["kind"][];
  /** The caller's address, for rate-limiting anonymous calls. `proxies`: see Config.trustProxy. */
  clientAddress(c: Context, proxies: number): string;
  /**
   * The origin an absolute-form request target (`GET https://other.example/… HTTP/1.1`) names when
   * it is not this server's (`publicOrigin`, else the Host the request names), or null. Only Node
   * takes such targets from the client; Vercel's and Cloudflare's edges route by the host they
   * serve and hand the function a URL of their own making.
   */
  foreignTarget(c: Context, publicOrigin: string | null): string | null;
}

/**
 * The X-Forwarded-For entry appended by the outermost of `proxies` trusted proxies: each proxy
 * appends the address it saw, so entries further left were written by the client and prove nothing.
 */
function forwardedBy(c: Context, proxies: number): string | undefined {
  const entries = c.req.header("X-Forwarded-For")?.split(",") ?? [];
  return entries[entries.length - proxies]?.trim() || undefined;
}

/** On Node: the request line's target as the client wrote it, when it is in absolute form. */
function nodeForeignTarget(c: Context, publicOrigin: string | null): string | null {
  const target = (c.env as { incoming?: { url?: string } } | undefined)?.incoming?.url ?? "";
  if (!/^https?:\/\//i.test(target)) return null;
  let named: string;
  try {
    named = new URL(target).origin;
  } catch {
    return target.slice(0, 100);
  }
  const host = c.req.header("Host");
  const ours = publicOrigin ?? (host ? `${new URL(target).protocol}//${host.toLowerCase()}` : null);
  return named === ours ? null : named;
}

export const RUNTIMES: Record<RuntimeName, Runtime> = {
  node: {
    name: "node",
    stores: ["memory", "redis", "upstash"],
    clientAddress(c, proxies) {
      const forwarded = proxies > 0 ? forwardedBy(c, proxies) : undefined;
      const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
      return forwarded ?? env?.incoming?.socket?.remoteAddress ?? "unknown";
    },
    foreignTarget: nodeForeignTarget,
  },
  vercel: {
    name: "vercel",
    // Instances share no memory, so a memory store would hand one lock to two jobs.
    stores: ["upstash", "redis"],
    // Vercel overwrites X-Forwarded-For with the address of the client that reached its edge.
    clientAddress: (c) => forwardedBy(c, 1) ?? "unknown",
    foreignTarget: () => null,
  },
  workers: {
    name: "workers",
    // No TCP Redis client runs in a Worker; Upstash speaks HTTP.
    stores: ["upstash"],
    // Cloudflare's edge sets CF-Connecting-IP to the client's address.
    clientAddress: (c) => c.req.header("CF-Connecting-IP") ?? "unknown",
    foreignTarget: () => null,
  },
};
