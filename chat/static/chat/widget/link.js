// The patron's conversation over the shared socket (docs/protocol.md, section 8): every
// connection says hello with the last seq it saw, so the server replays exactly what was missed;
// stored events at or below that seq are dropped (never shown twice); messages without an ack are
// resent under the same client_msg_id after every welcome (the server acks a resend again and
// stores nothing new).

import { Socket } from "../shared/socket.js";

// Frames with a place in the conversation's log; live frames (read marks) may carry a seq too.
const STORED = new Set(["message", "file", "status", "checkin", "checkin_answer"]);

export class Link {
  constructor(url, token, onFrame, onState) {
    this.onFrame = onFrame;
    this.seq = 0;
    this.pending = new Map();
    this.socket = new Socket(url, {
      hello: () => ({ type: "hello", token, last_seq: this.seq }),
      onFrame: (frame) => this.received(frame),
      onState,
    });
  }

  start() {
    this.socket.start();
  }

  stop() {
    this.socket.stop();
  }

  // Frames that may be lost with a dropped connection (typing, read marks, answers).
  send(frame) {
    return this.socket.send(frame);
  }

  // A message is kept until the server acknowledges it, whatever happens to the connection.
  say(clientMsgId, body) {
    this.pending.set(clientMsgId, body);
    this.send({ type: "send", client_msg_id: clientMsgId, body });
  }

  received(frame) {
    const type = frame.type;
    if (type === "ack") {
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
}
