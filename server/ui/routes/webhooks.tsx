/**
 * The namespace's webhook subscriptions, for admins: GET /ui/webhooks (the list, and a form to
 * subscribe), POST /ui/webhooks (action=create|delete, with the form's CSRF token). A new
 * subscription's secret is shown on the page that answers its creation, and never again.
 */
import type { Hono } from "hono";
import { formatDuration, parseDuration } from "../../../src/protocol/durations.js";
import { ApiError } from "../../errors.js";
import { subscribe } from "../../notify/routes.js";
import { NOTIFY_EVENTS, SubscribeRequest, type Subscription } from "../../notify/subscriptions.js";
import { type Ctx, field, NOT_A_FORM, staleForm, type UiDeps, type UiEnv } from "../context.js";
import type { Guard } from "../guard.js";
import { Csrf, Layout, Message, type Session, ShownNamespace, Time } from "../layout.js";
import { ErrorPage } from "../pages.js";
import { crossSite, csrfMatches } from "../session.js";

const EVENT_TEXT: Record<(typeof NOTIFY_EVENTS)[number], string> = {
  granted: "granted (after waiting)",
  released: "released",
  expired: "expired (the holder died)",
  forced_release: "force released",
  superseded: "superseded",
  held_longer_than: "held longer than…",
  queue_longer_than: "waited in the queue longer than…",
};

interface Form {
  url: string;
  events: string[];
  keyPattern: string;
  format: string;
  held: string;
  queue: string;
}

function WebhooksPage(p: {
  session: Session;
  subscriptions: Subscription[];
  created?: Subscription | null;
  error?: string | null;
  form?: Form;
}) {
  const f = p.form ?? { url: "", events: ["released"], keyPattern: "", format: "json", held: "", queue: "" };
  return (
    <Layout title="Webhooks" session={p.session}>
      <h1>
        Webhooks of <code>{p.session.principal.namespace}</code>
      </h1>
      <p>
        <a href="/ui">← Locks</a>
      </p>
      <Message kind="error" text={p.error} />
      {p.created && (
        <div class="msg ok" role="status">
          <p>
            Subscribed <code>{p.created.url}</code>. Its signing secret is shown this once: keep it now.
          </p>
          <p>
            <code id="webhook-secret">{p.created.secret}</code>
          </p>
        </div>
      )}
      <div class="table-wrap">
        <table class="stack webhooks">
          <caption class="sr">Subscriptions</caption>
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Events</th>
              <th scope="col">Keys</th>
              <th scope="col">Format</th>
              <th scope="col">Since</th>
              <th scope="col">Delete</th>
            </tr>
          </thead>
          <tbody>
            {p.subscriptions.length === 0 && (
              <tr>
                <td class="empty" colspan={6}>
                  No webhooks yet.
                </td>
              </tr>
            )}
            {p.subscriptions.map((s) => (
              <tr data-webhook={s.id}>
                <td data-label="URL">
                  <code>{s.url}</code>
                </td>
                <td data-label="Events">{s.events.map((e) => eventText(e, s)).join(", ")}</td>
                <td data-label="Keys">{s.keyPattern ?? <span class="muted">every key</span>}</td>
                <td data-label="Format">{s.format === "slack" ? "Slack" : "signed JSON"}</td>
                <td data-label="Since">
                  <Time iso={s.createdAt} />
                </td>
                <td data-label="Delete">
                  <form method="post" action="/ui/webhooks">
                    <Csrf token={p.session.csrf} />
                    <ShownNamespace session={p.session} />
                    <input type="hidden" name="action" value="delete" />
                    <input type="hidden" name="id" value={s.id} />
                    <button type="submit" class="secondary" aria-label={`Delete the webhook to ${s.url}`}>
                      Delete
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form method="post" action="/ui/webhooks" class="card" aria-labelledby="subscribe-title">
        <h2 id="subscribe-title">Subscribe</h2>
        <Csrf token={p.session.csrf} />
        <ShownNamespace session={p.session} />
        <input type="hidden" name="action" value="create" />
        <label for="url">URL</label>
        <input
          type="url"
          id="url"
          name="url"
          value={f.url}
          required
          placeholder="https://hooks.slack.com/services/…"
        />
        <fieldset>
          <legend>Events</legend>
          {NOTIFY_EVENTS.map((e) => (
            <label class="check">
              <input type="checkbox" name="events" value={e} checked={f.events.includes(e)} /> {EVENT_TEXT[e]}
            </label>
          ))}
        </fieldset>
        <label for="held">Held longer than</label>
        <input type="text" id="held" name="held" value={f.held} placeholder="4h" />
        <label for="queue">Waited in the queue longer than</label>
        <input type="text" id="queue" name="queue" value={f.queue} placeholder="30m" />
        <label for="key_pattern">Keys (* for any run of characters; empty: every key)</label>
        <input type="text" id="key_pattern" name="key_pattern" value={f.keyPattern} placeholder="qa-*" />
        <label for="format">Format</label>
        <select id="format" name="format">
          <option value="json" selected={f.format !== "slack"}>
            Signed JSON
          </option>
          <option value="slack" selected={f.format === "slack"}>
            Slack incoming webhook
          </option>
        </select>
        <p>
          <button type="submit">Subscribe</button>
        </p>
      </form>
    </Layout>
  );
}

const eventText = (e: string, s: Subscription) =>
  e === "held_longer_than" && s.heldLongerThanMs
    ? `held longer than ${formatDuration(s.heldLongerThanMs)}`
    : e === "queue_longer_than" && s.queueLongerThanMs
      ? `waited longer than ${formatDuration(s.queueLongerThanMs)}`
      : (EVENT_TEXT[e as keyof typeof EVENT_TEXT] ?? e);

/** The form as the API's request: durations read as the protocol reads them ("4h", "30m"). */
function requestOf(f: Form): unknown {
  const ms = (text: string) => (text.trim() ? (parseDuration(text.trim()) ?? Number.NaN) : undefined);
  return {
    url: f.url.trim(),
    events: f.events,
    ...(f.keyPattern.trim() ? { key_pattern: f.keyPattern.trim() } : {}),
    format: f.format === "slack" ? "slack" : "json",
    ...(f.held.trim() ? { held_longer_than_ms: ms(f.held) } : {}),
    ...(f.queue.trim() ? { queue_longer_than_ms: ms(f.queue) } : {}),
  };
}

export function registerWebhooks(ui: Hono<UiEnv>, deps: UiDeps, guard: Guard) {
  const list = async (c: Ctx) =>
    (await deps.notifier?.subscriptions.of(c.var.principal.namespace))?.sort((a, b) =>
      a.createdAt.localeCompare(b.createdAt),
    ) ?? [];
  const forbidden = (c: Ctx) =>
    c.html(
      <ErrorPage
        title="Admins only"
        message="Webhooks are managed with a token of the admin scope."
        session={c.var.session}
      />,
      403,
    );

  ui.get("/ui/webhooks", guard.signedIn("page"), async (c) => {
    if (!c.var.principal.scopes.has("admin") || !deps.notifier) return forbidden(c);
    return c.html(<WebhooksPage session={c.var.session} subscriptions={await list(c)} />);
  });

  ui.post("/ui/webhooks", guard.signedIn("action"), async (c) => {
    if (!c.var.principal.scopes.has("admin") || !deps.notifier) return forbidden(c);
    const notifier = deps.notifier;
    const body = await c.req.parseBody({ all: true }).catch(() => null);
    if (!body) return c.html(<ErrorPage title="Refused" message={NOT_A_FORM} session={c.var.session} />, 400);
    if (crossSite(c) || !csrfMatches(c.var.sessionId, body.csrf)) {
      const message = "This form lacks this session's form token (CSRF): reload the page and try again.";
      return c.html(<ErrorPage title="Refused" message={message} session={c.var.session} />, 403);
    }
    const stale = staleForm(c, body);
    if (stale) return c.html(<ErrorPage title="Refused" message={stale} session={c.var.session} />, 409);
    const namespace = c.var.principal.namespace;
    if (field(body, "action") === "delete") {
      await notifier.subscriptions.delete(namespace, field(body, "id"));
      return c.redirect("/ui/webhooks", 303);
    }
    const events = ([] as unknown[])
      .concat(body.events ?? [])
      .filter((e): e is string => typeof e === "string");
    const form: Form = {
      url: field(body, "url"),
      events,
      keyPattern: field(body, "key_pattern"),
      format: field(body, "format"),
      held: field(body, "held"),
      queue: field(body, "queue"),
    };
    // A mistake keeps what was typed; a new subscription starts a fresh form.
    const page = async (extra: { created?: Subscription; error?: string }, status: 200 | 400 | 403) =>
      c.html(
        <WebhooksPage
          session={c.var.session}
          subscriptions={await list(c)}
          form={extra.error ? form : undefined}
          {...extra}
        />,
        status,
      );
    const parsed = SubscribeRequest.safeParse(requestOf(form));
    if (!parsed.success) return page({ error: parsed.error.issues[0]?.message ?? "invalid form" }, 400);
    try {
      const created = await subscribe(notifier, namespace, parsed.data, deps.webhooksAllowPrivate ?? false);
      return page({ created }, 200);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 400 || err.status === 403))
        return page({ error: err.message.replace(/^invalid body: /, "") }, err.status);
      throw err;
    }
  });
}
