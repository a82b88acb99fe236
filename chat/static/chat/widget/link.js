// The patron's WebSocket, resumable (PROTOCOL.md): every connection says hello with the last
// seq it saw, so the server replays exactly what was missed; stored events at or below that seq
// are dropped (never shown twice); messages without an ack are resent under the same
// client_msg_id after every reconnect (the server acks a resend again and stores nothing new).

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 25000;
const PONG_TIMEOUT_MS = 10000;
// Close codes after which no retry can help: the token or the origin was refused.
const FINAL = new Set([4401, 4403]);
// Frames with a place in the conversation's log; live frames (read marks) may carry a seq too.
const STORED = new Set(["message", "file", "status", "checkin", "checkin_answer"]);

export class Link {
  constructor(url, token, onFrame, onState) {
    this.url = url;
    this.token = token;
    this.onFrame = onFrame;
    this.onState = onState;
    this.seq = 0;
    this.pending = new Map();
    this.attempt = 0;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.retry = null;
    this.timers = [];
    this.now = () => this.reconnectNow();
    // The browser knows the network is gone long before a heartbeat goes unanswered.
    this.gone = () => this.ws && this.drop(this.ws);
    addEventListener("online", this.now);
    addEventListener("offline", this.gone);
  }

  start() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () =>
      ws.send(JSON.stringify({ type: "hello", token: this.token, last_seq: this.seq }));
    ws.onmessage = (event) => this.received(ws, event);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.now);
    removeEventListener("offline", this.gone);
    clearTimeout(this.retry);
    this.quiet();
    if (this.ws) this.ws.close();
    this.ws = null;
  }

  // Frames that may be lost with a dropped connection (typing, read marks, answers).
  send(frame) {
    if (!this.ready) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // A message is kept until the server acknowledges it, whatever happens to the connection.
  say(clientMsgId, body) {
    this.pending.set(clientMsgId, body);
    this.send({ type: "send", client_msg_id: clientMsgId, body });
  }

  received(ws, event) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    const type = frame.type;
    if (type === "pong") {
      clearTimeout(this.timers[1]);
      return;
    }
    if (type === "welcome") {
      this.attempt = 0;
      this.ready = true;
      this.heartbeat(ws);
    } else if (type === "ack") {
      this.pending.delete(frame.client_msg_id);
    } else if (STORED.has(type)) {
      if (frame.seq <= this.seq) return;
      this.seq = frame.seq;
    }
    this.onFrame(frame);
    if (type === "welcome") {
      // After the welcome the server replays what was missed; resends queue up behind it.
      for (const [clientMsgId, body] of this.pending) {
        this.send({ type: "send", client_msg_id: clientMsgId, body });
      }
    }
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this.quiet();
    if (this.stopped) return;
    if (FINAL.has(code)) {
      this.onState("refused");
      return;
    }
    this.onState("down");
    // Exponential backoff with jitter, so that patrons who lost the same server spread out.
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.start();
    }, ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  reconnectNow() {
    if (this.retry === null) return;
    clearTimeout(this.retry);
    this.retry = null;
    this.start();
  }

  heartbeat(ws) {
    this.quiet();
    this.timers[0] = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      // A connection that stops answering is dead even if the browser has not noticed yet.
      this.timers[1] = setTimeout(() => this.drop(ws), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  // Closed now, without waiting for a closing handshake that may never come.
  drop(ws) {
    ws.close();
    this.closed(ws, 1006);
  }

  quiet() {
    clearInterval(this.timers[0]);
    clearTimeout(this.timers[1]);
  }
}
