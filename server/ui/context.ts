/** What the dashboard's routes share: their dependencies, the request's variables, small helpers. */
import type { Context } from "hono";
import type { FailedAuthGuard } from "../auth/middleware.js";
import type { RateLimiter } from "../auth/rate-limit.js";
import type { Principal, SessionStore, TokenVerifier } from "../auth/types.js";
import type { GateView } from "../github/gates.js";
import type { Leases } from "../locks/leases.js";
import type { Notifier } from "../notify/notifier.js";
import type { LockRef } from "../stores/types.js";
import type { Session } from "./layout.js";

export interface UiDeps {
  verifier: TokenVerifier;
  /** Where sessions are kept (the store's), and the admin token they may have signed in with. */
  sessions: SessionStore;
  adminToken: string | null;
  /** How long a session read is trusted on this instance (LSS_TOKEN_CACHE_MS, as tokens). */
  cacheMs: number;
  leases: Leases;
  maxTtlMs: number;
  trustProxy: number;
  clientAddress: (c: Context) => string;
  /** Counts failed sign-ins as failed authentications of the API (when rate limiting is on). */
  failures?: FailedAuthGuard;
  rateLimiter?: RateLimiter | null;
  /** With the GitHub App: the deployments at GitHub's gate for a key, waiting first. */
  gatesOn?: (ref: LockRef) => Promise<GateView[]>;
  /** Webhook subscriptions (the admins' page), and whether they may go to private addresses. */
  notifier?: Notifier;
  webhooksAllowPrivate?: boolean;
}

export type UiEnv = {
  Variables: { principal: Principal; sessionId: string; holdSecret: string; session: Session };
};
export type Ctx = Context<UiEnv>;

/** A form's fields, or null when the body is no readable form (a broken multipart body, say). */
export async function readForm(c: Context) {
  try {
    return await c.req.parseBody();
  } catch {
    return null;
  }
}

export const NOT_A_FORM = "This request's body is not a form this page sent: reload the page and try again.";

/** A form field's text ("" when it is missing or a file). */
export const field = (body: Record<string, unknown>, name: string) =>
  typeof body[name] === "string" ? (body[name] as string) : "";

/** The rate limit's seconds to wait for `id`, or 0 when it may go on (no limiter: always). */
export async function limitedFor(deps: UiDeps, id: string): Promise<{ seconds: number; limit: number }> {
  const decision = deps.rateLimiter ? await deps.rateLimiter.limit(id) : null;
  if (!decision || decision.allowed) return { seconds: 0, limit: decision?.limit ?? 0 };
  return { seconds: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)), limit: decision.limit };
}

/**
 * Why a form may not act: the page showed another namespace than the one the dashboard acts in
 * now. Only an admin switches namespace, so only an admin's form can be stale.
 */
export function staleForm(c: Ctx, body: Record<string, unknown>): string | null {
  const shown = field(body, "shown_namespace");
  const now = c.var.principal.namespace;
  if (shown === now || !c.var.principal.scopes.has("admin")) return null;
  return `This page showed namespace ${shown || "(unknown)"}, but the dashboard now acts in ${now} (switched in another tab): reload the page. Nothing was changed.`;
}
