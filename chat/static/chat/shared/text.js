// Text both clients show the same way: translated templates, links, file sizes.

// "%(name)s" placeholders, as Django's translations write them.
export function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (match, key) => (key in values ? values[key] : match));
}

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

// Text with its http and https addresses made links that open in a new tab without an opener;
// everything else stays text, never HTML from anyone.
export function linkified(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const link = document.createElement("a");
    link.href = link.textContent = match[0];
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    fragment.append(text.slice(last, match.index), link);
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

// One rule on both sides, so that patron and librarian see the same size for one file: binary
// units, bytes below 1 KB, whole kilobytes rounded to the nearest, megabytes to one decimal
// (from what would round to 1024 KB).
export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const kilobytes = Math.round(bytes / 1024);
  if (kilobytes < 1024) return `${kilobytes} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
