// Screen sharing between the patron's panel and the librarian's desk (docs/protocol.md,
// "Screen sharing"). Both load this module only when a share is offered or asked for.
// The sharer picks a screen in their own browser's prompt first, then asks; the viewer
// accepts or declines; only then does the sharer's browser send its offer. The video goes
// from browser to browser (WebRTC); reflib relays the signalling and keeps none of it.
// Either side can stop at any time; a connection that cannot be made (a strict network with no
// TURN relay) is said in words, not left as a black box.

import { randomId } from "./protocol.js";
import { format } from "./text.js";

const CONNECT_MS = 30000;

export class ScreenShare {
  // send(frame): a frame on this side's socket; box: the element this module fills;
  // trigger: the "Share my screen" button, hidden while a share is asked for or running;
  // t: the translated strings; peer(): the other person's name; buttons: the buttons' classes.
  constructor({ send, box, trigger, t, peer, buttons }) {
    this.send = send;
    this.box = box;
    this.trigger = trigger;
    this.t = t;
    this.peer = peer;
    this.buttons = buttons;
    this.reset();
  }

  reset() {
    clearTimeout(this.timer);
    if (this.pc) this.pc.close();
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.id = this.role = this.pc = this.stream = this.timer = null;
    this.ice = {};
    this.early = [];
  }

  get busy() {
    return this.id !== null;
  }

  // The local side offers its screen: its own browser asks which screen first.
  async start() {
    if (this.busy) return;
    if (!navigator.mediaDevices?.getDisplayMedia) return this.show(this.t.shareUnsupported, []);
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch {
      return this.show(this.t.shareCancelled, []);
    }
    if (this.busy) return stream.getTracks().forEach((track) => track.stop());
    this.id = randomId(12);
    this.role = "sharer";
    this.stream = stream;
    // The browser's own "Stop sharing" control ends the share too.
    stream.getVideoTracks()[0].addEventListener("ended", () => this.stop());
    this.signal("request", {});
    this.show(format(this.t.shareWaiting, { name: this.peer() }), [[this.t.shareCancel, "stop"]]);
  }

  stop() {
    if (!this.busy) return;
    this.signal("stop", {});
    this.reset();
    this.show(this.t.shareEnded, []);
  }

  // The chat ended or its socket was replaced: the share is over, nothing to tell.
  end() {
    this.reset();
    this.show("", []);
  }

  signal(step, fields) {
    this.send({ type: "share_" + step, share: this.id, ...fields });
  }

  handle(frame) {
    const step = frame.type.replace("share_", "");
    if (step === "request") return this.asked(frame);
    if (frame.share !== this.id) return;
    if (frame.type === "error") {
      this.reset();
      return this.show(frame.detail || this.t.shareFailed, [], true);
    }
    if (step === "reply") return this.replied(frame);
    if (step === "offer") return this.offered(frame.sdp);
    if (step === "answer") return this.pc?.setRemoteDescription({ type: "answer", sdp: frame.sdp });
    if (step === "candidate") return this.candidate(frame.candidate);
    if (step === "stop") {
      // The other side could not connect: say why here too.
      const failed = frame.reason === "failed";
      this.reset();
      this.show(failed ? this.t.shareFailed : this.t.shareEnded, [], failed);
    }
  }

  asked(frame) {
    if (this.busy) {
      this.send({ type: "share_reply", share: frame.share, accept: false });
      return;
    }
    this.id = frame.share;
    this.role = "viewer";
    this.show(format(this.t.shareAsk, { name: this.peer() }), [
      [this.t.shareView, "accept"],
      [this.t.shareDecline, "decline"],
    ]);
  }

  replied(frame) {
    if (!frame.accept) {
      this.reset();
      return this.show(format(this.t.shareDeclined, { name: this.peer() }), []);
    }
    this.ice = { iceServers: frame.ice_servers || [] };
    if (frame.ice_transport_policy === "relay") this.ice.iceTransportPolicy = "relay";
    if (this.role === "viewer") {
      return this.show(this.t.shareConnecting, [[this.t.shareStopViewing, "stop"]]);
    }
    this.connect();
    for (const track of this.stream.getTracks()) this.pc.addTrack(track, this.stream);
    this.pc
      .createOffer()
      .then((offer) => this.pc.setLocalDescription(offer))
      .then(() => this.signal("offer", { sdp: this.pc.localDescription.sdp }))
      .catch(() => this.failed());
    this.show(this.t.shareConnecting, [[this.t.shareStop, "stop"]]);
  }

  async offered(sdp) {
    if (this.role !== "viewer" || this.pc) return;
    this.connect();
    this.pc.addEventListener("track", (event) => this.play(event.streams[0]));
    try {
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      for (const candidate of this.early) await this.pc.addIceCandidate(candidate);
      this.early = [];
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.signal("answer", { sdp: this.pc.localDescription.sdp });
    } catch {
      this.failed();
    }
  }

  candidate(candidate) {
    if (!this.pc || !this.pc.remoteDescription) this.early.push(candidate);
    else this.pc.addIceCandidate(candidate).catch(() => {});
  }

  connect() {
    const pc = new RTCPeerConnection(this.ice);
    this.pc = pc;
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate && event.candidate.candidate) {
        this.signal("candidate", { candidate: event.candidate.toJSON() });
      }
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === "connected") this.connected();
      else if (pc.connectionState === "failed") this.failed();
    });
    this.timer = setTimeout(() => this.failed(), CONNECT_MS);
  }

  connected() {
    clearTimeout(this.timer);
    if (this.role === "sharer") {
      this.show(format(this.t.shareSharing, { name: this.peer() }), [[this.t.shareStop, "stop"]]);
    }
  }

  play(stream) {
    const video = document.createElement("video");
    video.className = "share-video";
    video.autoplay = video.muted = video.playsInline = true;
    video.srcObject = stream;
    video.setAttribute("aria-label", format(this.t.shareScreenOf, { name: this.peer() }));
    this.show(format(this.t.shareViewing, { name: this.peer() }), [
      [this.t.shareStopViewing, "stop"],
    ]);
    this.box.prepend(video);
  }

  // No route between the two browsers (no TURN relay for a strict network): say so, and end.
  failed() {
    if (!this.busy) return;
    this.signal("stop", { reason: "failed" });
    this.reset();
    this.show(this.t.shareFailed, [], true);
  }

  show(text, actions, alert = false) {
    const message = document.createElement("p");
    message.className = "share-note";
    message.setAttribute("role", alert ? "alert" : "status");
    message.textContent = text;
    const row = document.createElement("div");
    row.className = "share-actions";
    for (const [label, action] of actions) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = this.buttons;
      button.textContent = label;
      button.dataset.share = action;
      button.addEventListener("click", () => this.act(action));
      row.append(button);
    }
    this.box.replaceChildren(message, row);
    this.box.hidden = !text;
    this.trigger.hidden = this.busy;
  }

  act(action) {
    if (action === "stop") return this.stop();
    const accept = action === "accept";
    this.signal("reply", { accept });
    if (!accept) {
      this.reset();
      this.show("", []);
    }
  }
}
