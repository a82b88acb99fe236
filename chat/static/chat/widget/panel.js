// The patron's chat panel (SPEC §1.1), framed by the loader from reflib's own origin.
// Views: the question form (a ticket form while nobody is online), the sent note, and the
// conversation, which turns into the rating/transcript/delete panel when the chat ends.
// What a reload or the library site's next page needs to carry on (the token, the e-mail address
// for a transcript, an unsent draft) is handed to the loader, which keeps it in the library
// page's own storage: a browser may give this cross-site frame no storage at all. Opened on its
// own, not framed, the panel keeps it in its own localStorage instead.
// On a shared public computer the next person must not find the chat: once it has ended, the
// panel forgets it after the rating, a deletion, a new chat, or a short idle time (FORGET_MS),
// and the server stops honouring the token for reading soon after (REFLIB_PATRON_TOKEN_WINDOW_S).

import { ENDED, randomId } from "../shared/protocol.js";
import { fileSize, format } from "../shared/text.js";
import { request, upload } from "./http.js";
import { Link } from "./link.js";
import { Log, el } from "./log.js";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("reflib-config").textContent);
const t = config.strings;
const urls = config.urls;
const storeKey = "reflib:" + config.queue;
// The loader's page, checked by the server against the library's allowed origins.
const framed = parent !== window && config.parentOrigin !== "";
const views = ["v-loading", "v-form", "v-sent", "v-chat"];
const FORGET_MS = 120000;

let session = null;
let begun = false;
let forgetting = null;
let link = null;
let log = null;
let current = "v-loading";
let mode = "chat";
let status = "";
let librarian = "";
let email = "";
let pageUrl = "";
let shown = !framed;
// The panel moves focus only while the patron is using it: never on a page load.
let focusAllowed = !framed;
let unread = 0;
let readSent = 0;
let replayedUpTo = -1;
let typingSent = 0;
let typingIdle = null;
let typingShown = null;
let audio = null;
// Screen sharing: its module is loaded only when a share is offered or asked for.
let screen = null;

function stored() {
  try {
    return JSON.parse(localStorage.getItem(storeKey));
  } catch {
    return null;
  }
}

function save() {
  const draft = $(session ? "message" : "question").value;
  const state = session && !session.rated ? { ...session, draft } : draft ? { draft } : null;
  if (framed) return tell({ reflib: "save", state });
  try {
    if (state) localStorage.setItem(storeKey, JSON.stringify(state));
    else localStorage.removeItem(storeKey);
  } catch {}
}

// The first word from the loader carries what it kept; a chat that ended and was left alone
// for FORGET_MS is not brought back.
function begin(state) {
  begun = true;
  state = state || {};
  if (state.token && !(state.idle && Date.now() - state.idle > FORGET_MS)) {
    session = { id: state.id, token: state.token, email: state.email || "", idle: state.idle };
    connect();
    $("message").value = state.draft || "";
  } else {
    $("question").value = state.token ? "" : state.draft || "";
    save();
    showForm();
  }
}

// --- the loader on the library's page ----------

function tell(message) {
  if (framed) parent.postMessage(message, config.parentOrigin);
}

addEventListener("message", (event) => {
  if (!framed || event.source !== parent || event.origin !== config.parentOrigin) return;
  const message = event.data || {};
  if (typeof message.page === "string" && /^https?:\/\//.test(message.page)) pageUrl = message.page;
  if (!begun) begin(message.state);
  if (message.reflib === "open") {
    shown = true;
    focusAllowed = focusAllowed || !!message.focus;
    seen();
    focusView();
  } else if (message.reflib === "hide") {
    shown = false;
    focusAllowed = false;
  }
});

function close() {
  if (!framed) return;
  shown = false;
  focusAllowed = false;
  tell({ reflib: "close" });
}

// --- notices: live region, unread count in the page title, a short sound ----------

function announce(text) {
  const region = $("announce");
  region.append(el("p", "", text));
  while (region.children.length > 3) region.firstChild.remove();
}

function visible() {
  return shown && document.visibilityState === "visible";
}

function seen() {
  if (!visible()) return;
  if (unread) {
    unread = 0;
    tell({ reflib: "unread", count: 0 });
  }
  if (link && link.seq > readSent && link.send({ type: "read", seq: link.seq })) readSent = link.seq;
}

function notice() {
  if (visible()) {
    seen();
    return;
  }
  unread += 1;
  tell({ reflib: "unread", count: unread });
  beep();
}

// Browsers let a page play sound only after the person has interacted with it.
for (const type of ["pointerdown", "keydown"]) {
  addEventListener(type, () => {
    focusAllowed = true;
    if (!audio && window.AudioContext) audio = new AudioContext();
    if (session && session.idle) idleSince(Date.now());
  });
}

// After the end, the chat is forgotten once nobody has touched the panel for FORGET_MS.
function idleSince(time) {
  session.idle = time;
  save();
  clearTimeout(forgetting);
  forgetting = setTimeout(
    () => {
      forget();
      showForm();
    },
    time + FORGET_MS - Date.now(),
  );
}

function beep() {
  if (!audio) return;
  const now = audio.currentTime;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 660;
  gain.gain.setValueAtTime(0.0001, now);
  gain.gain.exponentialRampToValueAtTime(0.1, now + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
  tone.connect(gain).connect(audio.destination);
  tone.start(now);
  tone.stop(now + 0.3);
}

// --- views ----------

function view(id) {
  current = id;
  for (const name of views) $(name).hidden = name !== id;
}

function focusView() {
  if (!shown || !focusAllowed) return;
  const ended = !$("ended").hidden;
  const target = {
    "v-form": "question",
    "v-sent": "sent-title",
    "v-chat": ended ? "ended-title" : "message",
  }[current];
  if (target) $(target).focus();
}

function state(text) {
  $("state").textContent = text;
}

function error(id, text) {
  $(id).textContent = text;
}

function problem(id, response) {
  const body = response.body || {};
  let text = t.failed;
  if (response.status === 429) text = format(t.rateLimited, { seconds: response.retryAfter || 10 });
  else if (response.status === 400 && body.fields) text = Object.values(body.fields).flat().join(" ");
  else if (response.status && body.detail) text = body.detail;
  error(id, text);
}

function conversationUrl(tail) {
  return urls.conversation.replace("__ID__", session.id) + tail;
}

function readableOn(hex) {
  const pairs = hex.length === 4 ? [...hex.slice(1)].map((d) => d + d) : hex.slice(1).match(/../g);
  const [r, g, b] = pairs.map((pair) => {
    const c = parseInt(pair, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 ? "#000" : "#fff";
}

// --- before the chat: a question, or a ticket when nobody is online ----------

async function showForm() {
  view("v-loading");
  const response = await request("GET", urls.status);
  const offline = response.status === 200 && !response.body.online;
  setMode(offline ? "ticket" : "chat", response.body.opens_at);
  view("v-form");
  focusView();
}

function setMode(next, opensAt) {
  mode = next;
  const ticket = mode === "ticket";
  $("form-title").textContent = ticket ? t.leaveTitle : t.askTitle;
  $("ask-submit").textContent = ticket ? t.sendQuestion : t.startChat;
  $("email-label").textContent = ticket ? t.emailRequired : t.emailOptional;
  $("email").required = ticket;
  // opens_at is a date and time; a bare time ("09:00:00") is shown as it is.
  const date = new Date(opensAt);
  const when = opensAt && (isNaN(date) ? opensAt.slice(0, 5) : date.toLocaleString(config.lang));
  const opens = when ? format(t.opensAt, { when }) : "";
  $("offline-note").textContent = [t.offline, opens, t.offlineHelp].filter(Boolean).join(" ");
  $("offline-note").hidden = !ticket;
  if (ticket) state(t.offline);
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const question = $("question").value.trim();
  const name = $("name").value.trim();
  email = $("email").value.trim();
  error("ask-error", "");
  if (!question) {
    $("question").focus();
    return;
  }
  $("ask-submit").disabled = true;
  if (mode === "ticket") {
    const response = await request("POST", urls.tickets, {
      body: { queue: config.queue, question, email, name },
    });
    $("ask-submit").disabled = false;
    if (response.status !== 201) return problem("ask-error", response);
    form.reset();
    save();
    $("sent-note").textContent = format(t.ticketSent, { email });
    view("v-sent");
    focusView();
    return;
  }
  const body = { queue: config.queue, question, name, email };
  if (pageUrl && pageUrl.length <= 500) body.page_url = pageUrl;
  const response = await request("POST", urls.start, { body });
  $("ask-submit").disabled = false;
  if (response.status === 201) {
    form.reset();
    session = { id: response.body.conversation, token: response.body.token, email };
    connect();
    save();
  } else if (response.status === 409 && response.body.error === "offline") {
    setMode("ticket");
    error("ask-error", t.offline + " " + t.offlineHelp);
    $("email").focus();
  } else {
    problem("ask-error", response);
  }
});

for (const button of document.querySelectorAll(".again")) {
  button.addEventListener("click", () => {
    forget();
    showForm();
  });
}

function forget() {
  if (link) link.stop();
  link = null;
  session = null;
  clearTimeout(forgetting);
  log.clear();
  save();
}

// --- the conversation ----------

function connect() {
  if (screen) screen.end();
  log.clear();
  log.token = session.token;
  status = "";
  librarian = "";
  replayedUpTo = -1;
  readSent = 0;
  for (const id of ["ended", "queue", "offer", "typing", "share"]) $(id).hidden = true;
  $("v-chat").classList.remove("over");
  for (const id of ["composer", "mail", "rating-done", "transcript-done"]) $(id).hidden = false;
  $("rating").reset();
  $("mail").open = false;
  $("mail-email").value = session.email;
  const notes = ["rating-done", "transcript-done", "mail-done"];
  for (const id of [...notes, "ended-error", "composer-error", "mail-error"]) error(id, "");
  state(t.connecting);
  view("v-chat");
  focusView();
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  link = new Link(scheme + location.host + urls.socket, session.token, received, (linkState) => {
    if (linkState === "down") return state(t.reconnecting);
    // Refused: the token no longer opens the conversation (deleted, or expired): start afresh.
    forget();
    showForm();
  });
  link.start();
}

function received(frame) {
  const type = frame.type;
  if (type === "welcome") {
    // What the first connection replays was shown before the reload: history, not news.
    if (replayedUpTo < 0) replayedUpTo = frame.last_seq;
    header();
  } else if (type === "ack") {
    log.acked(frame.client_msg_id, frame.seq);
  } else if (type.startsWith("share_") || (type === "error" && frame.share)) {
    sharing().then((share) => share.handle(frame));
  } else if (type === "error") {
    refused(frame);
  } else if (type === "queue") {
    showQueue(frame);
  } else if (type === "typing") {
    if (frame.from === "librarian") typing(frame.active);
  } else if (type === "read") {
    if (frame.from === "librarian") log.read(frame.seq);
  } else if (type === "status") {
    changed(frame, frame.seq > replayedUpTo);
  } else {
    const news = log.add(frame);
    if (frame.from === "librarian") typing(false);
    if (frame.action === "offer_ticket" && status === "queued") {
      $("offer").hidden = false;
      $("offer-email").value = $("offer-email").value || session.email;
    }
    if (news && frame.seq > replayedUpTo) {
      announce(news);
      notice();
    }
  }
}

async function sharing() {
  if (!screen) {
    const { ScreenShare } = await import("../shared/share.js");
    const send = (frame) => link && link.send(frame);
    const peer = () => librarian || t.librarian;
    const box = $("screen");
    screen = new ScreenShare({ send, box, trigger: $("share"), t, peer, buttons: "secondary" });
  }
  return screen;
}

function header() {
  $("share").hidden = status !== "active" || !!(screen && screen.busy);
  if (status === "queued") state(t.waiting);
  else if (status === "active") state(format(t.chattingWith, { name: librarian }));
  else if (ENDED.has(status)) state(t.closed);
}

function changed(frame, live) {
  const before = status;
  status = frame.status;
  let text = "";
  if (frame.sharing) {
    text = t["sharing_" + frame.sharing];
  } else if (status === "active") {
    if (frame.librarian !== librarian) {
      text = format(before === "active" ? t.chattingWith : t.joined, { name: frame.librarian });
    }
    librarian = frame.librarian;
    $("queue").hidden = true;
    $("offer").hidden = true;
  } else if (status === "queued") {
    if (before === "active") text = t.transferred;
    librarian = "";
  } else if (ENDED.has(status)) {
    text = t[status];
    ended(live);
  }
  if (text) {
    log.note(text);
    if (live) announce(text);
  }
  header();
}

function ended(live) {
  if (screen) screen.end();
  for (const id of ["composer", "queue", "offer", "typing", "mail"]) $(id).hidden = true;
  if (!session.idle) idleSince(Date.now());
  else idleSince(session.idle);
  $("v-chat").classList.add("over");
  const closed = status === "closed";
  $("ended").hidden = false;
  $("ended-note").textContent = closed ? "" : t[status];
  $("rating").hidden = !closed;
  $("transcript").hidden = !closed || !session.email;
  $("transcript-to").textContent = format(t.transcriptTo, { email: session.email });
  $("no-transcript").hidden = !closed || !!session.email;
  $("delete").hidden = false;
  if (live) focusView();
}

function showQueue(frame) {
  if (status !== "queued") return;
  let text = format(t.position, { position: frame.position });
  const wait = frame.estimated_wait_s;
  if (wait !== null && wait !== undefined) {
    const minutes = Math.max(1, Math.round(wait / 60));
    text += " " + (minutes === 1 ? t.waitOne : format(t.waitMany, { minutes }));
  }
  // A status region: a screen reader hears each new position.
  const box = $("queue");
  box.hidden = false;
  if (box.textContent !== text) box.textContent = text;
}

function typing(active) {
  const line = $("typing");
  line.textContent = format(t.typing, { name: librarian || t.librarian });
  line.hidden = !active;
  clearTimeout(typingShown);
  // A typing frame can be lost with a connection: never show it for ever.
  if (active) typingShown = setTimeout(() => (line.hidden = true), 10000);
}

function refused(frame) {
  const clientMsgId = frame.client_msg_id;
  if (!clientMsgId || !link) return;
  if (frame.code === "rate_limited") {
    const body = link.pending.get(clientMsgId);
    error("composer-error", format(t.rateLimited, { seconds: frame.retry_after_s || 1 }));
    const resend = () => link && link.send({ type: "send", client_msg_id: clientMsgId, body });
    setTimeout(resend, 1000 * (frame.retry_after_s || 1));
    return;
  }
  link.pending.delete(clientMsgId);
  log.failed(clientMsgId);
  error("composer-error", frame.code === "closed" ? t.chatEnded : frame.detail || t.failed);
}

function stopTyping() {
  clearTimeout(typingIdle);
  if (typingSent && link) link.send({ type: "typing", active: false });
  typingSent = 0;
}

$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("question").addEventListener("input", save);

$("message").addEventListener("input", () => {
  save();
  if (!link) return;
  if (Date.now() - typingSent > 3000 && link.send({ type: "typing", active: true })) {
    typingSent = Date.now();
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTyping, 4000);
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const body = $("message").value.trim();
  if (!body || !link) return;
  error("composer-error", "");
  const clientMsgId = randomId();
  log.pending(clientMsgId, body);
  link.say(clientMsgId, body);
  $("message").value = "";
  save();
  stopTyping();
});

$("file").addEventListener("change", async () => {
  const input = $("file");
  const file = input.files[0];
  input.value = "";
  if (!file || !session) return;
  error("composer-error", "");
  const limit = format(t.tooLarge, { size: fileSize(config.maxUpload) });
  if (file.size > config.maxUpload) return error("composer-error", limit);
  const bar = $("progress");
  bar.value = 0;
  bar.hidden = false;
  announce(format(t.uploading, { filename: file.name }));
  const progress = (percent) => (bar.value = percent);
  const response = await upload(conversationUrl("files"), session.token, file, progress);
  bar.hidden = true;
  // A shared file comes back over the socket as a "file" event, like everyone else's.
  if (response.status === 201) return;
  if (response.status === 413) error("composer-error", limit);
  else if (response.status === 415) error("composer-error", t.fileType);
  else if (response.status === 409) error("composer-error", t.chatEnded);
  else problem("composer-error", response);
});

$("end").addEventListener("click", () => {
  if (!link || !link.send({ type: "end" })) error("composer-error", t.failed);
});

$("offer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const address = $("offer-email").value.trim();
  error("offer-error", "");
  // The conversation's status event ("ticket") follows over the socket.
  const response = await request("POST", conversationUrl("ticket"), {
    body: { email: address },
    token: session.token,
  });
  if (response.status !== 201) return problem("offer-error", response);
  session.email = address;
  save();
});

// A transcript goes only to an address given at the start or confirmed here, during the chat.
$("mail-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  error("mail-error", "");
  error("mail-done", "");
  const response = await request("POST", conversationUrl("email"), {
    body: { email: $("mail-email").value.trim() },
    token: session.token,
  });
  if (response.status !== 200) return problem("mail-error", response);
  session.email = response.body.email;
  save();
  error("mail-done", format(t.mailConfirmed, { email: session.email }));
});

// --- after the chat ----------

$("rating").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  error("ended-error", "");
  const response = await request("POST", conversationUrl("rating"), {
    body: { score: Number(form.elements.score.value), comment: $("comment").value.trim() },
    token: session.token,
  });
  if (response.status !== 200) return problem("ended-error", response);
  form.hidden = true;
  error("rating-done", t.ratingThanks);
  // Rated: a reload starts afresh. The token stays in memory for a transcript or a deletion.
  session.rated = true;
  save();
});

$("transcript").addEventListener("submit", async (event) => {
  event.preventDefault();
  error("ended-error", "");
  const response = await request("POST", conversationUrl("transcript"), {
    body: {},
    token: session.token,
  });
  if (response.status !== 202) return problem("ended-error", response);
  error("transcript-done", format(t.transcriptSent, { email: response.body.email }));
});

$("delete").addEventListener("click", async () => {
  error("ended-error", "");
  const response = await request("DELETE", conversationUrl(""), { token: session.token });
  if (response.status !== 204) return problem("ended-error", response);
  forget();
  for (const id of ["rating", "transcript", "delete", "rating-done", "transcript-done"]) {
    $(id).hidden = true;
  }
  $("ended-note").textContent = t.deleted;
  announce(t.deleted);
  $("ended-title").focus();
});

// --- start ----------

$("hide").hidden = !framed;
$("hide").addEventListener("click", close);
addEventListener("keydown", (event) => {
  if (event.key === "Escape") close();
});
document.addEventListener("visibilitychange", seen);

const color = document.documentElement.dataset.color;
if (color) {
  document.documentElement.style.setProperty("--accent", color);
  document.documentElement.style.setProperty("--on-accent", readableOn(color));
}
log = new Log($("log"), t, (id, answer) => !!link && link.send({ type: "checkin_answer", id, answer }));
// Framed, the panel waits for the loader's first word (with what it kept) before it starts.
if (!framed) begin(stored());
tell({ reflib: "ready" });

$("share").addEventListener("click", () => sharing().then((share) => share.start()));
