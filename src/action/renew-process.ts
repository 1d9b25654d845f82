/**
 * The renewer process: its config from the file main wrote (deleted as soon as it is read, so the
 * API token or OIDC request token in it sits nowhere for the rest of the job), then the client's
 * renew loop, stopped by SIGTERM (post or the runner). With OIDC it fetches fresh ID tokens from
 * the runner as they expire.
 */
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { renewLoop } from "../client/renew-loop.js";
import { cancellation, connect } from "./connect.js";
import { type RenewerConfig, writeStatusFile } from "./renewer.js";

export async function renewUntilStopped(configFile = process.argv[2] ?? ""): Promise<void> {
  let config: RenewerConfig;
  try {
    config = JSON.parse(readFileSync(configFile, "utf8")) as RenewerConfig;
  } finally {
    rmSync(dirname(configFile), { recursive: true, force: true });
  }
  const report = (status: Parameters<typeof writeStatusFile>[1]) =>
    writeStatusFile(config.statusFile, status);
  const outcome = await renewLoop({
    client: connect({
      url: config.url,
      auth: config.idToken
        ? { kind: "oidc", ...config.idToken }
        : config.apiToken
          ? { kind: "token", token: config.apiToken }
          : { kind: "none" },
    }),
    key: config.key,
    token: config.leaseToken,
    ttlMs: config.ttlMs,
    expiresInMs: config.expiresInMs,
    signal: cancellation(),
    onRenewed: report,
    onLost: report,
  });
  process.exit(outcome === "lost" ? 1 : 0);
}
