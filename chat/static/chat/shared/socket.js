// A WebSocket that comes back after every drop, as docs/protocol.md (section 8) asks of clients:
// - before attempt number `attempt` (0, 1, 2, ...) it waits random(0, min(30 s, 1 s × 2^attempt)),
//   full jitter, so that the clients of a server that went away do not all return at once; the
//   count starts again when a welcome arrives;
// - after 25 s without a frame it pings, and a connection that stays silent 10 s more is dropped
//   (an open WebSocket can outlive its network without the browser noticing);
// - the browser's offline event drops the connection at once; its online event, and the tab
//   coming back into view, retry at once;
// - after a close code that no retry can help (FINAL_CLOSE_CODES) it gives up.
// What a connection starts with (the patron's hello) and what follows a welcome (subscribing,
// resending the outbox) belong to the caller.

import { FINAL_CLOSE_CODES } from "./protocol.js";

const FIRST_CEILING_MS = 1000;
const MAX_DELAY_MS = 30000;
const QUIET_MS = 25000;
const PONG_TIMEOUT_MS = 10000;

export class Socket {
  // hello(): the first frame of every connection, if any; onFrame(frame): every frame but pong;
  // onState(state): "down" (retrying) or "refused" (given up).
  constructor(url, { hello, onFrame, onState }) {
    Object.assign(this, { url, hello, onFrame, onState });
    this.ws = this.retry = this.silence = null;
    this.ready = this.stopped = false;
    this.attempt = 0;
    const visible = () => document.visibilityState === "visible" && this.retryNow();
    this.listeners = [
      [window, "online", () => this.retryNow()],
      [window, "offline", () => this.ws && this.drop(this.ws)],
      [document, "visibilitychange", visible],
    ];
    for (const [target, type, listener] of this.listeners) target.addEventListener(type, listener);
  }

  start() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      const first = this.hello && this.hello();
      if (first) ws.send(JSON.stringify(first));
      this.listen(ws);
    };
    ws.onmessage = (event) => this.received(ws, event);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  stop() {
    this.stopped = true;
    for (const [target, type, listener] of this.listeners) {
      target.removeEventListener(type, listener);
    }
    clearTimeout(this.retry);
    if (this.ws) this.drop(this.ws);
  }

  // A frame on a connection the server has welcomed; false (not sent) when there is none.
  send(frame) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  received(ws, event) {
    if (ws !== this.ws) return;
    this.listen(ws);
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "pong") return;
    if (frame.type === "welcome") {
      this.attempt = 0;
      this.ready = true;
    }
    this.onFrame(frame);
  }

  // Every frame proves the connection alive, so the ping waits for a silence. Before a welcome
  // no ping may go (a patron's socket is closed for anything but hello): silence drops it.
  listen(ws) {
    clearTimeout(this.silence);
    this.silence = setTimeout(() => {
      this.send({ type: "ping" });
      this.silence = setTimeout(() => this.drop(ws), PONG_TIMEOUT_MS);
    }, QUIET_MS);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    clearTimeout(this.silence);
    this.ws = null;
    this.ready = false;
    if (this.stopped) return;
    if (FINAL_CLOSE_CODES.has(code)) {
      this.onState("refused");
      return;
    }
    this.onState("down");
    const delay = Math.random() * Math.min(MAX_DELAY_MS, FIRST_CEILING_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start();
    }, delay);
  }

  retryNow() {
    if (this.retry === null) return;
    clearTimeout(this.retry);
    this.retry = null;
    this.start();
  }

  // Closed now, without waiting for a closing handshake that may never come.
  drop(ws) {
    ws.close();
    this.closed(ws, 1006);
  }
}
