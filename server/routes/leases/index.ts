/**
 * The lease API, as in the lease API document: /infra/locks/{key}/acquire|renew|release|leave,
 * status, history, the listing and pools. One file per route (or pair), common.ts what they share.
 */
import type { Leases } from "../../locks/leases.js";
import type { Router } from "../router.js";
import { registerAcquire } from "./acquire.js";
import { type LeaseLimits, type LeaseRouteDeps, leaseSchemas, waitSlots } from "./common.js";
import { registerHistory } from "./history.js";
import { registerLeave } from "./leave.js";
import { registerList } from "./list.js";
import { registerRelease } from "./release.js";
import { registerRenew } from "./renew.js";
import { registerStatus } from "./status.js";

export function registerLeaseRoutes(app: Router, leases: Leases, limits: LeaseLimits) {
  const deps: LeaseRouteDeps = {
    leases,
    schemas: leaseSchemas(limits),
    waiting: waitSlots(limits.maxWaitsPerCaller),
  };
  // In the order the document's reference lists them.
  for (const register of [
    registerAcquire,
    registerLeave,
    registerRenew,
    registerRelease,
    registerList,
    registerHistory,
    registerStatus,
  ]) {
    register(app, deps);
  }
}
