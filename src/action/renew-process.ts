/** The renewer process: config from the environment, stopped by SIGTERM (from post or the runner). */
import { abortableSleep } from "../client/client.js";
import { RENEWER_CONFIG_ENV } from "./names.js";
import { type RenewerConfig, runRenewer, writeStatusFile } from "./renewer.js";
import { cancellation, clientFor } from "./runtime.js";

export async function renewUntilStopped(): Promise<void> {
  const config = JSON.parse(process.env[RENEWER_CONFIG_ENV] ?? "{}") as RenewerConfig;
  const outcome = await runRenewer({
    config,
    client: clientFor({ url: config.url, apiToken: config.apiToken }),
    report: (status) => writeStatusFile(config.statusFile, status),
    sleep: abortableSleep,
    signal: cancellation(),
  });
  process.exit(outcome === "lost" ? 1 : 0);
}
