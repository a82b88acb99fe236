// What docs/protocol.md says that both clients, the patron's panel and the desk, act on.

// The statuses a conversation never leaves (section 9).
export const ENDED = new Set(["closed", "abandoned", "missed", "ticket"]);

// Close codes after which retrying cannot help: the token, the session or the origin was refused.
export const FINAL_CLOSE_CODES = new Set([4401, 4403]);

// A fresh id (a client_msg_id, a share id) as hex. crypto.getRandomValues, not randomUUID: the
// latter needs HTTPS, and a library intranet may serve reflib over plain HTTP.
export function randomId(bytes = 16) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (byte) =>
    byte.toString(16).padStart(2, "0"),
  ).join("");
}
