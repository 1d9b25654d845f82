/**
 * One key: GET /ui/locks/{key} (holders, queue, history; ?history=<cursor>, ?confirm=force),
 * GET /ui/fragment/key/{key} (holders and queue, for the live update), and POST /ui/locks/{key}
 * (action=hold|release|force, with the form's CSRF token).
 */
import type { Hono } from "hono";
import { formatDuration, parseDuration } from "../../../src/protocol/durations.js";
import { LockKey, Reason } from "../../../src/protocol/lease.js";
import { actorOf } from "../../auth/principal.js";
import { mayForce } from "../../auth/tokens.js";
import { ApiError } from "../../errors.js";
import { type Ctx, field, NOT_A_FORM, readForm, staleForm, type UiDeps, type UiEnv } from "../context.js";
import type { Guard } from "../guard.js";
import { keyHref } from "../layout.js";
import { ErrorPage, KeyNow, KeyPage, type KeyPageProps } from "../pages.js";
import { crossSite, csrfMatches, dashboardHolder, holdToken } from "../session.js";

const HISTORY_PAGE_SIZE = 20;
const KEY_PARAM = ":key{.+}";

const DONE: Record<string, string> = {
  held: "You hold this key now.",
  released: "Your hold is released.",
  forced: "The key was force released.",
};

/** The protocol's durations ("30m", "4h", "1d", a bare number of seconds), within the server's bounds. */
function holdDuration(text: string, maxMs: number): number | string {
  const ms = parseDuration(text);
  if (ms === null)
    return "Duration must be a number of seconds, or a number with s, m, h or d, such as 30m, 4h or 1d.";
  if (ms < 1000) return "Duration must be at least 1 second.";
  if (ms > maxMs) return `Duration must be at most ${formatDuration(maxMs)} (the server's LSS_MAX_TTL_MS).`;
  return ms;
}

const keyOf = (c: Ctx): string => {
  const parsed = LockKey.safeParse(c.req.param("key"));
  if (!parsed.success) throw new ApiError("bad_request", parsed.error.issues[0]?.message ?? "invalid key");
  return parsed.data;
};
const refOf = (c: Ctx, key: string) => ({ namespace: c.var.principal.namespace, key });

/** A form's POST: from this site's pages (Origin), with this session's form token. */
function formProblem(c: Ctx, body: Record<string, unknown>): string | null {
  if (crossSite(c)) return "This form was sent from another site: refused. Nothing was changed.";
  if (!csrfMatches(c.var.sessionId, body.csrf)) {
    return "This form lacks this session's form token (CSRF): reload the page and try again. Nothing was changed.";
  }
  return null;
}

type Status = 200 | 400 | 403 | 409 | 503;

export function registerKey(ui: Hono<UiEnv>, deps: UiDeps, guard: Guard) {
  const { leases } = deps;
  const gatesOn = async (ref: { namespace: string; key: string }) => (await deps.gatesOn?.(ref)) ?? [];

  const renderKey = async (c: Ctx, key: string, extra: Partial<KeyPageProps> = {}, status: Status = 200) => {
    const p = c.var.principal;
    const historyCursor = c.req.query("history") || null;
    const [now, history, gates] = await Promise.all([
      leases.status(refOf(c, key)),
      leases.history(refOf(c, key), { cursor: historyCursor, limit: HISTORY_PAGE_SIZE }),
      gatesOn(refOf(c, key)),
    ]);
    const holder = dashboardHolder(p);
    const canForce = mayForce(p, key);
    return c.html(
      <KeyPage
        session={c.var.session}
        status={now}
        gates={gates}
        history={history}
        historyCursor={historyCursor}
        canWrite={p.scopes.has("locks:write")}
        canForce={canForce}
        mine={(now.holders ?? []).some((h) => h.holder_id === holder)}
        holder={holder}
        done={DONE[c.req.query("done") ?? ""] ?? null}
        confirmForce={canForce && now.locked && c.req.query("confirm") === "force"}
        {...extra}
      />,
      status,
    );
  };

  /** What a form asks for, done: where to go next, or the key page with why not. */
  const act = async (c: Ctx, key: string, body: Record<string, unknown>) => {
    const p = c.var.principal;
    const action = field(body, "action");
    const form = { duration: field(body, "duration"), reason: field(body, "reason") };
    const fail = (error: string, status: Status) => renderKey(c, key, { error, form }, status);
    const done = (what: keyof typeof DONE) => c.redirect(`${keyHref(key)}?done=${what}`, 303);
    const token = holdToken(c.var.holdSecret, p.namespace, key);
    const actor = actorOf(p);
    switch (action) {
      case "hold": {
        if (!p.scopes.has("locks:write"))
          return fail(
            "This token lacks the locks:write scope: it cannot hold keys. Nothing was changed.",
            403,
          );
        const ttl = holdDuration(form.duration, deps.maxTtlMs);
        if (typeof ttl === "string") return fail(ttl, 400);
        const reason = Reason.safeParse(form.reason.trim());
        if (!reason.success) return fail(reason.error.issues[0]?.message ?? "invalid reason", 400);
        const hold = { ttl_ms: ttl, token, holder_id: dashboardHolder(p), reason: reason.data || undefined };
        await leases.acquire([refOf(c, key)], hold, { actor });
        return done("held");
      }
      case "release":
        if (!p.scopes.has("locks:write"))
          return fail(
            "This token lacks the locks:write scope: it cannot release holds. Nothing was changed.",
            403,
          );
        await leases.release(refOf(c, key), { token }, actor);
        return done("released");
      case "force":
        if (!mayForce(p, key))
          return fail(
            "Force release needs a token with the admin or locks:force scope. Nothing was changed.",
            403,
          );
        if (field(body, "confirm") !== "yes") return renderKey(c, key, { confirmForce: true });
        await leases.release(refOf(c, key), { force: true }, actor);
        return done("forced");
      default:
        return fail(`Unknown action "${action}".`, 400);
    }
  };

  ui.get(`/ui/locks/${KEY_PARAM}`, guard.signedIn("page"), async (c) => renderKey(c, keyOf(c)));

  ui.get(`/ui/fragment/key/${KEY_PARAM}`, guard.signedIn("fragment"), async (c) => {
    const ref = refOf(c, keyOf(c));
    const [status, gates] = await Promise.all([leases.status(ref), gatesOn(ref)]);
    return c.html(<KeyNow status={status} gates={gates} />);
  });

  ui.post(`/ui/locks/${KEY_PARAM}`, guard.signedIn("action"), async (c) => {
    const key = keyOf(c);
    const body = await readForm(c);
    if (!body) return c.html(<ErrorPage title="Refused" message={NOT_A_FORM} session={c.var.session} />, 400);
    const refused = formProblem(c, body);
    if (refused) return c.html(<ErrorPage title="Refused" message={refused} session={c.var.session} />, 403);
    const stale = staleForm(c, body);
    if (stale) return c.html(<ErrorPage title="Refused" message={stale} session={c.var.session} />, 409);
    try {
      return await act(c, key, body);
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 400 || err.status === 403 || err.status === 409)))
        throw err;
      const message =
        field(body, "action") === "release" && err.code === "not_held"
          ? "You hold no lease on this key from the dashboard with this token (it may have expired, or been released or force released)."
          : err.message;
      const form = { duration: field(body, "duration"), reason: field(body, "reason") };
      return renderKey(c, key, { error: message, form }, err.status);
    }
  });
}
