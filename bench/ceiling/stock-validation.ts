/**
 * The lock server as `npm start` runs it, but validating requests with @hono/zod-openapi's own
 * middleware instead of the merged one (server/routes/router.ts): what the merged validation buys.
 *
 *   BENCH_SERVER_ENTRY=bench/ceiling/stock-validation.ts npm run bench
 *
 * Env: as server/node.ts (PORT, REDIS_URL, LSS_*).
 */
import { serve } from "@hono/node-server";
import { createApp } from "../../server/app.js";
import { openBackend } from "../../server/backend.js";
import { loadConfig } from "../../server/config.js";
import { withTryOutAdminToken } from "../../server/startup.js";

const { config } = withTryOutAdminToken(loadConfig(process.env, "node"));
const backend = openBackend(config);
await backend.store.ping();
const app = createApp({ ...backend, config, validation: "stock" });
serve({ fetch: app.fetch, port: config.port }, (info) => console.log(`listening on ${info.port}`));
