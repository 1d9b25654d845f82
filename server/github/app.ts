/**
 * The GitHub App from its configuration: its API client, the outbox, the gates and the freezes
 * over one store, and the one scheduler entry point (`tick`) that Node's interval, Vercel Cron and
 * a Workers Cron Trigger all run. Safe with several instances ticking at once: each step is a
 * script (the store decides), an idempotent call, or a claim.
 */
import type { Config } from "../config.js";
import type { Metrics } from "../metrics.js";
import type { LockRef, LockStore } from "../stores/types.js";
import { createGitHubApi, type GitHubApi } from "./api.js";
import type { GitHubAppConfig } from "./config.js";
import { createFreeze, type Freeze } from "./freeze.js";
import { createGates, type Gates } from "./gates.js";
import { createOutbox, type Outbox } from "./outbox.js";

export interface GitHubApp {
  readonly gates: Gates;
  readonly freeze: Freeze;
  readonly outbox: Outbox;
  /**
   * Expiries, waiting gates, freeze checks, the outbox: what a scheduler runs now and then. When
   * the outbox's next call is due (null: none left).
   */
  tick(): Promise<number | null>;
  /** A key changed through this instance: what it may decide now, or null when no rule names it. */
  changed(ref: LockRef): Promise<void> | null;
  /**
   * Until the signal aborts: act at once on the release of a key a gate waits for or a freeze
   * holds (on any instance: the store's events), and tick at least every `everyMs`.
   */
  follow(signal: AbortSignal, everyMs: number): Promise<void>;
}

export function createGitHubApp(deps: {
  config: GitHubAppConfig;
  store: LockStore;
  githubUrl: string;
  api?: GitHubApi;
  metrics?: Pick<Metrics, "githubCall"> | null;
  now?: () => number;
  log?: (line: string) => void;
}): GitHubApp {
  const { config, store } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.log(line));
  const api =
    deps.api ??
    createGitHubApi({ appId: config.appId, privateKeyPem: config.privateKeyPem, apiUrl: config.apiUrl });
  const outbox = createOutbox({
    store,
    api,
    now,
    log,
    metrics: deps.metrics,
    // A call about a gate goes only while the gate wants it (an approval: while it holds).
    wanted: (call) => gates.wants(call),
  });
  const gates = createGates({ store, outbox, config, githubUrl: deps.githubUrl, now, log });
  const freeze = createFreeze({ store, outbox, rules: config.freezes, now });
  const report = (err: unknown) => log(`lss github: ${(err as Error).message}`);

  const tick = async () => {
    await gates.advance().catch(report);
    await freeze.refresh({ settle: true }).catch(report);
    return outbox.flush().catch((err) => {
      report(err);
      return null;
    });
  };

  return {
    gates,
    freeze,
    outbox,
    tick,
    changed(ref) {
      const gated = gates.gatesOn(ref);
      const frozen = freeze.freezesOn(ref);
      if (!gated && !frozen) return null;
      return (async () => {
        if (gated) await gates.advance().catch(report);
        if (frozen) await freeze.refresh({ ref }).catch(report);
      })();
    },
    async follow(signal, everyMs) {
      while (!signal.aborted) {
        const due = await tick();
        // Back at the outbox's next call if that comes before the tick: GitHub back from an outage
        // gets its approval within seconds, not a tick later.
        const wait = due === null ? everyMs : Math.min(everyMs, Math.max(200, due - now()));
        const waiting = (await gates.all().catch(() => [])).filter((g) => g.state === "waiting");
        const held = await freeze.heldRefs().catch(() => [] as LockRef[]);
        const refs = new Map(
          [...waiting.flatMap((g) => g.refs), ...held].map((r) => [`${r.namespace}\u001f${r.key}`, r]),
        );
        await firstEvent(store, [...refs.values()], wait, signal);
        await pause(20);
      }
    },
  };
}

/** The App of an entry's configuration, or undefined when it is not set up. */
export function githubAppOf(
  config: Pick<Config, "github" | "githubServerUrl">,
  store: LockStore,
  metrics?: Pick<Metrics, "githubCall">,
): GitHubApp | undefined {
  if (!config.github) return undefined;
  return createGitHubApp({ config: config.github, store, githubUrl: config.githubServerUrl, metrics });
}

/** The first event on any of the keys, or `ms`, whichever comes first. */
async function firstEvent(store: LockStore, refs: LockRef[], ms: number, signal: AbortSignal) {
  const opened = await Promise.allSettled(refs.map((r) => store.events.watch(r, signal)));
  const watches = opened.flatMap((w) => (w.status === "fulfilled" ? [w.value] : []));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      ...watches.map((w) => w.next(ms, signal)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    for (const w of watches) w.close();
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
