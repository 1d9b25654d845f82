/** The Vercel entry serves the same app, from the environment, at / and at /api. */
import { describe, expect, it } from "vitest";

describe("Vercel entry", () => {
  it("serves both APIs with or without the /api prefix, and trusts X-Forwarded-For", async () => {
    process.env.LSS_ADMIN_TOKEN = "vercel-admin-token-0123456789";
    const { default: handler, vercelApp } = await import("../server/vercel.js");
    expect(typeof handler).toBe("function");
    for (const base of ["", "/api"]) {
      const health = await vercelApp.request(`${base}/health`);
      expect(health.status).toBe(200);
      const created = await vercelApp.request(`${base}/locks?l=true`, { method: "POST" });
      const { id } = (await created.json()) as { id: string };
      expect((await vercelApp.request(`${base}/locks/${id}`)).status).toBe(423);
      const leased = await vercelApp.request(`${base}/infra/locks/v/acquire`, {
        method: "POST",
        headers: {
          Authorization: "Bearer vercel-admin-token-0123456789",
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ ttl_ms: 1000 }),
      });
      expect([200, 409]).toContain(leased.status);
    }
    const handled = await handler(new Request("http://x.test/health"));
    expect(handled.status).toBe(200);
  });
});
