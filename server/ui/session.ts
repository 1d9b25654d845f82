/**
 * The dashboard's session: the API token itself, in a cookie the page's scripts cannot read
 * (HttpOnly), sent only to /ui and only from this site's own pages (SameSite=Strict). Nothing is
 * stored server-side: every request verifies the token as the API does. Everything else a session
 * needs is derived from the token, so that any browser signed in with it gets the same values:
 * - the CSRF token of every form (a hash of the API token with a fixed label);
 * - the lease token of a hold taken from the dashboard (a hash of the API token, namespace and key),
 *   which the server never stores and which releases that hold from any browser.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { INVISIBLE_FORMATTING } from "../../src/protocol/lease.js";
import type { Principal } from "../auth/tokens.js";
import { constantTimeEqual, sha256Hex } from "../crypto.js";

export const COOKIE = "lss_ui";
export const COOKIE_PATH = "/ui";
/** How long a browser keeps the cookie (the token's own revocation ends a session sooner). */
const MAX_AGE_S = 12 * 3600;

/** A request over https: by its URL, or by the header a trusted proxy sets. */
export function isHttps(c: Context, trustProxy: number): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  return trustProxy > 0 && c.req.header("X-Forwarded-Proto")?.split(",")[0]?.trim() === "https";
}

export const readToken = (c: Context): string | undefined => getCookie(c, COOKIE) || undefined;

export function startSession(c: Context, apiToken: string, secure: boolean) {
  setCookie(c, COOKIE, apiToken, {
    path: COOKIE_PATH,
    httpOnly: true,
    sameSite: "Strict",
    secure,
    maxAge: MAX_AGE_S,
  });
}

export function endSession(c: Context, secure: boolean) {
  deleteCookie(c, COOKIE, { path: COOKIE_PATH, httpOnly: true, sameSite: "Strict", secure });
}

/** The form token of a session: fixed for an API token, useless without it. */
export const csrfToken = (apiToken: string) => sha256Hex(`lss-ui-csrf\0${apiToken}`);

export const csrfMatches = (apiToken: string, sent: unknown) =>
  typeof sent === "string" && constantTimeEqual(sent, csrfToken(apiToken));

/**
 * A POST from another site: its Origin (browsers send one with every form POST) names another
 * host, or `null` (an opaque origin), or Sec-Fetch-Site says cross-site.
 */
export function crossSite(c: Context): boolean {
  const site = c.req.header("Sec-Fetch-Site");
  if (site === "cross-site" || site === "same-site") return true;
  const origin = c.req.header("Origin");
  if (origin === undefined) return false;
  const host = c.req.header("X-Forwarded-Host")?.split(",")[0]?.trim() || c.req.header("Host");
  try {
    return new URL(origin).host !== (host ?? new URL(c.req.url).host);
  } catch {
    return true; // "null" or garbage
  }
}

/** The lease token of the dashboard's hold of a key: the same for the same API token, never stored. */
export const holdToken = (apiToken: string, namespace: string, key: string) =>
  `ui-${sha256Hex(`${apiToken}\0${namespace}\0${key}`)}`;

/** Who holds a key through the dashboard: the token's name (its id when unnamed). */
export const holderOf = (p: Principal) =>
  `dashboard:${(p.name ?? p.id).replace(new RegExp(INVISIBLE_FORMATTING, "g"), "")}`.slice(0, 256);

export const actorOf = (p: Principal) => ({ id: p.id, name: p.name });
