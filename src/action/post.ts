/**
 * The post step (runs with `post-if: always()`): stops the renewer, says loudly if the lease was
 * lost, and releases what THIS job acquired — nothing else. A hold (release-at-end: false) is kept.
 */
import { type LockTarget, type LssClient, releaseAny, targetName } from "../client/client.js";
import { LssError } from "../client/errors.js";
import { formatDuration } from "../protocol/durations.js";
import { describeFailure } from "./failure.js";
import { type AcquireInputs, type Inputs, parseInputs } from "./inputs.js";
import type { ActionIO } from "./io.js";
import { State } from "./names.js";
import type { RenewerStatus } from "./renewer.js";
import { mdCode, summaryMarkdown } from "./summary.js";

export interface PostDeps {
  env: Record<string, string | undefined>;
  io: ActionIO;
  client(inputs: Inputs): LssClient;
  /** Stop the renewer (ignore it if it is gone already). */
  stopRenewer(pid: number): Promise<void>;
  readRenewerStatus(file: string): RenewerStatus | null;
  now?: () => number;
}

export async function runPost(deps: PostDeps): Promise<void> {
  const { io } = deps;
  let inputs: Inputs;
  try {
    inputs = parseInputs(deps.env);
  } catch {
    return; // main failed on the same inputs and said why; it acquired nothing
  }
  if (inputs.auth.kind === "token") io.setSecret(inputs.auth.token);
  if (inputs.auth.kind === "oidc") io.setSecret(inputs.auth.requestToken);
  if (inputs.mode !== "acquire") return;
  // The key main got (of a pool: which one); before a grant, every key it may get.
  const target =
    io.getState(State.key) || (inputs.target.kind === "key" ? inputs.target.key : inputs.target.keys);
  const key = targetName(target);
  const token = io.getState(State.leaseToken);
  if (!token) {
    io.info(`Nothing to release: ${key} was not acquired by this job.`);
    return;
  }
  const phase = io.getState(State.phase);

  const pid = Number(io.getState(State.renewerPid));
  if (pid > 0) await deps.stopRenewer(pid);
  const renewal = deps.readRenewerStatus(io.getState(State.renewerStatusFile));
  const lost = renewal?.state === "lost" ? renewal : null;
  if (lost) {
    io.error(
      `The lease on ${key} was LOST at ${lost.at}: ${lost.reason}. ` +
        "From then on this job ran WITHOUT holding the lock; another job may have held it at the same time.",
    );
  }

  // A hold stays; but an acquire cancelled before it was confirmed must leave nothing behind
  // (unless the token is the team's own, which may name an earlier hold).
  const cancelledOwnAcquire = phase === "pending" && io.getState(State.ownToken) === "true";
  const client = deps.client(inputs);
  if (!inputs.releaseAtEnd && !cancelledOwnAcquire) {
    if (phase === "held") io.info(`Keeping ${key} after the job (release-at-end: false).`);
  } else {
    await release({ target, token, phase, lost: Boolean(lost) }, { client, deps, inputs });
  }
  if (lost) io.setFailed(`The lease on ${key} was lost during the job (${lost.reason}).`);
}

/** What main left to release: the key (or, before a grant, the pool), its token and how far it got. */
interface Leftover {
  target: LockTarget;
  token: string;
  /** "pending": main was still acquiring; "held": granted. */
  phase: string;
  /** The renewer reported the lease lost (post has said so already). */
  lost: boolean;
}

async function release(
  { target, token, phase, lost }: Leftover,
  { client, deps, inputs }: { client: LssClient; deps: PostDeps; inputs: AcquireInputs },
) {
  const { io } = deps;
  const since = Number(io.getState(State.acquiredAt));
  const heldFor = since > 0 ? ` after ${formatDuration((deps.now?.() ?? Date.now()) - since)}` : "";
  const key = targetName(target);
  try {
    if (typeof target === "string") await client.release(target, { token });
    else if (!(await releaseAny(client, target, token))) throw new LssError("unavailable", "not released");
    io.info(
      phase === "held" ? `Released ${key}${heldFor}.` : `Released ${key}, granted as the job was cancelled.`,
    );
    await io.summary(
      summaryMarkdown({
        title: `LSS: released ${mdCode(key)}`,
        lock: key,
        server: client.url,
        holder: io.getState(State.holder) || inputs.holder,
      }),
    );
  } catch (err) {
    if (err instanceof LssError && (err.code === "not_held" || err.code === "lock_held")) {
      if (phase !== "held") io.info(`Nothing to release: ${key} was never granted to this job.`);
      else if (!lost) io.warning(`${key} was no longer held by this job at its end: its lease had expired.`);
      return;
    }
    // Not fatal for the job: the lease expires by itself within its TTL.
    io.warning(
      `Could not release ${key}: ${describeFailure(err, inputs)} It frees itself when its lease expires.`,
    );
  }
}
