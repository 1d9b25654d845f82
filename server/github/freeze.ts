/**
 * Merge freezes: a key declared a freeze for a repository's branch (LSS_FREEZE_RULES). Each pull
 * request to that branch, and each merge-queue group, gets the check run `lss/freeze`: failing
 * while the key is held (naming the holder and the reason), passing while it is free, and posted
 * again whenever that changes. A branch rule requiring the check then blocks merging during the
 * freeze. GitHub reads the newest check run of a name for a commit, so each change is a new one.
 */
import type { InspectOutcome, LockRef, LockStore } from "../stores/types.js";
import type { FreezeRule } from "./config.js";
import type { Outbox } from "./outbox.js";

export const FREEZE_CHECK = "lss/freeze";
/** A commit not heard of for this long is forgotten (a push or a reopen tracks it again). */
const TRACK_MS = 14 * 86_400_000;
/** At most this many commits followed at once; the oldest go first. */
const MAX_TRACKED = 1000;

/** A commit whose check follows a freeze key. */
interface Tracked {
  id: string;
  repositoryId: number;
  repository: string;
  installationId: number;
  headSha: string;
  /** "pull request #12", "merge queue": what the check is for, in its summary. */
  subject: string;
  ref: LockRef;
  conclusion: "success" | "failure" | null;
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
  subject: string;
  /** false: the pull request closed, the merge group is gone: stop following it. */
  open: boolean;
}

export interface Freeze {
  /** A pull request or merge group changed: post its check (or stop following it); whether a rule covers it. */
  seen(event: FreezeEvent): Promise<boolean>;
  /** Post a new check for every followed commit whose key (or only `ref`'s) changed. */
  refresh(ref?: LockRef): Promise<void>;
  /** Whether a change of this key matters to a freeze. */
  freezesOn(ref: LockRef): boolean;
  /** The freeze keys held now, marked watched so that their release is published. */
  heldRefs(): Promise<LockRef[]>;
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

  const isHeld = (state: InspectOutcome) => state.lease !== null || state.holders.length > 0;

  const checkBody = (t: Tracked, state: InspectOutcome) => {
    const name = `${t.ref.namespace}/${t.ref.key}`;
    if (!isHeld(state))
      return {
        conclusion: "success",
        output: { title: `Not frozen: ${name} is free`, summary: `${t.subject} may merge.` },
      };
    const lease = state.lease ?? state.holders[0];
    const who = lease?.holderId ?? "an anonymous holder";
    const why = lease?.reason ? ` (${lease.reason})` : "";
    const since = lease ? ` since ${new Date(lease.acquiredAt).toISOString()}` : "";
    return {
      conclusion: "failure",
      output: {
        title: `Frozen: ${name} is held by ${who}`.slice(0, 255),
        summary: `${name} is held by ${who}${why}${since}. ${t.subject} may merge once it is released; this check passes then.`,
      },
    };
  };

  /** Post the commit's check if its conclusion changed (or was never posted). */
  const update = async (t: Tracked, state: InspectOutcome) => {
    const body = checkBody(t, state);
    if (body.conclusion === t.conclusion) return;
    const posts = (t.posts ?? 0) + 1;
    await records.put(t.id, JSON.stringify({ ...t, conclusion: body.conclusion, posts }));
    await outbox.send({
      // One slot per commit: a newer conclusion not yet sent replaces the older one. Instances
      // seeing the same change compute the same version, and send it once.
      id: `freeze:${t.id}`,
      version: String(posts),
      kind: "check",
      installationId: t.installationId,
      path: `/repos/${t.repository}/check-runs`,
      body: { name: FREEZE_CHECK, head_sha: t.headSha, status: "completed", ...body },
    });
  };

  const tracked = async () => Object.values(await records.all()).map((raw) => JSON.parse(raw) as Tracked);

  /** Forget what has not been heard of for long, and the oldest past the cap. */
  const prune = async (all: Tracked[]) => {
    const newestFirst = [...all].sort((a, b) => b.seenAt - a.seenAt);
    const gone = newestFirst.filter((t, i) => i >= MAX_TRACKED || t.seenAt + TRACK_MS < now());
    for (const t of gone) await records.delete(t.id);
    return newestFirst.filter((t) => !gone.includes(t));
  };

  return {
    async seen(event) {
      const rule = ruleFor(event.repositoryId, event.branch);
      if (!rule) return false;
      const id = `${event.repositoryId}:${event.headSha}`;
      if (!event.open) {
        await records.delete(id);
        return true;
      }
      const ref = { namespace: rule.namespace, key: rule.key };
      const known = await records.get(id);
      const t: Tracked = {
        ...(known ? (JSON.parse(known) as Tracked) : { conclusion: null, posts: 0 }),
        id,
        repositoryId: event.repositoryId,
        repository: event.repository,
        installationId: event.installationId,
        headSha: event.headSha,
        subject: event.subject,
        ref,
        seenAt: now(),
      };
      await records.put(id, JSON.stringify(t));
      await update(t, await store.inspect(ref, { waiting: false }));
      return true;
    },

    async refresh(only) {
      const all = await prune(await tracked());
      const mine = only ? all.filter((t) => refId(t.ref) === refId(only)) : all;
      const states = new Map<string, Promise<InspectOutcome>>();
      for (const t of mine) {
        const key = refId(t.ref);
        if (!states.has(key)) states.set(key, store.inspect(t.ref, { waiting: false }));
        await update(t, await (states.get(key) as Promise<InspectOutcome>));
      }
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
