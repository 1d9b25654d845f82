/** What a caller's principal means for a lock: who acts (history) and under which holder id. */
import type { Actor } from "../stores/types.js";
import type { Principal } from "./types.js";

/** Who acts, for a key's history: the token's id and name; nobody for an open route's anonymous caller. */
export const actorOf = (principal: Principal): Actor | null =>
  principal.id.startsWith("addr:") ? null : { id: principal.id, name: principal.name };

/** The holder id a caller acquires under: a verified one (an OIDC token's workflow) replaces the one it names. */
export const holderOf = (principal: Principal, named: string | undefined) => principal.holder ?? named;
