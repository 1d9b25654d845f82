/** The GitHub App from its configuration: its API client and the gates over a store. */
import type { Metrics } from "../metrics.js";
import type { LockStore } from "../stores/types.js";
import { createGitHubApi } from "./api.js";
import type { GitHubAppConfig } from "./config.js";
import { createGates, type Gates } from "./gates.js";

export function gatesOf(
  config: GitHubAppConfig,
  store: LockStore,
  githubUrl: string,
  metrics?: Pick<Metrics, "githubCall">,
): Gates {
  const api = createGitHubApi({
    appId: config.appId,
    privateKeyPem: config.privateKeyPem,
    apiUrl: config.apiUrl,
  });
  return createGates({ store, api, config, githubUrl, metrics });
}
