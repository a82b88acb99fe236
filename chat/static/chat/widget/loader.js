// reflib's chat loader (SPEC §1.1). One script tag on any library page:
//   <script src="https://DESK/widget.js" data-queue="LIB/QUEUE" async></script>
// Options: data-position="bottom-left", data-color="#rrggbb", data-lang="es",
// data-open-on-load, data-target="CSS selector" (a page element that opens the chat instead of
// the floating button), data-storage="local" (see below). The launcher says whether a librarian
// is online; the chat panel is an iframe from reflib's origin, loaded on first use. The loader
// adds one global, window.reflib, and keeps its look in a shadow root with a style sheet from
// reflib: it restyles nothing on the page and needs no inline style, so it works under a strict
// Content-Security-Policy.
// What the panel needs to resume (its conversation's token, an unsent draft) is kept here, in the
// library page's own storage: a browser may deny the panel's cross-site frame any storage of its
// own. sessionStorage by default, so that a chat ends with the tab (a shared public computer);
// data-storage="local" keeps it in localStorage instead, shared by the site's tabs and kept
// across browser restarts until the chat is over. It goes to the panel by postMessage, to
// reflib's origin only, and is taken only from the frame this loader made.
// On a small screen the open panel fills the visual viewport (so an on-screen keyboard never
// covers the message box), the launcher hides and the page behind it does not scroll.
(() => {
  const script = document.currentScript;
  const options = script ? script.dataset : {};
  const queue = options.queue || "";
  // Once per page, and only for a queue address (LIB/QUEUE, two slugs).
  if (!script || window.reflib || !/^[\w-]+\/[\w-]+$/.test(queue)) return;
  const origin = new URL(script.src).origin;
  // The server puts the launcher's words in every shipped language here.
  const strings = "__REFLIB_STRINGS__";
  const lang = (options.lang || navigator.language || "en").slice(0, 2).toLowerCase();
  const t = strings[lang] || strings.en;
  const color = /^#([\da-f]{3}){1,2}$/i.test(options.color || "") ? options.color : "";
  const key = "reflib:" + queue;
  const small = matchMedia("(max-width: 600px)");
  const viewport = window.visualViewport;
  const page = document.documentElement.style;
  let store;
  let saved = {};
  try {
    store = options.storage === "local" ? localStorage : sessionStorage;
    saved = JSON.parse(store.getItem(key)) || {};
  } catch {}
  let launcher;
  let frame;
  let ready = false;
  let shown = false;
  // Focus moves into the panel only when the patron opened it, never on a page load.
  let focusPanel = false;

  const host = document.createElement("reflib-chat");
  const root = host.attachShadow({ mode: "open" });
  const box = document.createElement("div");
  const sheet = document.createElement("link");
  sheet.rel = "stylesheet";
  sheet.href = origin + "__REFLIB_LAUNCHER_CSS__";
  // Hidden until styled, so that the page never shows an unstyled button.
  box.hidden = true;
  sheet.onload = sheet.onerror = () => (box.hidden = false);
  box.className = "box " + (options.position === "bottom-left" ? "left" : "right");
  if (color) {
    // Through the CSSOM, not a style attribute: a CSP without 'unsafe-inline' allows it.
    box.style.setProperty("--accent", color);
    box.style.setProperty("--on-accent", readableOn(color));
  }
  root.append(sheet, box);

  // Black or white, whichever contrasts more with the colour: always at least 4.5:1.
  function readableOn(hex) {
    const pairs = hex.length === 4 ? [...hex.slice(1)].map((d) => d + d) : hex.slice(1).match(/../g);
    const [r, g, b] = pairs.map((pair) => {
      const c = parseInt(pair, 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? "#000" : "#fff";
  }

  function start() {
    const target = options.target && document.querySelector(options.target);
    if (target) {
      launcher = target;
    } else {
      launcher = document.createElement("button");
      launcher.type = "button";
      launcher.className = "launch";
      launcher.textContent = t.ask;
      box.append(launcher);
    }
    launcher.setAttribute("aria-expanded", "false");
    launcher.addEventListener("click", (event) => {
      event.preventDefault();
      show(!shown, true);
    });
    document.body.append(host);
    status();
    setInterval(() => document.hidden || status(), 60000);
    // A conversation was going on before a reload or on the site's previous page: bring it
    // back as it was.
    if (saved.state) load();
    const openOnLoad = options.openOnLoad !== undefined && options.openOnLoad !== "false";
    if (saved.open || (!saved.state && openOnLoad)) show(true, false);
    // The visual viewport changes with an on-screen keyboard, a zoom or a rotation.
    for (const type of ["resize", "scroll"]) viewport && viewport.addEventListener(type, fit);
  }

  // The open panel on a small screen: exactly the visible part of the page.
  function fit() {
    const full = shown && small.matches;
    box.classList.toggle("full", full);
    if (full && viewport) {
      box.style.setProperty("--top", viewport.offsetTop + "px");
      box.style.setProperty("--height", viewport.height + "px");
    }
  }

  function status() {
    fetch(origin + "/api/v1/queues/" + queue + "/")
      .then((response) => (response.ok ? response.json() : Promise.reject()))
      .then((queueStatus) => {
        const online = queueStatus.online;
        let state = online ? t.online : t.offline;
        const opens = !online && queueStatus.opens_at;
        if (opens) {
          const date = new Date(opens);
          const when = isNaN(date)
            ? opens.slice(0, 5)
            : date.toLocaleString(lang, { weekday: "short", hour: "numeric", minute: "2-digit" });
          state = t.opens.replace("%s", when);
        }
        launcher.dataset.reflibOnline = online;
        if (launcher.parentNode === box) {
          launcher.textContent = t.ask + " (" + state + ")";
          launcher.classList.toggle("on", online);
        }
      }, () => {});
  }

  function load() {
    if (frame) return;
    frame = document.createElement("iframe");
    frame.title = t.frame;
    // The panel may ask to share the patron's screen (the browser still asks the patron).
    frame.allow = "display-capture";
    frame.hidden = true;
    const query = new URLSearchParams({ lang, color, origin: location.origin });
    frame.src = origin + "/widget/" + queue + "/?" + query;
    box.prepend(frame);
  }

  function show(on, moveFocus) {
    if (on) load();
    shown = on;
    if (frame) frame.hidden = !on;
    launcher.setAttribute("aria-expanded", on);
    // Only on a small screen, and only when the patron opens or closes the chat: the page's
    // own scrolling is left alone otherwise.
    if (small.matches) page.overflow = on ? "hidden" : "";
    fit();
    remember();
    focusPanel = on && moveFocus;
    if (ready) post();
    if (moveFocus) (on ? frame : launcher).focus();
  }

  function post() {
    const message = {
      reflib: shown ? "open" : "hide",
      focus: focusPanel,
      page: location.href,
      state: saved.state,
    };
    frame.contentWindow.postMessage(message, origin);
    focusPanel = false;
  }

  function remember() {
    saved.open = shown;
    try {
      if (saved.state) store.setItem(key, JSON.stringify(saved));
      else store.removeItem(key);
    } catch {}
  }

  // The panel speaks only from reflib's origin and from the frame this loader made.
  addEventListener("message", (event) => {
    if (!frame || event.origin !== origin || event.source !== frame.contentWindow) return;
    const message = event.data || {};
    if (message.reflib === "ready") {
      ready = true;
      post();
    } else if (message.reflib === "close") {
      show(false, true);
    } else if (message.reflib === "unread") {
      const title = document.title.replace(/^\(\d+\) /, "");
      document.title = message.count > 0 ? "(" + message.count + ") " + title : title;
    } else if (message.reflib === "save") {
      saved.state = message.state;
      remember();
    }
  });

  window.reflib = { open: () => show(true, true), close: () => show(false, true) };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
