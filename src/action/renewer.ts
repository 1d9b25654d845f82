/**
 * The renewer: a detached process started by main that keeps the lease (the client's renewLoop)
 * for as long as the job runs. The post step stops it; if the runner dies, nothing renews and the
 * lease frees itself within one TTL. It reports to a status file so that post can say loudly when
 * the lease was lost. Here: what main hands it (its config file) and the status file.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { RenewStatus } from "../client/renew-loop.js";
import type { IdTokenSource } from "./id-token.js";

/** The renewer process's settings, in the file main writes for it. */
export interface RenewerConfig {
  url: string;
  apiToken: string | null;
  /** With OIDC: where to fetch the job's ID tokens (the runner's endpoint, valid for the whole job). */
  idToken?: IdTokenSource;
  key: string;
  leaseToken: string;
  ttlMs: number;
  /** Time left on the lease when the renewer starts. */
  expiresInMs: number;
  statusFile: string;
}

/** What the status file says: renewed (held), or lost and why. */
export type RenewerStatus = RenewStatus;

/** Written whole and renamed, so that post never reads half a status. */
export function writeStatusFile(file: string, status: RenewerStatus) {
  writeFileSync(`${file}.tmp`, JSON.stringify(status));
  renameSync(`${file}.tmp`, file);
}

export function readStatusFile(file: string): RenewerStatus | null {
  if (!file) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as RenewerStatus;
  } catch {
    return null;
  }
}
