// The conversation as the patron sees it. Whatever anyone wrote is shown as text (textContent);
// only http and https addresses become links, which open in a new tab without an opener.

import { fileSize, format, linkified } from "../shared/text.js";
import { fileUrl } from "./http.js";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function paragraph(text) {
  const body = el("p", "body");
  body.append(linkified(text));
  return body;
}

export class Log {
  constructor(list, strings, onAnswer) {
    this.list = list;
    this.t = strings;
    this.onAnswer = onAnswer;
    this.token = "";
    this.clear();
  }

  clear() {
    this.list.replaceChildren();
    for (const url of this.urls || []) URL.revokeObjectURL(url);
    this.urls = [];
    this.byClient = new Map();
    this.mine = [];
    this.checkins = new Map();
    this.readSeq = 0;
  }

  item(className, who) {
    const item = el("li", className);
    if (who) item.append(el("p", "who", who));
    this.list.append(item);
    // Once the caller has filled the item in: the newest message is always in view.
    requestAnimationFrame(() => (this.list.scrollTop = this.list.scrollHeight));
    return item;
  }

  // A line about the conversation itself (someone joined, the chat ended).
  note(text) {
    this.item("event").textContent = text;
  }

  // The patron's own message, shown at once and marked until the server has it.
  pending(clientMsgId, body) {
    const item = this.item("msg patron", this.t.you);
    item.append(paragraph(body), el("p", "mark", this.t.sending));
    this.byClient.set(clientMsgId, item);
  }

  acked(clientMsgId, seq) {
    const item = this.byClient.get(clientMsgId);
    if (item) this.own(item, seq);
  }

  failed(clientMsgId) {
    const item = this.byClient.get(clientMsgId);
    if (!item) return;
    item.classList.add("failed");
    item.lastChild.textContent = this.t.notSent;
  }

  own(item, seq) {
    if (!item.seq) this.mine.push(item);
    item.seq = seq;
    item.lastChild.textContent = seq <= this.readSeq ? this.t.read : this.t.sent;
  }

  // The librarian has read everything up to ``seq``.
  read(seq) {
    this.readSeq = Math.max(this.readSeq, seq);
    for (const item of this.mine) if (item.seq <= this.readSeq) item.lastChild.textContent = this.t.read;
  }

  // A stored event; returns what to announce to the patron, if anything.
  add(frame) {
    const t = this.t;
    const fromPatron = frame.from === "patron";
    if (frame.type === "message") {
      const known = frame.client_msg_id && this.byClient.get(frame.client_msg_id);
      if (known) {
        this.own(known, frame.seq);
        return "";
      }
      // The server's offer of a ticket is worded in the patron's language here.
      const body = frame.action === "offer_ticket" ? t.offerTicket : frame.body;
      const item = this.item("msg " + frame.from, fromPatron ? t.you : frame.name);
      item.append(paragraph(body));
      if (fromPatron) {
        item.append(el("p", "mark"));
        this.own(item, frame.seq);
        return "";
      }
      return format(t.newMessages, { name: frame.name, body });
    }
    if (frame.type === "file") {
      const item = this.item("msg file " + frame.from, fromPatron ? t.you : frame.name);
      this.file(item, frame);
      if (fromPatron) {
        item.append(el("p", "mark"));
        this.own(item, frame.seq);
        return "";
      }
      return format(t.shared, { name: frame.name, filename: frame.filename });
    }
    if (frame.type === "checkin") {
      const item = this.item("msg checkin librarian", frame.name);
      const row = el("div", "row");
      row.setAttribute("role", "group");
      row.setAttribute("aria-label", t.checkin);
      for (const answer of ["yes", "partly", "no"]) {
        const button = el("button", "secondary", t[answer]);
        button.type = "button";
        button.onclick = () => {
          for (const other of row.children) other.disabled = true;
          if (!this.onAnswer(frame.id, answer)) for (const other of row.children) other.disabled = false;
        };
        row.append(button);
      }
      item.append(el("p", "body", t.checkin), row);
      this.checkins.set(frame.id, row);
      return format(t.newMessages, { name: frame.name, body: t.checkin });
    }
    if (frame.type === "checkin_answer") {
      const row = this.checkins.get(frame.id);
      if (row) row.replaceWith(el("p", "mark", format(t.answered, { answer: t[frame.answer] })));
    }
    return "";
  }

  // Shared files are fetched with the token: an image is shown, every file can be saved.
  file(item, frame) {
    const body = el("div", "body");
    if (frame.content_type.startsWith("image/")) {
      const image = el("img");
      image.alt = frame.filename;
      body.append(image);
      this.fetch(frame.url).then((url) => (image.src = url), () => {});
    }
    const label = format(this.t.download, { filename: frame.filename, size: fileSize(frame.size) });
    const save = el("button", "link", label);
    save.type = "button";
    save.onclick = () =>
      this.fetch(frame.url).then((url) => {
        const anchor = el("a");
        anchor.href = url;
        anchor.download = frame.filename;
        anchor.click();
      }, () => {});
    body.append(save);
    item.append(body);
  }

  async fetch(url) {
    const objectUrl = await fileUrl(url, this.token);
    this.urls.push(objectUrl);
    return objectUrl;
  }
}
