// The desk's shift card: my current and next shift and who else is rostered now, rendered by
// the server (/desk/shift/) and fetched again as time passes: when my shift ends, when the
// next one starts, when the grace period after a shift runs out, and every minute. When my
// shift has ended the card warns; "I'm staying" keeps me available.

const REFRESH_MS = 60000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ShiftCard {
  constructor({ section, url, csrfToken, onPresence, onEnded }) {
    this.section = section;
    this.url = url;
    this.csrfToken = csrfToken;
    this.onPresence = onPresence;
    this.onEnded = onEnded;
    this.warned = Boolean(section.querySelector("#shift-ended"));
    section.addEventListener("submit", (event) => this.stay(event));
    this.schedule();
  }

  card() {
    return this.section.querySelector("#shift-card");
  }

  schedule() {
    clearTimeout(this.timer);
    const data = this.card()?.dataset ?? {};
    const now = Date.now();
    const moments = [data.endsAt, data.nextAt, data.awayAt]
      .filter(Boolean)
      .map((iso) => new Date(iso).getTime() - now + 1000)
      .filter((ms) => ms > 0);
    const wait = Math.min(REFRESH_MS, ...moments, MAX_TIMER_MS);
    this.timer = setTimeout(() => this.refresh(), wait);
  }

  async refresh() {
    try {
      const response = await fetch(this.url, { credentials: "same-origin" });
      if (response.ok) this.show(await response.text());
    } finally {
      this.schedule();
    }
  }

  show(html) {
    const hadFocus = this.section.contains(document.activeElement);
    this.section.innerHTML = html;
    const card = this.card();
    if (card?.dataset.presence) this.onPresence(card.dataset.presence);
    const warning = this.section.querySelector("#shift-ended");
    if (warning && !this.warned) this.onEnded(warning.textContent.trim());
    this.warned = Boolean(warning);
    if (hadFocus) this.section.querySelector("button, a")?.focus();
  }

  async stay(event) {
    if (!event.target.matches('form[data-form="stay"]')) return;
    event.preventDefault();
    const response = await fetch(event.target.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": this.csrfToken, "X-Requested-With": "fetch" },
      body: new FormData(event.target),
    });
    if (response.ok) this.show(await response.text());
    this.schedule();
  }
}
