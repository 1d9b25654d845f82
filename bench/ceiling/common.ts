/**
 * The ceilings of `npm run bench`: the same lock engine (server/locks over the Redis store, one Lua
 * script per operation) served without the app around it, to measure what the app's layers cost
 * per request against what the engine itself does. Run one as the server under test:
 *
 *   BENCH_SERVER_ENTRY=bench/ceiling/node-http.ts npm run bench   bare node:http + the engine
 *   BENCH_SERVER_ENTRY=bench/ceiling/hono.ts npm run bench        bare Hono on @hono/node-server + the engine
 *
 * Not lock servers: no auth, no validation, no metrics, one namespace. Env: PORT, REDIS_URL.
 */
import { DEFAULT_CONFIG } from "../../server/config.js";
import { createLeases } from "../../server/locks/leases.js";
import { createRedisStore } from "../../server/stores/redis/store.js";
import { connectTcpRedis, tcpEvents, tcpTransport } from "../../server/stores/tcp.js";
import type { LockRef } from "../../server/stores/types.js";

const TIMEOUT_MS = 2000;
const client = connectTcpRedis({ mode: "single", url: String(process.env.REDIS_URL) }, TIMEOUT_MS);
export const store = createRedisStore(tcpTransport(client, TIMEOUT_MS), "lss", tcpEvents(client));
export const leases = createLeases(store, DEFAULT_CONFIG.githubServerUrl);
export const actor = { id: "bench", name: "bench" };
export const port = Number(process.env.PORT);
export const refOf = (key: string): LockRef => ({ namespace: "default", key });
