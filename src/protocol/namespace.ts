/** Namespaces as the protocol names them: the rule of a name, and the header an admin names one with. */

/** A namespace's name: lower case, as every token, rule and key prefix spells it. */
export const NAMESPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const NAMESPACE_RULE = "1–63 lowercase letters, digits, '_' or '-', starting with a letter or digit";

/** The request header an admin names the namespace it acts in with (absent: the token's own). */
export const NAMESPACE_HEADER = "LSS-Namespace";
