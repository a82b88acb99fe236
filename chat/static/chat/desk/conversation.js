// One open conversation: its tab, its log of events (each seq shown once), the composer,
// canned responses, notes, files, check-in, transfer and close.

import { ENDED, randomId } from "../shared/protocol.js";
import { fileSize, format, linkified } from "../shared/text.js";
import { clockTime, getJSON, instantiate, postForm, safeLink } from "./util.js";

const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 8000;
const CANNED_SHOWN = 10;

export class Conversation {
  // desk: what the panel needs of the desk (send, me, strings, urls, csrfToken, canned,
  // changed, dismiss, track, untrack, inView). quietUntil: events up to this seq are history (no unread count, no sound); null means
  // "until the status event that gives me this conversation".
  constructor({ id, desk, template, seed, quietUntil }) {
    this.id = id;
    this.desk = desk;
    this.strings = desk.strings;
    this.lastSeq = 0;
    this.lastReadSent = 0;
    this.status = "queued";
    this.librarian = null;
    this.mine = false;
    this.unread = 0;
    this.quietUntil = quietUntil;
    this.pending = new Map(); // client_msg_id -> { frame, element, acked }
    this.checkins = new Map(); // check-in id -> element
    this.details = null;
    this.typingTimer = null;
    this.typingShownTimer = null;
    this.typingActive = false;
    this.build(template);
    this.describe(seed || {});
    this.applyState();
    this.loadDetails();
  }

  // --- building ----------

  build(template) {
    const idPart = this.id;
    this.panel = instantiate(template, idPart);
    this.panel.id = `conv-${idPart}-panel`;
    this.panel.dataset.conversation = this.id;
    this.field = (name) => this.panel.querySelector(`[data-field="${name}"]`);
    this.scroller = this.panel.querySelector(".desk-log");
    this.log = this.field("entries");
    this.pendingList = this.panel.querySelector(".desk-pending");
    this.body = this.field("body");

    this.tab = document.createElement("button");
    this.tab.type = "button";
    this.tab.className = "nav-link";
    this.tab.id = `conv-${idPart}-tab`;
    this.tab.setAttribute("role", "tab");
    this.tab.setAttribute("aria-controls", this.panel.id);
    this.tab.setAttribute("aria-selected", "false");
    this.tab.tabIndex = -1;
    this.tabName = document.createElement("span");
    this.tabBadge = document.createElement("span");
    this.tabBadge.className = "badge rounded-pill text-bg-danger";
    this.tabBadge.hidden = true;
    this.tab.append(this.tabName, " ", this.tabBadge);

    const messageForm = this.panel.querySelector('[data-form="message"]');
    messageForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendBody("send");
    });
    this.body.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendBody("send");
      }
    });
    this.body.addEventListener("input", () => this.typing());
    this.panel.querySelector('[data-action="note"]').addEventListener("click", () => {
      this.sendBody("note");
    });
    this.panel.querySelector('[data-action="checkin"]').addEventListener("click", () => {
      this.desk.send({ type: "checkin", conversation: this.id });
    });
    this.panel.querySelector('[data-action="share-screen"]').addEventListener("click", () => {
      this.sharing(null);
    });
    this.panel.querySelector('[data-action="dismiss"]').addEventListener("click", () => {
      this.desk.dismiss(this);
    });

    this.field("canned-query").addEventListener("input", () => this.renderCanned());
    this.panel.querySelector('[data-form="file"]').addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendFile();
    });
    this.panel.querySelector('[data-form="transfer"]').addEventListener("submit", (event) => {
      event.preventDefault();
      this.transfer();
    });
    this.panel.querySelector('[data-tool="transfer"]').addEventListener("toggle", (event) => {
      if (event.target.open) this.loadDetails();
    });
    this.panel.querySelector('[data-form="close"]').addEventListener("submit", (event) => {
      event.preventDefault();
      this.close();
    });
  }

  // What is known of the patron: from the queue item at first, then from the details.
  describe({ name, question, queue, page_url: pageUrl }) {
    if (name !== undefined) this.patronName = name || "";
    const shown = this.patronName || this.strings.anonymous;
    this.field("patron").textContent = shown;
    this.tabName.textContent = shown;
    if (question !== undefined) this.field("question").textContent = question;
    if (queue !== undefined) this.field("queue").textContent = queue;
    if (pageUrl !== undefined) {
      const page = this.panel.querySelector('[data-field="page"]');
      const replacement = safeLink(pageUrl, pageUrl || this.strings.noPage);
      const wrapper = document.createElement("span");
      wrapper.dataset.field = "page";
      wrapper.append(replacement);
      page.replaceWith(wrapper);
    }
  }

  async loadDetails() {
    try {
      this.details = await getJSON(this.desk.urls.conversation.replace("__ID__", this.id));
    } catch {
      return; // the panel works without its details; opening the transfer tool retries
    }
    const d = this.details;
    this.describe({
      name: d.patron_name,
      question: d.question,
      queue: d.queue,
      page_url: d.page_url,
    });
    this.renderEarlier(d.earlier);
    this.renderTransferTargets(d.transfer);
    this.renderCanned();
  }

  // --- frames ----------

  handle(frame) {
    if (typeof frame.seq === "number") {
      // Each stored event is shown once, whatever a reconnect replays.
      if (frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
    }
    const entry = this.render(frame);
    if (entry) {
      entry.dataset.seq = String(frame.seq);
      this.log.append(entry);
      this.scrollToEnd();
    }
    if (frame.client_msg_id && this.pending.has(frame.client_msg_id)) {
      this.settle(frame.client_msg_id);
    }
    const history = this.quietUntil === null || frame.seq <= this.quietUntil;
    if (frame.type === "status") {
      this.status = frame.status;
      this.librarian = frame.librarian;
      // By the user's id, which the server compares: two staff may share a display name.
      this.mine = frame.mine === true;
      if (this.quietUntil === null && this.isMine()) this.quietUntil = frame.seq;
      this.applyState();
    }
    const fromPatron = frame.from === "patron" || frame.type === "checkin_answer";
    if (fromPatron && !history) this.desk.changed(this, frame);
    this.markRead();
  }

  render(frame) {
    switch (frame.type) {
      case "message":
        return this.entry(frame.from, frame.name, frame.ts, linkified(frame.body));
      case "note": {
        const label = `${this.strings.note} · ${frame.name}`;
        return this.entry("note", label, frame.ts, linkified(frame.body));
      }
      case "file": {
        const content = document.createDocumentFragment();
        content.append(format(this.strings.fileShared, { name: frame.name }), " ");
        const link = document.createElement("a");
        link.href = frame.url;
        link.textContent = frame.filename;
        content.append(link, ` (${fileSize(frame.size)})`);
        return this.entry(frame.from, frame.name, frame.ts, content);
      }
      case "status": {
        if (frame.sharing) {
          return this.entry("system", null, frame.ts, this.strings[`sharing_${frame.sharing}`]);
        }
        const text = format(this.strings[`status_${frame.status}`] || frame.status, {
          librarian: frame.librarian || "",
        });
        const shown = frame.reason ? `${text} (${frame.reason})` : text;
        return this.entry("system", null, frame.ts, shown);
      }
      case "checkin": {
        const content = document.createDocumentFragment();
        const answer = document.createElement("span");
        answer.className = "d-block fw-semibold";
        answer.textContent = this.strings.checkinWaiting;
        content.append(format(this.strings.checkinAsked, { body: frame.body }), answer);
        this.checkins.set(frame.id, answer);
        const entry = this.entry("librarian", frame.name, frame.ts, content);
        entry.classList.add("desk-entry-checkin");
        return entry;
      }
      case "checkin_answer": {
        const text = format(this.strings.checkinAnswer, {
          answer: this.strings[`answer_${frame.answer}`] || frame.answer,
        });
        const asked = this.checkins.get(frame.id);
        if (asked) asked.textContent = text;
        return this.entry("system", null, frame.ts, text);
      }
      default:
        return null;
    }
  }

  scrollToEnd() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  entry(kind, name, ts, content) {
    const item = document.createElement("li");
    item.className = `desk-entry desk-entry-${kind}`;
    if (name || ts) {
      const meta = document.createElement("span");
      meta.className = "desk-entry-meta";
      meta.textContent = [name, ts ? clockTime(ts) : ""].filter(Boolean).join(" · ");
      item.append(meta);
    }
    const bubble = document.createElement("p");
    bubble.className = "desk-bubble";
    bubble.append(content);
    item.append(bubble);
    return item;
  }

  live(frame) {
    if (frame.type === "typing" && frame.from === "patron") {
      const name = this.patronName || this.strings.anonymous;
      const indicator = this.field("typing");
      indicator.textContent = frame.active ? format(this.strings.typing, { name }) : "";
      clearTimeout(this.typingShownTimer);
      // A lost "stopped typing" frame must not leave the indicator on for good.
      if (frame.active) {
        this.typingShownTimer = setTimeout(() => (indicator.textContent = ""), TYPING_SHOWN_MS);
      }
    } else if (frame.type === "read" && frame.from === "patron") {
      this.showSeen(frame.seq);
    }
  }

  showSeen(seq) {
    const mine = [...this.log.querySelectorAll(".desk-entry-librarian")].filter(
      (entry) => Number(entry.dataset.seq) <= seq,
    );
    const last = mine.at(-1);
    if (!last || last.querySelector(".desk-seen")) return;
    this.log.querySelector(".desk-seen")?.remove();
    const seen = document.createElement("span");
    seen.className = "desk-seen";
    seen.textContent = this.strings.seen;
    last.append(seen);
  }

  // The event of an acknowledged message may come before or after its ack.
  ack(frame) {
    const pending = this.pending.get(frame.client_msg_id);
    if (!pending) return;
    if (frame.seq <= this.lastSeq) this.settle(frame.client_msg_id);
    else pending.acked = true;
  }

  settle(clientMsgId) {
    this.pending.get(clientMsgId).element.remove();
    this.pending.delete(clientMsgId);
    this.desk.untrack(clientMsgId);
  }

  failed(clientMsgId, detail) {
    const pending = this.pending.get(clientMsgId);
    if (!pending) return false;
    this.pending.delete(clientMsgId);
    pending.element.dataset.failed = "";
    pending.element.textContent = `${this.strings.notSent} ${detail} — ${pending.frame.body}`;
    return true;
  }

  retryLater(frame) {
    const pending = this.pending.get(frame.client_msg_id);
    if (!pending) return false;
    setTimeout(
      () => this.pending.get(frame.client_msg_id) === pending && this.desk.send(pending.frame),
      1000 * (frame.retry_after_s || 1),
    );
    return true;
  }

  // After a reconnect: what the server has not acknowledged goes again, under the same id.
  resendPending() {
    for (const pending of this.pending.values()) {
      if (!pending.acked) this.desk.send(pending.frame);
    }
  }

  // --- screen sharing (its module is loaded on first use) ----------

  // A share_* frame or a sharing error from the server, or null: the librarian offers.
  async sharing(frame) {
    if (!this.screen) {
      const { ScreenShare } = await import("../shared/share.js");
      this.screen = new ScreenShare({
        send: (out) => this.desk.send({ ...out, conversation: this.id }),
        box: this.field("screen"),
        trigger: this.panel.querySelector('[data-action="share-screen"]'),
        t: this.strings,
        peer: () => this.patronName || this.strings.anonymous,
        buttons: "btn btn-sm btn-outline-primary me-2",
      });
    }
    if (frame) this.screen.handle(frame);
    else this.screen.start();
  }

  // --- state ----------

  isMine() {
    return this.status === "active" && this.mine;
  }

  get ended() {
    return ENDED.has(this.status);
  }

  applyState() {
    const mine = this.isMine();
    let state;
    if (this.ended) state = this.strings.stateEnded;
    else if (mine) state = this.strings.stateMine;
    else if (this.status === "queued") state = this.strings.stateQueued;
    else state = format(this.strings.stateElsewhere, { librarian: this.librarian || "" });
    this.field("state").textContent = state;
    if (!mine) this.screen?.end();
    const ownerActions = ['[data-action="send"]', '[data-action="checkin"]'];
    for (const selector of [...ownerActions, '[data-action="share-screen"]']) {
      this.panel.querySelector(selector).disabled = !mine;
    }
    this.panel.querySelector('[data-action="note"]').disabled = this.ended;
    this.body.disabled = this.ended;
    const ownerTools = ['[data-form="file"]', '[data-tool="transfer"]', '[data-tool="close"]'];
    for (const selector of ownerTools) this.panel.querySelector(selector).hidden = !mine;
    this.panel.querySelector('[data-action="dismiss"]').hidden = mine;
    if (this.ended) this.tab.dataset.ended = "";
  }

  // --- in view: unread and read marks ----------

  setUnread(count) {
    this.unread = count;
    this.tabBadge.hidden = count === 0;
    this.tabBadge.textContent = String(count);
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = ` ${this.strings.unread}`;
    this.tabBadge.append(hidden);
  }

  markRead() {
    if (!this.desk.inView(this) || this.lastSeq <= this.lastReadSent) return;
    if (this.desk.send({ type: "read", conversation: this.id, seq: this.lastSeq })) {
      this.lastReadSent = this.lastSeq;
    }
  }

  // --- sending ----------

  sendBody(type) {
    const body = this.body.value.trim();
    if (!body) return;
    if (type === "send" && !this.isMine()) return;
    const frame = { type, conversation: this.id, client_msg_id: randomId(), body };
    const element = document.createElement("li");
    element.className = type === "note" ? "desk-pending-note" : "";
    element.textContent = `${this.strings.sending} ${body}`;
    this.pendingList.append(element);
    this.pending.set(frame.client_msg_id, { frame, element, acked: false });
    this.desk.track(frame.client_msg_id, this);
    this.desk.send(frame);
    this.body.value = "";
    this.stopTyping();
    this.body.focus();
  }

  typing() {
    if (!this.isMine()) return;
    if (!this.typingActive) {
      this.typingActive = this.desk.send({ type: "typing", conversation: this.id, active: true });
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (!this.typingActive) return;
    this.typingActive = false;
    this.desk.send({ type: "typing", conversation: this.id, active: false });
  }

  async sendFile() {
    const input = this.field("file");
    const status = this.field("file-status");
    if (!input.files.length) {
      input.focus();
      return;
    }
    const data = new FormData();
    data.append("file", input.files[0]);
    status.textContent = this.strings.fileSending;
    try {
      await postForm(this.desk.urls.files.replace("__ID__", this.id), data, this.desk.csrfToken);
      status.textContent = "";
      input.value = "";
    } catch (error) {
      status.textContent = `${this.strings.notSent} ${error.message}`;
    }
  }

  transfer() {
    const target = this.field("target");
    if (!target.value) {
      target.focus();
      return;
    }
    // Option values are "user:USERNAME" or "queue:LIB/QUEUE".
    const colon = target.value.indexOf(":");
    const kind = target.value.slice(0, colon);
    const frame = { type: "transfer", conversation: this.id };
    frame[kind === "user" ? "to_user" : "to_queue"] = target.value.slice(colon + 1);
    const note = this.field("note").value.trim();
    if (note) frame.note = note; // the protocol has no empty note
    if (this.desk.send(frame)) {
      this.field("note").value = "";
      this.panel.querySelector('[data-tool="transfer"]').open = false;
    }
  }

  close() {
    const form = this.panel.querySelector('[data-form="close"]');
    const level = form.querySelector('input[type="radio"]:checked');
    const tags = this.field("tags")
      .value.split(",")
      .map((tag) => tag.trim())
      .filter(Boolean);
    const frame = { type: "close", conversation: this.id, tags };
    if (level) frame.read_level = Number(level.value);
    this.desk.send(frame);
  }

  // --- tools ----------

  renderCanned() {
    const list = this.field("canned");
    const query = this.field("canned-query").value.trim().toLowerCase();
    const library = this.details?.library;
    const matches = this.desk
      .canned()
      .filter((item) => !library || item.library === library)
      .filter(
        (item) => !query || `${item.title} ${item.body}`.toLowerCase().includes(query),
      )
      .slice(0, CANNED_SHOWN);
    list.replaceChildren();
    if (matches.length === 0) {
      const none = document.createElement("li");
      none.className = "small text-body-secondary";
      none.textContent = this.strings.noCanned;
      list.append(none);
      return;
    }
    for (const item of matches) {
      const entry = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-link btn-sm p-0 mb-1";
      button.textContent = item.title;
      const preview = document.createElement("span");
      preview.className = "desk-canned-preview";
      preview.textContent = item.body;
      button.addEventListener("click", () => this.insert(this.fill(item.body)));
      entry.append(button, preview);
      list.append(entry);
    }
  }

  fill(body) {
    const name = this.details?.patron_display_name || this.patronName || "";
    return body.replaceAll("{name}", name).replaceAll("{librarian}", this.desk.me);
  }

  insert(text) {
    const box = this.body;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.selectionStart = box.selectionEnd = start + text.length;
    this.typing();
  }

  renderEarlier(earlier) {
    const list = this.field("earlier");
    list.replaceChildren();
    if (!earlier.length) {
      const none = document.createElement("li");
      none.className = "text-body-secondary";
      none.textContent = this.strings.earlierNone;
      list.append(none);
      return;
    }
    for (const chat of earlier) {
      const item = document.createElement("li");
      item.className = "mb-2";
      const when = document.createElement("time");
      when.dateTime = chat.created_at;
      when.textContent = new Date(chat.created_at).toLocaleDateString();
      const facts = [chat.status_label];
      if (chat.librarian) facts.push(chat.librarian);
      if (chat.read_level) facts.push(format(this.strings.readLevel, { level: chat.read_level }));
      if (chat.tags.length) facts.push(chat.tags.join(", "));
      const question = document.createElement("span");
      question.className = "d-block";
      question.textContent = chat.question;
      item.append(when, ` · ${facts.join(" · ")}`, question);
      list.append(item);
    }
  }

  renderTransferTargets({ colleagues, queues }) {
    const select = this.field("target");
    const chosen = select.value;
    const placeholder = select.querySelector('option[value=""]');
    select.replaceChildren(placeholder);
    const label = (c) => (c.available ? `${c.name} (${this.strings.available})` : c.name);
    const groups = [
      [this.strings.colleaguesGroup, colleagues.map((c) => [`user:${c.username}`, label(c)])],
      [this.strings.queuesGroup, queues.map((q) => [`queue:${q.address}`, q.name])],
    ];
    for (const [label, options] of groups) {
      if (!options.length) continue;
      const group = document.createElement("optgroup");
      group.label = label;
      for (const [value, text] of options) group.append(new Option(text, value));
      select.append(group);
    }
    select.value = chosen;
  }
}
