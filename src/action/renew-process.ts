/**
 * The renewer process: its config from the file main wrote (deleted as soon as it is read, so the
 * API token or OIDC request token in it sits nowhere for the rest of the job), then the client's
 * renew loop, stopped by SIGTERM (post or the runner). With OIDC it fetches fresh ID tokens from
 * the runner as they expire.
 */
import { readFileSync, rmdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { renewLoop } from "../client/renew-loop.js";
import { cancellation, connect } from "./connect.js";
import { type RenewerConfig, writeStatusFile } from "./renewer.js";

export async function renewUntilStopped(configFile = process.argv[2] ?? ""): Promise<void> {
  if (!configFile) {
    console.error("lss renewer: no config file given (main starts it with one)");
    process.exit(2);
  }
  let config: RenewerConfig;
  try {
    config = JSON.parse(readFileSync(configFile, "utf8")) as RenewerConfig;
  } finally {
    // The file, then the private folder main made for it if nothing else is in it: never more
    // (a recursive removal of a folder given on the command line could take anything with it).
    rmSync(configFile, { force: true });
    try {
      rmdirSync(dirname(configFile));
    } catch {
      // not empty, or gone: leave it
    }
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
