// The e-mailed link carries the ticket's key in its fragment (#k=KEY), which the browser never
// sends to a server. Post it once, form-encoded, and drop it from the address bar and history.
const match = /(?:^#|&)k=([\w-]+)/.exec(window.location.hash);
if (match) {
  window.history.replaceState(null, "", window.location.pathname);
  const form = document.getElementById("ticket-open");
  form.elements.key.value = match[1];
  document.getElementById("ticket-open-status").textContent = form.dataset.opening || "…";
  form.submit();
}
