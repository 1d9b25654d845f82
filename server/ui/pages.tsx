/** The dashboard's pages: sign-in, the namespace's locks, and one key (status, actions, history). */
import type { HistoryEvent, HistoryResponse, LockSummary, StatusResponse } from "../../src/protocol/lease.js";
import type { GateView } from "../github/gates.js";
import {
  Csrf,
  durationText,
  keyHref,
  Layout,
  Message,
  type Session,
  ShownNamespace,
  safeUrl,
  Time,
  TimeLeft,
} from "./layout.js";

export function LoginPage(props: { error?: string | null; next?: string }) {
  return (
    <Layout title="Sign in">
      <h1>Sign in to the lock dashboard</h1>
      <Message kind="error" text={props.error} />
      <form class="card" method="post" action="/ui/login">
        <label for="token">API token</label>
        <p class="hint" id="token-hint">
          The token you call the API with: <code>LSS_ADMIN_TOKEN</code> or a minted <code>lss_…</code> token.
          It is kept in a cookie of this browser only, for this dashboard.
        </p>
        <input
          type="password"
          id="token"
          name="token"
          autocomplete="current-password"
          aria-describedby="token-hint"
          required
          autofocus
        />
        {props.next && <input type="hidden" name="next" value={props.next} />}
        <p>
          <button type="submit">Sign in</button>
        </p>
      </form>
    </Layout>
  );
}

const listQuery = (prefix: string, cursor: string | null) => {
  const q = new URLSearchParams();
  if (prefix) q.set("prefix", prefix);
  if (cursor) q.set("cursor", cursor);
  const s = q.toString();
  return s ? `?${s}` : "";
};

function State({ locked, mode, holders }: { locked: boolean; mode: string | null; holders: number }) {
  if (!locked) return <span class="badge free">free</span>;
  return <span class="badge held">{mode === "shared" ? `held shared (${holders})` : "held"}</span>;
}

const RunLink = ({ url }: { url: string | null }) => {
  const href = safeUrl(url);
  return href ? (
    <a href={href} rel="noopener noreferrer">
      run
    </a>
  ) : (
    <span class="muted">—</span>
  );
};

const COLUMNS = ["Key", "State", "Holder", "Reason", "Run", "Since", "Time left", "Queue"];

/** The rows of the listing: also what the live update fetches. */
export function LockRows({ locks, prefix }: { locks: LockSummary[]; prefix: string }) {
  if (locks.length === 0) {
    return (
      <tr>
        <td class="empty" colspan={COLUMNS.length}>
          {prefix ? `No locks whose key starts with “${prefix}”.` : "No locks in this namespace yet."}
        </td>
      </tr>
    );
  }
  return (
    <>
      {locks.map((l) => (
        <tr data-key={l.key}>
          <td data-label="Key">
            <a href={keyHref(l.key)}>
              <code>{l.key}</code>
            </a>
          </td>
          <td data-label="State">
            <State locked={l.locked} mode={l.mode} holders={l.holders} />
          </td>
          <td data-label="Holder">{l.holder_id ?? <span class="muted">—</span>}</td>
          <td data-label="Reason">{l.reason ?? <span class="muted">—</span>}</td>
          <td data-label="Run">
            <RunLink url={l.run_url} />
          </td>
          <td data-label="Since">
            <Time iso={l.locked ? l.acquired_at : null} />
          </td>
          <td data-label="Time left" class="num">
            <TimeLeft ms={l.expires_in_ms} locked={l.locked} />
          </td>
          <td data-label="Queue" class="num">
            {l.waiting}
          </td>
        </tr>
      ))}
    </>
  );
}

export function ListPage(props: {
  session: Session;
  locks: LockSummary[];
  prefix: string;
  cursor: string | null;
  nextCursor: string | null;
}) {
  const { prefix, cursor } = props;
  return (
    <Layout title="Locks" session={props.session}>
      <h1>
        Locks in <code>{props.session.principal.namespace}</code>
      </h1>
      <form method="get" action="/ui" class="row" aria-label="Filter locks">
        <div>
          <label for="prefix">Key prefix</label>
          <input type="search" id="prefix" name="prefix" value={prefix} placeholder="e.g. qa-" />
        </div>
        <div class="fit">
          <button type="submit">Filter</button>{" "}
          {prefix && (
            <a class="button secondary" href="/ui">
              Clear
            </a>
          )}
        </div>
      </form>
      <p id="live-status" class="live-status" aria-live="polite" />
      <div class="table-wrap">
        <table class="stack">
          <caption class="sr">Locks{prefix ? ` whose key starts with ${prefix}` : ""}</caption>
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th scope="col">{c}</th>
              ))}
            </tr>
          </thead>
          <tbody id="locks" data-live={`/ui/fragment/locks${listQuery(prefix, cursor)}`}>
            <LockRows locks={props.locks} prefix={prefix} />
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        {cursor && <a href={`/ui${listQuery(prefix, null)}`}>First page</a>}
        {props.nextCursor && <a href={`/ui${listQuery(prefix, props.nextCursor)}`}>Next page</a>}
      </nav>
    </Layout>
  );
}

/** A key's holders and queue: also what the live update of a key's page fetches. */
export function KeyNow({ status, gates = [] }: { status: StatusResponse; gates?: GateView[] }) {
  const holders = status.holders ?? [];
  const queue = status.queue ?? [];
  return (
    <>
      <p>
        <State locked={status.locked} mode={status.mode ?? null} holders={holders.length} />{" "}
        {status.locked
          ? status.mode === "shared"
            ? `by ${holders.length} holder${holders.length === 1 ? "" : "s"}${status.limit ? ` (at most ${status.limit})` : ""}`
            : ""
          : "Nobody holds this key."}
      </p>
      {holders.length > 0 && (
        <div class="table-wrap">
          <table class="stack">
            <caption class="sr">Holders</caption>
            <thead>
              <tr>
                <th scope="col">Holder</th>
                <th scope="col">Mode</th>
                <th scope="col">Reason</th>
                <th scope="col">Since</th>
                <th scope="col">Until</th>
                <th scope="col">Time left</th>
                <th scope="col">Fencing token</th>
              </tr>
            </thead>
            <tbody>
              {holders.map((h) => (
                <tr>
                  <td data-label="Holder">{h.holder_id ?? <span class="muted">(no holder id)</span>}</td>
                  <td data-label="Mode">{h.mode ?? "exclusive"}</td>
                  <td data-label="Reason">{h.reason ?? <span class="muted">—</span>}</td>
                  <td data-label="Since">
                    <Time iso={h.acquired_at} />
                  </td>
                  <td data-label="Until">
                    <Time iso={h.expires_at} />
                  </td>
                  <td data-label="Time left" class="num">
                    <TimeLeft ms={h.expires_in_ms} locked={true} />
                  </td>
                  <td data-label="Fencing token" class="num">
                    {h.fencing_token}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3>Queue</h3>
      {status.waiting === 0 ? (
        <p class="muted">Nobody waits.</p>
      ) : (
        <>
          <div class="table-wrap">
            <table class="stack queue">
              <caption class="sr">Queue, first in line first</caption>
              <thead>
                <tr>
                  <th scope="col">Place</th>
                  <th scope="col">Holder</th>
                  <th scope="col">Waits for</th>
                  <th scope="col">Priority</th>
                  <th scope="col">Group</th>
                  <th scope="col">Since</th>
                </tr>
              </thead>
              <tbody>
                {queue.map((w) => (
                  <tr>
                    <td data-label="Place" class="num">
                      {w.position}
                    </td>
                    <td data-label="Holder">{w.holder_id ?? <span class="muted">(no holder id)</span>}</td>
                    <td data-label="Waits for">
                      {w.mode === "shared" ? "a shared hold" : "an exclusive hold"}
                    </td>
                    <td data-label="Priority" class="num">
                      {w.priority ?? 0}
                    </td>
                    <td data-label="Group">{w.group ?? <span class="muted">—</span>}</td>
                    <td data-label="Since">
                      <Time iso={w.waiting_since ?? null} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {status.waiting > queue.length && (
            <p class="muted">{`${status.waiting} wait in all; the first ${queue.length} are shown.`}</p>
          )}
        </>
      )}
      {gates.length > 0 && <GateTable gates={gates} />}
    </>
  );
}

/** Deployments at GitHub's gate for this key (the GitHub App): in the queue above, or holding it. */
function GateTable({ gates }: { gates: GateView[] }) {
  return (
    <>
      <h3>At GitHub's gate</h3>
      <div class="table-wrap">
        <table class="stack">
          <caption class="sr">Deployments gated on this key</caption>
          <thead>
            <tr>
              <th scope="col">Repository</th>
              <th scope="col">Environment</th>
              <th scope="col">Run</th>
              <th scope="col">State</th>
              <th scope="col">Since</th>
            </tr>
          </thead>
          <tbody>
            {gates.map((g) => (
              <tr>
                <td data-label="Repository">{g.repository}</td>
                <td data-label="Environment">{g.environment}</td>
                <td data-label="Run">
                  <a href={g.run_url}>{g.run_url.replace(/^.*\/actions\/runs\//, "run ")}</a>
                </td>
                <td data-label="State">{g.state === "waiting" ? "waits to deploy" : "deploying"}</td>
                <td data-label="Since">
                  <Time iso={g.since} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function HistoryRows({ events }: { events: HistoryEvent[] }) {
  if (events.length === 0) {
    return (
      <tr>
        <td class="empty" colspan={8}>
          No history recorded for this key.
        </td>
      </tr>
    );
  }
  return (
    <>
      {events.map((e) => (
        <tr>
          <td data-label="When">
            <Time iso={e.at} />
          </td>
          <td data-label="Event">
            {e.event === "superseded"
              ? `superseded by ${e.superseded_by ?? "a newer waiter"}`
              : e.event.replaceAll("_", " ")}
          </td>
          <td data-label="Holder">{e.holder_id ?? <span class="muted">—</span>}</td>
          <td data-label="Reason">{e.reason ?? <span class="muted">—</span>}</td>
          <td data-label="Mode">{e.mode ?? <span class="muted">—</span>}</td>
          <td data-label="Held for" class="num">
            {durationText(e.held_ms)}
          </td>
          <td data-label="By">
            {e.actor ? (e.actor.token_name ?? e.actor.token_id) : <span class="muted">—</span>}
          </td>
          <td data-label="Run">
            <RunLink url={e.run_url} />
          </td>
        </tr>
      ))}
    </>
  );
}

export interface KeyPageProps {
  session: Session;
  status: StatusResponse;
  /** With the GitHub App: the deployments gated on this key. */
  gates?: GateView[];
  history: HistoryResponse | null;
  historyCursor: string | null;
  /** The token may take a hold (locks:write), force a release (admin). */
  canWrite: boolean;
  canForce: boolean;
  /** Whether the dashboard's hold of this token is one of the holders. */
  mine: boolean;
  holder: string;
  done?: string | null;
  error?: string | null;
  /** Show the force release's confirmation instead of the actions. */
  confirmForce?: boolean;
  form?: { duration?: string; reason?: string };
}

/** The force release's confirmation: who loses the key, a real button, and a way back. */
function ForceConfirmation({ p, href }: { p: KeyPageProps; href: string }) {
  const key = p.status.key;
  const holders = p.status.holders ?? [];
  return (
    <section class="card" aria-labelledby="confirm-title">
      <h2 id="confirm-title">Force release {key}?</h2>
      <p>
        This ends the lease of every holder of <code>{key}</code>, whoever took it
        {holders.length > 0 && ` (${holders.map((h) => h.holder_id ?? "unnamed").join(", ")})`}. A job that
        still runs will not know until it next renews.
      </p>
      <form method="post" action={href} class="row">
        <Csrf token={p.session.csrf} />
        <ShownNamespace session={p.session} />
        <input type="hidden" name="action" value="force" />
        <input type="hidden" name="confirm" value="yes" />
        <button type="submit" class="danger" autofocus>
          Yes, force release
        </button>
        <a class="button secondary" href={href}>
          Cancel
        </a>
      </form>
    </section>
  );
}

/** Hold the key (again) for a duration, with a reason. */
function HoldForm({ p, href }: { p: KeyPageProps; href: string }) {
  return (
    <form method="post" action={href} class="card" aria-labelledby="hold-title">
      <h3 id="hold-title">{p.mine ? "Hold again" : "Hold"}</h3>
      <p class="hint">
        {p.mine
          ? "Sets the end of your hold to this long from now."
          : `Takes the key as ${p.holder} until you release it or the time runs out.`}
      </p>
      <Csrf token={p.session.csrf} />
      <ShownNamespace session={p.session} />
      <input type="hidden" name="action" value="hold" />
      <label for="duration">Duration</label>
      <input
        type="text"
        id="duration"
        name="duration"
        value={p.form?.duration ?? "1h"}
        required
        pattern="\s*\d+\s*[smhd]?\s*"
        aria-describedby="duration-hint"
      />
      <p class="hint" id="duration-hint">
        30m, 4h, 1d; a plain number is seconds.
      </p>
      <label for="reason">Reason</label>
      <input type="text" id="reason" name="reason" value={p.form?.reason ?? ""} maxlength={512} />
      <p>
        <button type="submit">{p.mine ? "Hold again" : "Hold"}</button>
      </p>
    </form>
  );
}

/** What a token may do to the key: hold it, release its own hold, force release (after confirming). */
function KeyActions({ p, href }: { p: KeyPageProps; href: string }) {
  return (
    <section aria-labelledby="actions-title">
      <h2 id="actions-title">Actions</h2>
      <div class="actions">
        {p.canWrite && <HoldForm p={p} href={href} />}
        {(p.mine || p.canForce) && (
          <div class="card">
            {p.canWrite && p.mine && (
              <form method="post" action={href}>
                <h3>Your hold</h3>
                <p class="hint">Taken from this dashboard with your token.</p>
                <Csrf token={p.session.csrf} />
                <ShownNamespace session={p.session} />
                <input type="hidden" name="action" value="release" />
                <button type="submit">Release my hold</button>
              </form>
            )}
            {p.canForce && p.status.locked && (
              <div>
                <h3>Admin</h3>
                <p class="hint">Ends every holder's lease; asks you to confirm first.</p>
                <a class="button danger" href={`${href}?confirm=force`}>
                  Force release…
                </a>
              </div>
            )}
          </div>
        )}
      </div>
    </section>
  );
}

/** The key's history, newest first, a page at a time. */
function KeyHistory({ p, href }: { p: KeyPageProps; href: string }) {
  const historyLink = (cursor: string | null) =>
    cursor ? `${href}?history=${encodeURIComponent(cursor)}` : href;
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {p.history === null ? (
        <p class="muted">This server keeps no history.</p>
      ) : (
        <>
          <div class="table-wrap">
            <table class="stack">
              <caption class="sr">History, newest first</caption>
              <thead>
                <tr>
                  {["When", "Event", "Holder", "Reason", "Mode", "Held for", "By", "Run"].map((c) => (
                    <th scope="col">{c}</th>
                  ))}
                </tr>
              </thead>
              <tbody id="history">
                <HistoryRows events={p.history.events} />
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="History pages">
            {p.historyCursor && <a href={historyLink(null)}>Newest events</a>}
            {p.history.next_cursor && <a href={historyLink(p.history.next_cursor)}>Older events</a>}
          </nav>
        </>
      )}
    </section>
  );
}

export function KeyPage(p: KeyPageProps) {
  const key = p.status.key;
  const href = keyHref(key);
  return (
    <Layout title={key} session={p.session}>
      <nav aria-label="Breadcrumb">
        <a href="/ui">← All locks</a>
      </nav>
      <h1>
        <code>{key}</code>
      </h1>
      <Message kind="error" text={p.error} />
      <Message kind="ok" text={p.done} />
      {p.confirmForce && <ForceConfirmation p={p} href={href} />}
      <section class="card" aria-labelledby="now-title">
        <h2 id="now-title">Now</h2>
        <p id="live-status" class="live-status" aria-live="polite" />
        <div id="now" data-live={`/ui/fragment/key/${encodeURIComponent(key)}`}>
          <KeyNow status={p.status} gates={p.gates} />
        </div>
      </section>
      {(p.canWrite || p.canForce) && !p.confirmForce && <KeyActions p={p} href={href} />}
      <KeyHistory p={p} href={href} />
    </Layout>
  );
}

export function ErrorPage(props: { title: string; message: string; session?: Session }) {
  return (
    <Layout title={props.title} session={props.session}>
      <h1>{props.title}</h1>
      <Message kind="error" text={props.message} />
      <p>
        <a href="/ui">Back to the locks</a>
      </p>
    </Layout>
  );
}
