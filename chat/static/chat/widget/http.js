// The patron HTTP API (PROTOCOL.md) from the panel: JSON requests, file upload with progress,
// and shared files fetched with the token (they are never reachable by a bare URL).

// Resolves to {status, body, retryAfter}; a network failure resolves to status 0.
export async function request(method, url, { body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  try {
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
    let parsed = {};
    try {
      parsed = JSON.parse(await response.text());
    } catch {}
    return { status: response.status, body: parsed, retryAfter: response.headers.get("Retry-After") };
  } catch {
    return { status: 0, body: {} };
  }
}

// XMLHttpRequest because fetch cannot report upload progress.
export function upload(url, token, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("file", file);
    xhr.open("POST", url);
    xhr.setRequestHeader("Authorization", "Bearer " + token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(Math.round((100 * event.loaded) / event.total));
    };
    xhr.onload = () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {}
      resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader("Retry-After") });
    };
    xhr.onerror = () => resolve({ status: 0, body: {} });
    xhr.send(form);
  });
}

// An object URL for a shared file; the caller revokes it when done.
export async function fileUrl(url, token) {
  const response = await fetch(url, {
    headers: { Authorization: "Bearer " + token },
    credentials: "omit",
  });
  if (!response.ok) throw new Error(String(response.status));
  return URL.createObjectURL(await response.blob());
}
