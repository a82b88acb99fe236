// The live queue: waiting patrons of my libraries, their waiting time counting up, Accept.
// Items are updated in place, keyed by conversation, so that a queue update never moves the
// keyboard focus away from the Accept button a librarian is on.

import { duration, instantiate, safeLink } from "./util.js";

export class QueueView {
  constructor({ list, empty, count, template, strings, onAccept }) {
    this.list = list;
    this.empty = empty;
    this.count = count;
    this.template = template;
    this.strings = strings;
    this.onAccept = onAccept;
    this.items = new Map(); // conversation id -> { item, element, since }
    this.seen = null; // ids already announced; null until the first update
    setInterval(() => this.tick(), 1000);
  }

  // Returns the items that are new since the previous update (none on the first one).
  update(items) {
    const now = Date.now();
    const ids = new Set(items.map((item) => item.conversation));
    for (const [id, entry] of this.items) {
      if (!ids.has(id)) {
        entry.element.remove();
        this.items.delete(id);
      }
    }
    let previous = null;
    for (const item of items) {
      let entry = this.items.get(item.conversation);
      if (!entry) {
        entry = { element: this.render(item) };
        this.items.set(item.conversation, entry);
      }
      entry.item = item;
      entry.since = now - item.waiting_s * 1000;
      const expectedPosition = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expectedPosition !== entry.element) {
        this.list.insertBefore(entry.element, expectedPosition);
      }
      previous = entry.element;
    }
    const seen = this.seen;
    const fresh = seen === null ? [] : items.filter((item) => !seen.has(item.conversation));
    this.seen = ids;
    this.count.textContent = String(items.length);
    this.empty.hidden = items.length > 0;
    this.tick();
    return fresh;
  }

  item(id) {
    return this.items.get(id)?.item ?? null;
  }

  render(item) {
    const element = instantiate(this.template, item.conversation);
    element.dataset.conversation = item.conversation;
    element.querySelector('[data-field="question"]').textContent = item.question;
    element.querySelector('[data-field="name"]').textContent = item.name || this.strings.anonymous;
    element.querySelector('[data-field="queue"]').textContent = item.queue;
    element
      .querySelector('[data-field="page"]')
      .replaceWith(safeLink(item.page_url, item.page_url || this.strings.noPage));
    const button = element.querySelector('[data-action="accept"]');
    button.addEventListener("click", () => {
      button.disabled = true;
      if (!this.onAccept(item.conversation)) button.disabled = false;
    });
    return element;
  }

  // An accept that failed (another librarian was faster, or the socket was down).
  release(id) {
    const entry = this.items.get(id);
    if (entry) entry.element.querySelector('[data-action="accept"]').disabled = false;
  }

  tick() {
    const now = Date.now();
    for (const entry of this.items.values()) {
      entry.element.querySelector('[data-field="waiting"]').textContent = duration(
        (now - entry.since) / 1000,
      );
    }
  }
}
