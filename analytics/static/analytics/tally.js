// The desk's one-click tally: loads its form from the analytics app into #tally, counts a
// question with one click (or Alt+Shift+T), and offers "undo" for a few seconds. The service
// point and format stay chosen for the next question; the server remembers them too.

const SHORTCUT = { altKey: true, shiftKey: true, code: "KeyT" };

class Tally {
  constructor(root) {
    this.root = root;
    this.formUrl = root.dataset.formUrl;
    this.timer = null;
    document.addEventListener("keydown", (event) => {
      if (event.altKey === SHORTCUT.altKey && event.shiftKey === SHORTCUT.shiftKey && event.code === SHORTCUT.code) {
        event.preventDefault();
        this.form?.requestSubmit();
      }
    });
  }

  async load(library = "") {
    const url = library ? `${this.formUrl}?library=${encodeURIComponent(library)}` : this.formUrl;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) {
      this.root.querySelector("[data-tally-body]").textContent = this.root.dataset.loadError;
      return;
    }
    const body = this.root.querySelector("[data-tally-body]");
    body.innerHTML = await response.text();
    this.form = body.querySelector("[data-tally-form]");
    this.status = body.querySelector("[data-tally-status]");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.count();
    });
    this.form.querySelector("[data-tally-library]")?.addEventListener("change", (event) => this.load(event.target.value));
  }

  csrf() {
    return this.form.querySelector('input[name="csrfmiddlewaretoken"]').value;
  }

  async count() {
    const button = this.form.querySelector("[data-tally-count]");
    button.disabled = true;
    try {
      const response = await fetch(this.form.action, {
        method: "POST",
        body: new FormData(this.form),
        credentials: "same-origin",
        headers: { "X-CSRFToken": this.csrf(), Accept: "application/json" },
      });
      const result = await response.json();
      if (!response.ok) {
        this.say(Object.values(result.errors || {}).flat().map((e) => e.message).join(" "), "text-danger");
        return;
      }
      const note = this.form.querySelector('textarea[name="note"]');
      if (note) note.value = "";
      this.offerUndo(result);
    } catch {
      this.say(this.root.dataset.sendError, "text-danger");
    } finally {
      button.disabled = false;
    }
  }

  say(text, className = "") {
    clearInterval(this.timer);
    this.status.replaceChildren();
    const line = document.createElement("span");
    line.className = className;
    line.textContent = text;
    this.status.append(line);
    return line;
  }

  offerUndo(result) {
    const line = this.say(`${this.root.dataset.counted} ${result.summary}. `);
    const undo = document.createElement("button");
    undo.type = "button";
    undo.className = "btn btn-sm btn-outline-secondary ms-1";
    let left = result.undo_seconds;
    const label = () => `${this.root.dataset.undo} (${left})`;
    undo.textContent = label();
    undo.addEventListener("click", () => this.undo(result.undo));
    line.append(undo);
    this.timer = setInterval(() => {
      left -= 1;
      if (left <= 0) {
        clearInterval(this.timer);
        undo.remove();
      } else {
        undo.textContent = label();
      }
    }, 1000);
  }

  async undo(url) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": this.csrf(), Accept: "application/json" },
    });
    const result = await response.json();
    this.say(response.ok ? this.root.dataset.undone : result.message, response.ok ? "" : "text-danger");
  }
}

const root = document.getElementById("tally");
if (root) new Tally(root).load();
