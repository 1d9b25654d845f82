/**
 * Whether a Redis keeps every lock record: one whose maxmemory-policy evicts keys could drop a held
 * lease and grant it again, so lock operations are refused (503) on it until the policy is fixed or
 * the risk accepted. Read at most once a minute (a policy can change while we run).
 */
import { type StoreSafety, StoreUnavailableError } from "../types.js";
import type { RedisTransport } from "./transport.js";

/** Policies under which Redis never drops a key by itself when memory runs out. */
const KEEPS_EVERY_KEY = new Set(["noeviction"]);

/** How long a reading of the eviction policy is trusted before lock operations read it again. */
const POLICY_CHECK_MS = 60_000;

export interface SafetyOptions {
  /** LSS_ALLOW_EVICTION: the operator accepts that an evicting Redis may grant a held lock again. */
  allowEviction?: boolean;
  /** LSS_EVICTION_POLICY: the policy the operator checked, for a Redis that does not say it. */
  declaredEvictionPolicy?: string | null;
}

/** What is wrong with a policy (null: nothing), judged as read, declared, or documented. */
function problemOf(judged: string | null): string | null {
  if (judged == null) {
    return (
      "Redis does not say its maxmemory-policy (CONFIG and INFO refused), and one that evicts keys could " +
      "let two jobs hold one lock: check your provider's setting, then set LSS_EVICTION_POLICY to it " +
      "(noeviction), or LSS_ALLOW_EVICTION=true to accept the risk"
    );
  }
  if (KEEPS_EVERY_KEY.has(judged)) return null;
  return (
    `Redis may evict lock records (maxmemory-policy ${judged}), which could let two jobs hold one lock: ` +
    "set maxmemory-policy noeviction, or LSS_ALLOW_EVICTION=true to accept the risk"
  );
}

export function safetyCheck(transport: RedisTransport, opts: SafetyOptions) {
  let checked: { at: number; safety: StoreSafety } | null = null;
  const fresh = () => checked !== null && Date.now() - checked.at < POLICY_CHECK_MS;
  const safety = async (): Promise<StoreSafety> => {
    if (checked && fresh()) return checked.safety;
    const policy = (await transport.evictionPolicy()) ?? opts.declaredEvictionPolicy ?? null;
    const problem = problemOf(policy ?? transport.documentedEvictionPolicy ?? null);
    const result = { evictionPolicy: policy, safe: problem == null || !!opts.allowEviction, problem };
    checked = { at: Date.now(), safety: result };
    return result;
  };
  const refuseUnsafe = (s: StoreSafety) => {
    if (!s.safe) {
      throw new StoreUnavailableError(new Error("unsafe store"), {
        kind: "unsafe",
        message: s.problem ?? "",
      });
    }
  };
  return {
    safety,
    /**
     * Undefined while the last check (within POLICY_CHECK_MS) found the store safe: no promise on
     * the path of every lock operation. Otherwise the check, rejecting when the store is unsafe.
     */
    ensureSafe: (): Promise<void> | undefined =>
      checked?.safety.safe && fresh() ? undefined : safety().then(refuseUnsafe),
  };
}
