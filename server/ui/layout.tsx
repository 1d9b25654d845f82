/** The page frame of the dashboard, and the small pieces every page uses. */

import { raw } from "hono/html";
import type { Child } from "hono/jsx";
import type { Principal } from "../auth/types.js";
import { CSS_PATH, JS_PATH } from "./assets.js";

/** A key's page; the key percent-encoded as one path segment (a key may contain "/"). */
export const keyHref = (key: string) => `/ui/locks/${encodeURIComponent(key)}`;

/** Only web links are shown as links (a holder id could claim any scheme). */
export const safeUrl = (url: string | null) => (url && /^https?:\/\//i.test(url) ? url : null);

/** "2026-01-02 03:04:05 UTC": what a browser without the script shows; the script shows local time. */
export const utcText = (iso: string) => iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");

export const Time = ({ iso }: { iso: string | null }) =>
  iso ? <time datetime={iso}>{utcText(iso)}</time> : <span class="muted">—</span>;

export function leftText(ms: number): string {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(s % 60)}s`;
  return `${s % 60}s`;
}

/** Time left of a lease, counted down by the script; null: held until released. */
export const TimeLeft = ({ ms, locked }: { ms: number | null; locked: boolean }) =>
  !locked ? (
    <span class="muted">—</span>
  ) : ms === null ? (
    <span class="muted">no expiry</span>
  ) : (
    <span data-left-ms={String(ms)}>{leftText(ms)}</span>
  );

/** Milliseconds as a short duration ("2h 05m"). */
export const durationText = (ms: number | null) =>
  ms === null ? "—" : ms < 1000 ? `${ms} ms` : leftText(ms);

export const Csrf = ({ token }: { token: string }) => <input type="hidden" name="csrf" value={token} />;

/**
 * The namespace a page showed, sent back with its forms: an admin who switched namespace in
 * another tab cannot act on this page's key in the namespace switched to (context.ts, staleForm).
 */
export const ShownNamespace = ({ session }: { session: Session }) => (
  <input type="hidden" name="shown_namespace" value={session.principal.namespace} />
);

export interface Session {
  principal: Principal;
  csrf: string;
}

export function Layout(props: { title: string; session?: Session; children?: Child }) {
  const { session } = props;
  return (
    <>
      {raw("<!doctype html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="referrer" content="same-origin" />
          <title>{`${props.title} · LSS`}</title>
          <link rel="stylesheet" href={CSS_PATH} />
          <script src={JS_PATH} defer />
        </head>
        <body>
          <a class="skip" href="#main">
            Skip to content
          </a>
          <header class="top">
            <a class="brand" href="/ui">
              LSS locks
            </a>
            {session && (
              <>
                <span class="who">
                  Namespace <strong>{session.principal.namespace}</strong> · signed in as{" "}
                  <strong>{session.principal.name ?? session.principal.id}</strong> (
                  {[...session.principal.scopes].join(", ")})
                </span>
                {session.principal.scopes.has("admin") && (
                  <>
                    <form method="post" action="/ui/namespace" class="switch" aria-label="Switch namespace">
                      <Csrf token={session.csrf} />
                      <input
                        name="namespace"
                        aria-label="Namespace"
                        value={session.principal.namespace}
                        required
                        pattern="[a-z0-9][a-z0-9_\-]{0,62}"
                        size={12}
                      />
                      <button type="submit" class="secondary">
                        Switch
                      </button>
                    </form>
                    <a class="nav" href="/ui/webhooks">
                      Webhooks
                    </a>
                  </>
                )}
                <form method="post" action="/ui/logout">
                  <Csrf token={session.csrf} />
                  <button type="submit" class="secondary">
                    Sign out
                  </button>
                </form>
              </>
            )}
          </header>
          <main id="main" data-namespace={session?.principal.namespace}>
            {props.children}
          </main>
          <footer>
            LSS — Lock State Service · <a href="/docs">API reference</a>
          </footer>
        </body>
      </html>
    </>
  );
}

export const Message = ({
  kind,
  text,
}: {
  kind: "error" | "ok" | "warn";
  text: string | null | undefined;
}) =>
  text ? (
    <div class={`msg ${kind}`} role={kind === "error" ? "alert" : "status"}>
      {text}
    </div>
  ) : null;
