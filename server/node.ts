/** Node entry point: `npm start`. */
import { serve } from "@hono/node-server";
import { createApp } from "./app.js";
import { openBackend } from "./backend.js";
import { loadConfig } from "./config.js";
import { announce, withTryOutAdminToken } from "./startup.js";

const { config, generated } = withTryOutAdminToken(loadConfig(process.env));
const backend = openBackend(config);
// Give the store its first connection before taking requests; serve anyway (as 503s) if it is down.
await backend.store.ping().catch((err) => console.error(`store not reachable yet: ${err.message}`));
const server = serve({ fetch: createApp({ ...backend, config }).fetch, port: config.port }, (info) =>
  announce(config, info.port, generated),
);
const stop = () => server.close(() => backend.store.close().finally(() => process.exit(0)));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
