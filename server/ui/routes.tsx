/**
 * The dashboard at /ui: server-rendered pages over the same lease functions as the API, signed in
 * with an API token (see session.ts and guard.tsx). Routes, one group per file under routes/:
 * - sign-in.tsx: GET /ui/login, POST /ui/login, POST /ui/logout
 * - locks.tsx: GET /ui (the namespace's locks; ?prefix, ?cursor), GET /ui/fragment/locks (its rows,
 *   for the live update)
 * - key.tsx: GET /ui/locks/{key} (holders, queue, history; ?history=<cursor>, ?confirm=force),
 *   GET /ui/fragment/key/{key} (holders and queue, for the live update),
 *   POST /ui/locks/{key} (action=hold|release|force, with the form's CSRF token)
 * - webhooks.tsx: GET /ui/webhooks, POST /ui/webhooks (admins: subscribe, delete)
 * - namespace.tsx: POST /ui/namespace (admins: the namespace every page acts in)
 * - here: GET /ui/assets/… (the stylesheet and the script), and what no page answers
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors.js";
import { StoreUnavailableError } from "../stores/types.js";
import { CSS, CSS_PATH, JS, JS_PATH } from "./assets.js";
import type { UiDeps, UiEnv } from "./context.js";
import { createGuard } from "./guard.js";
import { ErrorPage } from "./pages.js";
import { registerKey } from "./routes/key.js";
import { registerLockList } from "./routes/locks.js";
import { registerNamespaceSwitch } from "./routes/namespace.js";
import { registerSignIn } from "./routes/sign-in.js";
import { registerWebhooks } from "./routes/webhooks.js";

export type { UiDeps } from "./context.js";

/**
 * Pages: no caching (they carry the form token), no framing (a framed force release could be
 * clicked by a user who cannot see it), scripts and styles from this app only.
 */
const pageHeaders = createMiddleware(async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
  c.header("X-Frame-Options", "DENY");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "same-origin");
  c.header(
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
});

const ASSET_HEADERS = { "Cache-Control": "public, max-age=31536000, immutable" };

export function uiRoutes(deps: UiDeps) {
  const ui = new Hono<UiEnv>();
  ui.get(CSS_PATH, (c) => c.body(CSS, 200, { ...ASSET_HEADERS, "Content-Type": "text/css; charset=utf-8" }));
  ui.get(JS_PATH, (c) =>
    c.body(JS, 200, { ...ASSET_HEADERS, "Content-Type": "text/javascript; charset=utf-8" }),
  );
  for (const path of [
    "/ui",
    "/ui/login",
    "/ui/logout",
    "/ui/locks/*",
    "/ui/fragment/*",
    "/ui/webhooks",
    "/ui/namespace",
  ])
    ui.use(path, pageHeaders);

  const guard = createGuard(deps);
  registerSignIn(ui, deps, guard);
  registerLockList(ui, deps, guard);
  registerKey(ui, deps, guard);
  registerWebhooks(ui, deps, guard);
  registerNamespaceSwitch(ui, guard);
  ui.all("/ui/*", (c) =>
    c.html(<ErrorPage title="Not found" message={`There is no dashboard page at ${c.req.path}.`} />, 404),
  );

  /** Failures as pages (or a plain status for the live update), never the API's JSON. */
  ui.onError((err, c) => {
    const fragment = c.req.path.startsWith("/ui/fragment/");
    if (err instanceof StoreUnavailableError) {
      c.header("Retry-After", "1");
      if (fragment) return c.text("store unavailable", 503);
      return c.html(
        <ErrorPage
          title="Store unreachable"
          message="The lock store is unreachable: nothing was changed or granted. Try again in a moment."
        />,
        503,
      );
    }
    if (err instanceof ApiError && err.status < 500) {
      if (fragment) return c.text(err.message, err.status);
      return c.html(<ErrorPage title="Cannot show this" message={err.message} />, err.status);
    }
    console.error("unexpected error", err);
    if (fragment) return c.text("internal error", 500);
    return c.html(<ErrorPage title="Internal error" message="Something went wrong on the server." />, 500);
  });

  return ui;
}
