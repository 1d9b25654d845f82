/** Reading a script's named reply (define.ts) as the store's outcomes (types.ts). */
import type { Lease, QuotaOutcome } from "../types.js";
import type { Reply } from "./define.js";

/** A number field (0 when absent). */
export const num = (v: Reply[string]): number => (v === undefined || v === "" ? 0 : Number(v));

/** A text field: null when absent or empty. */
export const text = (v: Reply[string]): string | null => (v === undefined || v === "" ? null : String(v));

/** The reply's lease (fence, since, exp, holder, reason, mode). exp 0: held until released. */
export function leaseOf(r: Reply): Lease {
  const exp = num(r.exp);
  return {
    mode: r.mode === "s" ? "shared" : "exclusive",
    fencingToken: num(r.fence),
    acquiredAt: num(r.since),
    expiresAt: exp === 0 ? null : exp,
    holderId: text(r.holder),
    reason: text(r.reason),
  };
}

export const quotaOf = (r: Reply): QuotaOutcome => ({
  outcome: "quota",
  limit: r.quota === "waiters" ? "waiters" : "locks",
  max: num(r.max),
});

/** What every outcome carries: the store's clock reading. */
export const at = (r: Reply) => ({ now: num(r.now) });
