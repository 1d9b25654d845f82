/**
 * POST /ui/namespace (namespace, with the form's CSRF token): the namespace switch of a token with
 * the admin scope. The choice is kept in a cookie beside the session's (session.ts); every page
 * then acts in that namespace, as the API does for LSS-Namespace (auth/namespace.ts).
 */
import type { Hono } from "hono";
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from "../../../src/protocol/namespace.js";
import { field, NOT_A_FORM, readForm, type UiEnv } from "../context.js";
import type { Guard } from "../guard.js";
import { ErrorPage } from "../pages.js";
import { chooseNamespace, crossSite, csrfMatches } from "../session.js";

export function registerNamespaceSwitch(ui: Hono<UiEnv>, guard: Guard) {
  ui.post("/ui/namespace", guard.signedIn("action"), async (c) => {
    const refuse = (message: string, status: 400 | 403) =>
      c.html(<ErrorPage title="Not switched" message={message} session={c.var.session} />, status);
    if (!c.var.principal.scopes.has("admin"))
      return refuse("Only a token with the admin scope may look at another namespace.", 403);
    const body = await readForm(c);
    if (!body) return refuse(NOT_A_FORM, 400);
    if (crossSite(c) || !csrfMatches(c.var.sessionId, body.csrf))
      return refuse("This form lacks this session's form token (CSRF): reload the page and try again.", 403);
    const namespace = field(body, "namespace").trim();
    if (!NAMESPACE_PATTERN.test(namespace))
      return refuse(`A namespace is ${NAMESPACE_RULE}: “${namespace}” is not one.`, 400);
    chooseNamespace(c, namespace, guard.secure(c));
    return c.redirect("/ui", 303);
  });
}
