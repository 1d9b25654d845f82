/**
 * Merge freezes: a key declared a freeze for a repository's branch (LSS_FREEZE_RULES). Each open
 * pull request into that branch, and each merge-queue group, gets the check run `lss/freeze`:
 * failing while the key is held (naming the holder and the reason), passing while it is free, and
 * posted again whenever that changes. A branch rule requiring the check then blocks merging during
 * the freeze. GitHub reads the newest check run of a name for a commit, so each change is a new one.
 *
 * Two instances may post for one change at once, in either order: each change is posted once more
 * by the next tick that finds the key in the same state, so GitHub's newest check is right then.
 */
import type { InspectOutcome, LockRef, LockStore } from "../stores/types.js";
import type { FreezeRule } from "./config.js";
import type { Outbox } from "./outbox.js";

export const FREEZE_CHECK = "lss/freeze";
/** A merge group lives minutes; one not heard of for a day is gone. */
const GROUP_MS = 86_400_000;
/** At most this many pull requests and groups followed; past it the oldest fail, and are let go. */
const MAX_TRACKED = 5000;

/** A pull request (or merge group) whose check follows a freeze key. */
interface Tracked {
  /** `<repository id>:pr:<number>` or `<repository id>:mg:<head sha>`. */
  id: string;
  repositoryId: number;
  repository: string;
  installationId: number;
  headSha: string;
  /** "Pull request #12", "The merge queue's group": what the check is for, in its summary. */
  subject: string;
  ref: LockRef;
  /** The conclusion last posted for headSha (null: none yet), and its title (it names the holder). */
  conclusion: "success" | "failure" | null;
  title?: string;
  /** Whether a tick has posted it again since it changed (see the module's comment). */
  settled: boolean;
  /** Check runs posted for it: the outbox's version of the next one. */
  posts: number;
  seenAt: number;
}

export interface FreezeEvent {
  repositoryId: number;
  repository: string;
  installationId: number;
  /** The branch merged into (refs/heads/ stripped). */
  branch: string;
  headSha: string;
  /** A pull request's number, or null for a merge group. */
  number: number | null;
  /** false: the pull request closed, the merge group is gone: stop following it. */
  open: boolean;
}

export interface Freeze {
  /** A pull request or merge group changed: post its check (or stop following it); whether a rule covers it. */
  seen(event: FreezeEvent): Promise<boolean>;
  /**
   * Post a new check for every followed pull request whose key (or only `ref`'s) changed; `settle`
   * (the tick): also once more for those changed since the last tick.
   */
  refresh(opts?: { ref?: LockRef; settle?: boolean }): Promise<void>;
  /** Whether a change of this key matters to a freeze. */
  freezesOn(ref: LockRef): boolean;
  /** The freeze keys held now, marked watched so that their release is published. */
  heldRefs(): Promise<LockRef[]>;
}

const isHeld = (state: InspectOutcome) => state.lease !== null || state.holders.length > 0;

/** The check run's conclusion and text for the key's state. */
function checkOf(t: Tracked, state: InspectOutcome) {
  const name = `${t.ref.namespace}/${t.ref.key}`;
  if (!isHeld(state))
    return {
      conclusion: "success" as const,
      output: { title: `Not frozen: ${name} is free`, summary: `${t.subject} may merge.` },
    };
  const lease = state.lease ?? state.holders[0];
  const who = lease?.holderId ?? "an anonymous holder";
  const why = lease?.reason ? ` (${lease.reason})` : "";
  const since = lease ? ` since ${new Date(lease.acquiredAt).toISOString()}` : "";
  const others = state.holders.length > 1 ? ` and ${state.holders.length - 1} more` : "";
  return {
    conclusion: "failure" as const,
    output: {
      title: `Frozen: ${name} is held by ${who}${others}`.slice(0, 255),
      summary: `${name} is held by ${who}${others}${why}${since}. ${t.subject} may merge once it is released; this check passes then.`,
    },
  };
}

export function createFreeze(deps: {
  store: LockStore;
  outbox: Outbox;
  rules: FreezeRule[];
  now: () => number;
}): Freeze {
  const { store, outbox, rules, now } = deps;
  const records = store.records("freeze");
  const refId = (ref: LockRef) => `${ref.namespace}\u001f${ref.key}`;
  const frozenKeys = new Set(rules.map((r) => refId(r)));
  const ruleFor = (repositoryId: number, branch: string) =>
    rules.find((r) => r.repositoryId === repositoryId && r.branch === branch) ?? null;
  // The key's whole state (shared holders too): a freeze held shared is a freeze.
  const stateOf = (ref: LockRef) => store.inspect(ref);

  /** Post a new check run: the outbox first, then the record (a lost record only posts again). */
  const post = async (t: Tracked, check: ReturnType<typeof checkOf>, settled: boolean) => {
    const posts = t.posts + 1;
    await outbox.send({
      // One slot per pull request: a newer check not yet sent replaces the older one. Instances
      // seeing the same change compute the same version, and send it once.
      id: `freeze:${t.id}`,
      version: `${t.headSha}:${posts}:${check.conclusion}`,
      kind: "check",
      installationId: t.installationId,
      path: `/repos/${t.repository}/check-runs`,
      body: { name: FREEZE_CHECK, head_sha: t.headSha, status: "completed", ...check },
    });
    const title = check.output.title;
    await records.put(t.id, JSON.stringify({ ...t, conclusion: check.conclusion, title, posts, settled }));
  };

  const update = async (t: Tracked, state: InspectOutcome, settle: boolean) => {
    const check = checkOf(t, state);
    const changed = check.conclusion !== t.conclusion || check.output.title !== t.title;
    // A pull request closed since the refresh read it stays forgotten (post would write it back).
    if ((changed || (settle && !t.settled)) && !(await records.get(t.id))) return;
    // A new conclusion, or a new holder of the freeze (its title names them).
    if (check.conclusion !== t.conclusion || check.output.title !== t.title) return post(t, check, false);
    if (settle && !t.settled) return post(t, check, true);
  };

  const tracked = async () => Object.values(await records.all()).map((raw) => JSON.parse(raw) as Tracked);

  /** Let go of merge groups gone quiet, and of the oldest past the cap (failing them first). */
  const prune = async (all: Tracked[]) => {
    const newestFirst = [...all].sort((a, b) => b.seenAt - a.seenAt);
    const kept: Tracked[] = [];
    for (const [i, t] of newestFirst.entries()) {
      const quietGroup = t.id.includes(":mg:") && t.seenAt + GROUP_MS < now();
      if (!quietGroup && i < MAX_TRACKED) {
        kept.push(t);
        continue;
      }
      if (!quietGroup) {
        const summary = `LSS follows at most ${MAX_TRACKED} open pull requests and groups; push to this one to check it again.`;
        await post(t, { conclusion: "failure", output: { title: "No longer followed", summary } }, true);
      }
      await records.delete(t.id);
    }
    return kept;
  };

  let refreshing: Promise<void> = Promise.resolve();

  const seenNow = async (event: FreezeEvent): Promise<boolean> => {
    const rule = ruleFor(event.repositoryId, event.branch);
    if (!rule) return false;
    const id =
      event.number === null
        ? `${event.repositoryId}:mg:${event.headSha}`
        : `${event.repositoryId}:pr:${event.number}`;
    if (!event.open) {
      await records.delete(id);
      return true;
    }
    const ref = { namespace: rule.namespace, key: rule.key };
    const raw = await records.get(id);
    const known = raw ? (JSON.parse(raw) as Tracked) : null;
    const t: Tracked = {
      id,
      repositoryId: event.repositoryId,
      repository: event.repository,
      installationId: event.installationId,
      headSha: event.headSha,
      subject: event.number === null ? "The merge queue's group" : `Pull request #${event.number}`,
      ref,
      // A new head (a push) has had no check yet.
      conclusion: known?.headSha === event.headSha ? known.conclusion : null,
      title: known?.headSha === event.headSha ? known.title : undefined,
      settled: known?.headSha === event.headSha ? known.settled : false,
      posts: known?.posts ?? 0,
      seenAt: now(),
    };
    await records.put(id, JSON.stringify(t));
    await update(t, await stateOf(ref), false);
    return true;
  };

  return {
    seen(event) {
      // In the same line as the refreshes: a refresh that read a pull request before it closed
      // must not post for it (and write it back) after.
      const done = refreshing.catch(() => {}).then(() => seenNow(event));
      refreshing = done.then(
        () => {},
        () => {},
      );
      return done;
    },

    refresh(opts = {}) {
      // One refresh at a time on an instance: two would read the same record and post twice.
      refreshing = refreshing
        .catch(() => {})
        .then(async () => {
          const all = opts.settle ? await prune(await tracked()) : await tracked();
          const only = opts.ref;
          const mine = only ? all.filter((t) => refId(t.ref) === refId(only)) : all;
          const states = new Map<string, Promise<InspectOutcome>>();
          for (const t of mine) {
            const key = refId(t.ref);
            if (!states.has(key)) states.set(key, stateOf(t.ref));
            await update(t, await (states.get(key) as Promise<InspectOutcome>), opts.settle === true);
          }
        });
      return refreshing;
    },

    freezesOn: (ref) => frozenKeys.has(refId(ref)),

    async heldRefs() {
      const held: LockRef[] = [];
      for (const rule of rules) {
        const ref = { namespace: rule.namespace, key: rule.key };
        // Marked watched: its release is then published, and the follow loop hears of it.
        if (isHeld(await store.inspect(ref, { watch: true }))) held.push(ref);
      }
      return held;
    },
  };
}
