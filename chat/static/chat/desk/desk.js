// The librarian desk (/desk/): presence, who else is on, the live queue and my conversations,
// over the desk WebSocket of docs/protocol.md. Reconnects resume silently: on every welcome
// each open conversation is subscribed again from the last seq shown, and messages the server
// has not acknowledged are sent again under the same client_msg_id.

import { Conversation } from "./conversation.js";
import { Notifier } from "./notify.js";
import { QueueView } from "./queue.js";
import { ShiftCard } from "./shift.js";
import { Socket } from "../shared/socket.js";
import { format } from "../shared/text.js";
import { getJSON } from "./util.js";

const COLLEAGUES_REFRESH_MS = 1000;
const ALERT_SHOWN_MS = 10000;

class Desk {
  constructor() {
    this.config = JSON.parse(document.getElementById("desk-config").textContent);
    this.strings = JSON.parse(document.getElementById("desk-strings").textContent);
    this.me = this.config.me;
    this.urls = this.config.urls;
    this.csrfToken = this.config.csrfToken;
    this.conversations = new Map();
    this.dismissed = new Set();
    this.owners = new Map(); // client_msg_id -> conversation (acks carry no conversation id)
    this.accepting = new Set();
    this.cannedItems = [];
    this.active = null;
    this.sideBySide = false;
    this.presence = document.querySelector('#presence input:checked')?.value ?? "offline";
    this.wantedPresence = null;

    this.tabs = document.getElementById("tabs");
    this.panels = document.getElementById("panels");
    this.panelsEmpty = document.getElementById("panels-empty");
    this.conversationTemplate = document.getElementById("conversation-template");
    this.connection = document.getElementById("desk-connection");
    this.alertBox = document.getElementById("desk-alert");
    this.notifier = new Notifier(document.getElementById("notifications"), this.strings);
    this.queue = new QueueView({
      list: document.getElementById("queue"),
      empty: document.getElementById("queue-empty"),
      count: document.getElementById("queue-count"),
      template: document.getElementById("queue-item-template"),
      strings: this.strings,
      onAccept: (id) => this.accept(id),
    });

    this.shift = new ShiftCard({
      section: document.getElementById("shift"),
      url: this.urls.shift,
      csrfToken: this.csrfToken,
      onPresence: (state) => this.showPresence(state),
      onEnded: (text) => this.notifier.alert({ title: text, body: "", tag: "reflib-shift" }),
    });

    for (const radio of document.querySelectorAll('#presence input[name="presence"]')) {
      radio.addEventListener("change", () => this.setPresence(radio.value));
    }
    const layout = document.getElementById("layout");
    layout.addEventListener("click", () => this.toggleLayout(layout));
    this.tabs.addEventListener("keydown", (event) => this.tabKeys(event));
    document.addEventListener("visibilitychange", () => this.viewChanged());
    window.addEventListener("focus", () => this.viewChanged());

    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    this.socket = new Socket(`${scheme}//${window.location.host}${this.config.wsPath}`, {
      onFrame: (frame) => this.received(frame),
      onState: (state) => this.connectionState(state),
    });
    this.loadCanned();
    this.connectionState("connecting");
    this.socket.start();
  }

  // --- the socket ----------

  send(frame) {
    return this.socket.send(frame);
  }

  connectionState(state) {
    const looks = {
      connecting: ["text-bg-secondary", this.strings.connecting],
      connected: ["text-bg-success", this.strings.connected],
      down: ["text-bg-warning", this.strings.reconnecting],
      refused: ["text-bg-danger", this.strings.signedOut],
    }[state];
    this.connection.className = `badge ${looks[0]}`;
    this.connection.textContent = looks[1];
    if (state === "refused") this.alert(this.strings.signedOut);
  }

  received(frame) {
    switch (frame.type) {
      case "welcome":
        return this.welcome(frame);
      case "queue":
        return this.queueChanged(frame.items);
      case "accepted":
        return this.accepted(frame.conversation);
      case "assigned":
        return this.assigned(frame.conversation);
      case "ack":
        return this.owners.get(frame.client_msg_id)?.ack(frame);
      case "error":
        return this.refused(frame);
      case "typing":
      case "read":
        // Live frames name their conversation when the server says which one it is.
        return frame.conversation && this.conversations.get(frame.conversation)?.live(frame);
      default:
        if (frame.type.startsWith("share_")) {
          return this.conversations.get(frame.conversation)?.sharing(frame);
        }
        if (frame.conversation && typeof frame.seq === "number") this.event(frame);
    }
    return undefined;
  }

  welcome(frame) {
    this.connectionState("connected");
    this.showPresence(frame.presence);
    if (this.wantedPresence && this.wantedPresence !== frame.presence) {
      this.send({ type: "presence", state: this.wantedPresence });
      this.showPresence(this.wantedPresence);
    }
    this.wantedPresence = null;
    for (const item of frame.conversations) {
      if (!this.conversations.has(item.id) && !this.dismissed.has(item.id)) {
        this.open(item.id, { quietUntil: item.last_seq });
      }
    }
    for (const conversation of this.conversations.values()) {
      const { id, lastSeq } = conversation;
      this.send({ type: "subscribe", conversation: id, last_seq: lastSeq });
      conversation.resendPending();
    }
    this.queueChanged(frame.queue);
  }

  event(frame) {
    if (this.dismissed.has(frame.conversation)) return;
    let conversation = this.conversations.get(frame.conversation);
    if (!conversation) conversation = this.open(frame.conversation, { quietUntil: null });
    conversation.handle(frame);
  }

  refused(frame) {
    if (frame.share && this.conversations.has(frame.conversation)) {
      return this.conversations.get(frame.conversation).sharing(frame);
    }
    if (frame.client_msg_id) {
      const owner = this.owners.get(frame.client_msg_id);
      // Busy or over the rate: the message waits, then goes again under the same id.
      if (frame.code === "rate_limited" && owner?.retryLater(frame)) return;
      this.owners.delete(frame.client_msg_id);
      if (owner?.failed(frame.client_msg_id, frame.detail)) return;
    }
    if (frame.conversation && this.accepting.has(frame.conversation)) {
      this.accepting.delete(frame.conversation);
      this.queue.release(frame.conversation);
      this.alert(frame.detail);
      return;
    }
    this.alert(`${this.strings.error} ${frame.detail}`);
  }

  alert(text) {
    this.alertBox.textContent = text;
    this.alertBox.hidden = false;
    clearTimeout(this.alertTimer);
    this.alertTimer = setTimeout(() => (this.alertBox.hidden = true), ALERT_SHOWN_MS);
  }

  // --- presence and colleagues ----------

  setPresence(state) {
    this.presence = state;
    if (!this.send({ type: "presence", state })) this.wantedPresence = state;
  }

  showPresence(state) {
    this.presence = state;
    const radio = document.getElementById(`presence-${state}`);
    if (radio) radio.checked = true;
  }

  // Queue frames come on every change of the queue or of a colleague's presence.
  queueChanged(items) {
    const fresh = this.queue.update(items);
    if (fresh.length && this.presence === "available") {
      this.notifier.alert({
        title: this.strings.newPatron,
        body: fresh[0].question,
        tag: "reflib-queue",
      });
    }
    clearTimeout(this.colleaguesTimer);
    this.colleaguesTimer = setTimeout(() => this.loadColleagues(), COLLEAGUES_REFRESH_MS);
  }

  async loadColleagues() {
    let data;
    try {
      data = await getJSON(this.urls.colleagues);
    } catch {
      return;
    }
    const list = document.getElementById("colleagues");
    list.replaceChildren();
    for (const colleague of data.available) {
      const item = document.createElement("li");
      item.textContent = colleague.name;
      list.append(item);
    }
    if (!data.available.length) {
      const item = document.createElement("li");
      item.className = "text-body-secondary";
      item.textContent = this.strings.colleaguesNone;
      list.append(item);
    }
  }

  async loadCanned() {
    try {
      this.cannedItems = (await getJSON(this.urls.canned)).items;
    } catch {
      return;
    }
    for (const conversation of this.conversations.values()) conversation.renderCanned();
  }

  canned() {
    return this.cannedItems;
  }

  // --- conversations ----------

  accept(id) {
    this.accepting.add(id);
    if (this.send({ type: "accept", conversation: id })) return true;
    this.accepting.delete(id);
    return false;
  }

  accepted(id) {
    this.accepting.delete(id);
    this.dismissed.delete(id);
    // The queue item tells the panel about the patron before the details arrive.
    const seed = this.queue.item(id);
    const conversation =
      this.conversations.get(id) || this.open(id, { quietUntil: null, seed: seed ?? undefined });
    this.select(conversation, { focus: true });
  }

  assigned(id) {
    this.dismissed.delete(id);
    const conversation = this.conversations.get(id) || this.open(id, { quietUntil: null });
    this.notifier.alert({ title: this.strings.transferredToYou, body: "", tag: `reflib-${id}` });
    if (!this.active || this.active.ended) this.select(conversation, { focus: false });
  }

  open(id, { quietUntil, seed }) {
    const conversation = new Conversation({
      id,
      desk: this,
      template: this.conversationTemplate,
      seed,
      quietUntil,
    });
    this.conversations.set(id, conversation);
    this.tabs.append(conversation.tab);
    this.panels.append(conversation.panel);
    conversation.tab.addEventListener("click", () => this.select(conversation, { focus: true }));
    conversation.panel.hidden = !this.sideBySide;
    if (!this.active) this.select(conversation, { focus: false });
    this.panelsEmpty.hidden = true;
    return conversation;
  }

  dismiss(conversation) {
    this.dismissed.add(conversation.id);
    this.conversations.delete(conversation.id);
    conversation.tab.remove();
    conversation.panel.remove();
    if (this.active === conversation) {
      this.active = null;
      const next = this.conversations.values().next().value;
      if (next) this.select(next, { focus: true });
    }
    this.panelsEmpty.hidden = this.conversations.size > 0;
    this.updateUnread();
  }

  track(clientMsgId, conversation) {
    this.owners.set(clientMsgId, conversation);
  }

  untrack(clientMsgId) {
    this.owners.delete(clientMsgId);
  }

  select(conversation, { focus }) {
    this.active = conversation;
    for (const other of this.conversations.values()) {
      const selected = other === conversation;
      other.tab.classList.toggle("active", selected);
      other.tab.setAttribute("aria-selected", String(selected));
      other.tab.tabIndex = selected ? 0 : -1;
      other.panel.hidden = !this.sideBySide && !selected;
    }
    // A hidden log cannot scroll: show the newest entries now that it is visible.
    conversation.scrollToEnd();
    if (focus) {
      if (this.sideBySide) conversation.panel.scrollIntoView({ block: "nearest" });
      (conversation.body.disabled ? conversation.panel : conversation.body).focus();
    }
    this.viewChanged();
  }

  tabKeys(event) {
    const tabs = [...this.tabs.querySelectorAll('[role="tab"]')];
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const target = tabs[(moves[event.key] + tabs.length) % tabs.length];
    target.focus();
    target.click();
  }

  toggleLayout(button) {
    this.sideBySide = !this.sideBySide;
    button.setAttribute("aria-pressed", String(this.sideBySide));
    this.panels.classList.toggle("side-by-side", this.sideBySide);
    for (const conversation of this.conversations.values()) {
      conversation.panel.hidden = !this.sideBySide && conversation !== this.active;
    }
    this.viewChanged();
  }

  inView(conversation) {
    if (document.visibilityState !== "visible") return false;
    return this.sideBySide || conversation === this.active;
  }

  viewChanged() {
    for (const conversation of this.conversations.values()) {
      if (this.inView(conversation)) {
        conversation.setUnread(0);
        conversation.markRead();
      }
    }
    this.updateUnread();
  }

  // A patron wrote (or answered a check-in) in a conversation after it became mine.
  changed(conversation, frame) {
    if (this.inView(conversation) && document.hasFocus()) return;
    if (!this.inView(conversation)) conversation.setUnread(conversation.unread + 1);
    this.updateUnread();
    const name = frame.name || conversation.patronName || this.strings.anonymous;
    this.notifier.alert({
      title: format(this.strings.newMessage, { name }),
      body: frame.body || "",
      tag: `reflib-${conversation.id}`,
    });
  }

  updateUnread() {
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread;
    this.notifier.setUnread(total);
  }
}

new Desk();
