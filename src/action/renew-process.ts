/**
 * The renewer process: its config from the file main wrote (deleted as soon as it is read, so the
 * API token in it sits nowhere for the rest of the job), stopped by SIGTERM (post or the runner).
 */
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { abortableSleep } from "../client/client.js";
import { type RenewerConfig, runRenewer, writeStatusFile } from "./renewer.js";
import { cancellation, clientFor } from "./runtime.js";

export async function renewUntilStopped(configFile = process.argv[2] ?? ""): Promise<void> {
  let config: RenewerConfig;
  try {
    config = JSON.parse(readFileSync(configFile, "utf8")) as RenewerConfig;
  } finally {
    rmSync(dirname(configFile), { recursive: true, force: true });
  }
  const outcome = await runRenewer({
    config,
    client: clientFor({ url: config.url, apiToken: config.apiToken }),
    report: (status) => writeStatusFile(config.statusFile, status),
    sleep: abortableSleep,
    signal: cancellation(),
  });
  process.exit(outcome === "lost" ? 1 : 0);
}
