import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites start their own redis-server processes; two cores do not want more in parallel.
    maxWorkers: 2,
  },
});
