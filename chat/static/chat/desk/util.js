// Small helpers of the desk alone: page links, times, JSON requests, templates. What the
// patron's panel shows the same way is in ../shared/.

export function safeLink(url, text) {
  if (!/^https?:\/\//i.test(url || "")) return document.createTextNode(text);
  const link = document.createElement("a");
  link.href = url;
  link.textContent = text;
  link.rel = "noopener noreferrer";
  link.target = "_blank";
  return link;
}

export function clockTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body.error || "invalid";
  }
}

async function parsed(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  return parsed(response);
}

export async function postForm(url, formData, csrfToken) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    body: formData,
  });
  return parsed(response);
}

// Clone a <template>'s element, giving its ids (and what points at them) a unique part.
export function instantiate(template, idPart) {
  const element = template.content.firstElementChild.cloneNode(true);
  const attributes = ["id", "for", "aria-labelledby", "aria-describedby", "aria-controls"];
  for (const node of [element, ...element.querySelectorAll("*")]) {
    for (const name of attributes) {
      const value = node.getAttribute(name);
      if (value?.includes("__ID__")) node.setAttribute(name, value.replaceAll("__ID__", idPart));
    }
  }
  return element;
}
