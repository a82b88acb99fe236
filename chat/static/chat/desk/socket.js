// The desk's WebSocket: reconnects with exponential backoff and detects dead connections.
// What to do after a reconnect (subscribe with last_seq, resend unacknowledged messages) is
// the desk's business: it hears a "welcome" frame on every connection.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const PING_EVERY_MS = 25000;
const PONG_TIMEOUT_MS = 10000;
// PROTOCOL.md close codes after which retrying cannot help.
const FINAL_CLOSE_CODES = new Set([4401, 4403]);

export class DeskSocket {
  constructor(url, { onFrame, onState }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    window.addEventListener("online", () => this.retryNow());
    // The browser knows the network is gone long before a heartbeat goes unanswered.
    window.addEventListener("offline", () => this.ws && this.drop(this.ws));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.retryNow();
    });
  }

  start() {
    this.onState("connecting");
    this.open();
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  retryNow() {
    if (this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  open() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.received(ws, event));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  received(ws, event) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
      return;
    }
    if (frame.type === "welcome") {
      this.attempt = 0;
      this.onState("connected");
      this.startHeartbeat(ws);
    }
    this.onFrame(frame);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.stopHeartbeat();
    this.ws = null;
    if (FINAL_CLOSE_CODES.has(event.code)) {
      this.onState("signedOut");
      return;
    }
    this.onState("reconnecting");
    // Full jitter: many desks that lost the same server do not all come back at once.
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  startHeartbeat(ws) {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      // A socket that no longer answers is dead even if the browser has not noticed.
      this.pongTimer = setTimeout(() => this.drop(ws), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  // Closed now: do not wait for a closing handshake the server will never answer.
  drop(ws) {
    ws.close();
    this.closed(ws, { code: 1006 });
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }
}
