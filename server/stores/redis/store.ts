/**
 * The Redis store: each lock operation is one script (scripts/), run over a transport (TCP,
 * Upstash REST, or the in-process one of the memory store). This module only names what each
 * script gets; the scripts decide.
 */

import { ACQUIRE } from "../scripts/acquire.js";
import type { NamespaceContext } from "../scripts/define.js";
import { HISTORY } from "../scripts/history.js";
import { INSPECT } from "../scripts/inspect.js";
import { LEAVE } from "../scripts/leave.js";
import { LIST } from "../scripts/list.js";
import { REGISTER } from "../scripts/register.js";
import { RELEASE } from "../scripts/release.js";
import { RENEW } from "../scripts/renew.js";
import {
  DEFAULT_LIMITS,
  keptHistory,
  type LockRef,
  type LockStore,
  locksIn,
  type StoreLimits,
} from "../types.js";
import { sessionRecords, smallRecords, tokenRecords } from "./accounts.js";
import { redisKeys } from "./keys.js";
import { scriptRunner } from "./run.js";
import { type SafetyOptions, safetyCheck } from "./safety.js";
import { peekRecord, readStatus } from "./status.js";
import type { EventSource, RedisTransport } from "./transport.js";

export interface RedisStoreOptions extends SafetyOptions {
  limits?: StoreLimits;
}

const actorArgs = (actor: { id: string; name: string | null } | null) => ({
  actorId: actor?.id ?? "",
  actorName: actor?.name ?? "",
});

/** The names of what a script gets: its namespace's sets and settings, and a key's own records. */
function scriptInputs(prefix: string, limits: StoreLimits) {
  const keys = redisKeys(prefix);
  const namespaceOf = (namespace: string): NamespaceContext => ({
    keys: { index: keys.index(namespace), names: keys.names(namespace), ended: keys.ended(namespace) },
    args: {
      base: keys.base(namespace),
      maxRecords: String(locksIn(limits, namespace)),
      retention: String(limits.lockRetentionMs),
      historyMax: String(limits.historyPerKey),
      historyRetention: String(limits.historyRetentionMs),
    },
  });
  const lockKeys = (ref: LockRef) => ({
    lock: keys.lock(ref),
    queue: keys.queue(ref),
    queueUntil: keys.queueUntil(ref),
    holders: keys.holders(ref),
    history: keys.history(ref),
  });
  return { keys, namespaceOf, lockKeys };
}

type Run = ReturnType<typeof scriptRunner>["run"];
type Inputs = ReturnType<typeof scriptInputs>;

/** The writes: acquire (one key or any of a pool), renew, release, leave a queue, register. */
function writeOperations(run: Run, { keys, namespaceOf, lockKeys }: Inputs, limits: StoreLimits) {
  const acquireAny: LockStore["acquireAny"] = (refs, p) => {
    // A pool's keys are of one namespace (the routes see to it), so of one hash slot.
    const { namespace } = refs[0] as LockRef;
    return run(ACQUIRE, {
      namespace: namespaceOf(namespace),
      keys: { fence: keys.fence(namespace), queueSeq: keys.queueSeq(namespace) },
      args: {
        token: p.tokenHash,
        holder: p.holderId ?? "",
        ttlMs: p.ttlMs == null ? "" : String(p.ttlMs),
        reason: p.reason ?? "",
        registeredOnly: p.registeredOnly ? "1" : "",
        queueWindowMs: p.queueWindowMs == null ? "" : String(p.queueWindowMs),
        maxWaiters: String(limits.waitersPerKey),
        mode: p.mode === "shared" ? "s" : "x",
        limit: String(p.limit),
        priority: String(p.priority ?? 0),
        group: p.group ?? "",
        ...actorArgs(p.actor),
      },
      each: refs.map((ref) => ({ ...lockKeys(ref), channel: keys.channel(ref), name: ref.key })),
    });
  };
  const operations: Pick<LockStore, "acquireAny" | "acquire" | "renew" | "release" | "leave" | "register"> = {
    acquireAny,
    async acquire(ref, p) {
      const { index: _index, ...outcome } = await acquireAny([ref], p);
      return outcome;
    },
    renew: (ref, p) =>
      run(RENEW, {
        namespace: namespaceOf(ref.namespace),
        keys: { lock: keys.lock(ref), holders: keys.holders(ref) },
        args: { token: p.tokenHash, ttlMs: String(p.ttlMs), channel: keys.channel(ref) },
      }),
    release: (ref, p) =>
      run(RELEASE, {
        namespace: namespaceOf(ref.namespace),
        keys: lockKeys(ref),
        args: {
          token: p.tokenHash ?? "",
          registeredOnly: p.registeredOnly ? "1" : "",
          channel: keys.channel(ref),
          ...actorArgs(p.actor),
        },
      }),
    leave: (ref, tokenHash, who) =>
      run(LEAVE, {
        namespace: namespaceOf(ref.namespace),
        keys: { queue: keys.queue(ref), queueUntil: keys.queueUntil(ref), history: keys.history(ref) },
        args: {
          token: tokenHash,
          channel: keys.channel(ref),
          holder: who?.holderId ?? "",
          ...actorArgs(who?.actor ?? null),
        },
      }),
    register: (ref, p) =>
      run(REGISTER, {
        namespace: namespaceOf(ref.namespace),
        keys: { lock: keys.lock(ref), fence: keys.fence(ref.namespace), history: keys.history(ref) },
        args: {
          credential: p.credentialHash,
          lock: p.lock ? "1" : "",
          ttlMs: p.lock?.ttlMs == null ? "" : String(p.lock.ttlMs),
          holder: p.lock?.holderId ?? "",
          name: ref.key,
          ...actorArgs(p.actor),
        },
      }),
  };
  return operations;
}

/** The reads that need a script: a watched status, a history (which settles lapsed leases), a listing. */
function readOperations(run: Run, { keys, namespaceOf }: Inputs, limits: StoreLimits) {
  return {
    watch: (ref: LockRef) =>
      run(INSPECT, {
        namespace: namespaceOf(ref.namespace),
        keys: { lock: keys.lock(ref), queue: keys.queue(ref), holders: keys.holders(ref) },
        args: {},
      }),
    async history(ref) {
      const { now, entries } = await run(HISTORY, {
        namespace: namespaceOf(ref.namespace),
        keys: { history: keys.history(ref), lock: keys.lock(ref), holders: keys.holders(ref) },
        args: {},
      });
      return { now, entries: keptHistory(entries, now, limits) };
    },
    list: (namespace, opts) =>
      run(LIST, {
        namespace: namespaceOf(namespace),
        keys: {},
        args: { listPrefix: opts.prefix, after: opts.after ?? "", limit: String(opts.limit) },
      }),
  } satisfies Pick<LockStore, "history" | "list"> & { watch: unknown };
}

export function createRedisStore(
  transport: RedisTransport,
  prefix: string,
  events: EventSource,
  opts: RedisStoreOptions = {},
): LockStore {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const inputs = scriptInputs(prefix, limits);
  const { keys } = inputs;
  const { safety, ensureSafe } = safetyCheck(transport, opts);
  const { run, guard } = scriptRunner(transport, ensureSafe);
  const source = events({ of: keys.channel, pattern: keys.channels });
  const { watch, ...reads } = readOperations(run, inputs, limits);
  return {
    kind: transport.kind,
    events: source,
    tokens: tokenRecords(transport, keys, guard),
    sessions: sessionRecords(transport, keys, guard),
    records: smallRecords(transport, keys, guard),
    claimOnce: (id, ttlMs) => guard(() => transport.setIfAbsent(keys.claim(id), "1", ttlMs)),
    unclaim: (id) => guard(() => transport.del(keys.claim(id))).then(() => {}),
    claimed: async (id) => (await guard(() => transport.get(keys.claim(id)))) != null,
    ...writeOperations(run, inputs, limits),
    ...reads,
    async inspect(ref, opts) {
      // A status needs no script: a caller that waits for the key to be free does (it marks the
      // key watched, so that its release is published).
      if (opts?.watch) return watch(ref);
      return guard(async () => {
        const checking = ensureSafe();
        if (checking) await checking;
        return readStatus(transport, keys, ref, opts?.waiting !== false);
      });
    },
    peek: (ref) => guard(() => peekRecord(transport, keys, ref)),
    ping: () => guard(() => transport.ping()).then(() => {}),
    safety: () => guard(safety),
    close: async () => {
      await source.close();
      await transport.close();
    },
  };
}
