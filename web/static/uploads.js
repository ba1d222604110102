// My uploads (/uploads): the caller's uploads newest first (GET
// /api/v1/uploads, SPEC §6), a page at a time through the API's cursor; per
// upload its SHA-256 (copyable), a download, the archive's tree
// (GET .../entries) and a delete behind a confirmation.
//
// ?per_page=N (1-200, default 25) sets the page size.
"use strict";

const PER_PAGE = (() => {
  const n = Number(new URLSearchParams(window.location.search).get("per_page"));
  return Number.isInteger(n) && n >= 1 && n <= 200 ? n : 25;
})();
// Directories deeper in the tree are drawn when opened; a huge archive's
// listing is cut here.
const MAX_ENTRIES_SHOWN = 5000;

let nextCursor = null;

function $(id) {
  return document.getElementById(id);
}

async function loadPage() {
  const more = $("more");
  more.disabled = true;
  const query = new URLSearchParams({ limit: PER_PAGE });
  if (nextCursor) query.set("cursor", nextCursor);
  try {
    const page = await api(`/api/v1/uploads?${query}`);
    for (const upload of page.uploads) $("rows").append(...rows(upload));
    nextCursor = page.next_cursor;
    more.hidden = !nextCursor;
    $("empty").hidden = $("rows").children.length > 0;
  } catch (err) {
    notify($("notice"), `Your uploads could not be loaded: ${err.message}`, "bad");
  } finally {
    $("loading").hidden = true;
    more.disabled = false;
  }
}

// The upload's row, and the (hidden) row below it for its entries.
function rows(upload) {
  const base = `/api/v1/uploads/${encodeURIComponent(upload.id)}`;
  const entriesRow = el("tr", { class: "entries-row", hidden: true }, el("td", { colspan: 5 }));
  const toggle = el("button", {
    type: "button",
    class: "secondary small",
    "aria-expanded": "false",
    "aria-label": `Contents of ${upload.filename}`,
  }, "Contents");
  toggle.addEventListener("click", () => toggleEntries(upload, base, toggle, entriesRow));
  const remove = el("button", { type: "button", class: "secondary small", "aria-label": `Delete ${upload.filename}` }, "Delete");
  const row = el("tr", { class: "upload", "data-id": upload.id },
    el("td", { class: "file" }, upload.filename),
    el("td", { class: "num", "data-label": "Size" }, formatBytes(upload.size)),
    el("td", { "data-label": "SHA-256" },
      el("span", { class: "hash" },
        el("code", { class: "sha256", title: upload.sha256 }, upload.sha256.slice(0, 16) + "…"),
        copyButton(upload.sha256, `SHA-256 of ${upload.filename}`))),
    el("td", { "data-label": "Uploaded" }, el("time", { datetime: upload.created_at }, formatDate(upload.created_at))),
    el("td", {},
      el("span", { class: "actions" },
        el("a", { class: "button secondary small", href: `${base}/content`, download: upload.filename, "aria-label": `Download ${upload.filename}` }, "Download"),
        toggle,
        remove)),
  );
  remove.addEventListener("click", () => deleteUpload(upload, base, row, entriesRow));
  return [row, entriesRow];
}

async function deleteUpload(upload, base, row, entriesRow) {
  $("confirm-delete-name").textContent = upload.filename;
  if (!(await confirmWith($("confirm-delete")))) return;
  try {
    await api(base, { method: "DELETE" });
    row.remove();
    entriesRow.remove();
    notify($("notice"), `Deleted ${upload.filename}.`, "ok");
    $("empty").hidden = $("rows").children.length > 0;
  } catch (err) {
    notify($("notice"), `${upload.filename} could not be deleted: ${err.message}`, "bad");
  }
}

async function toggleEntries(upload, base, toggle, entriesRow) {
  const open = toggle.getAttribute("aria-expanded") === "true";
  toggle.setAttribute("aria-expanded", String(!open));
  entriesRow.hidden = open;
  if (open || entriesRow.dataset.loaded) return;
  const cell = entriesRow.firstChild;
  cell.replaceChildren(el("div", { class: "entries muted" }, "Reading the archive…"));
  try {
    const { entries } = await api(`${base}/entries`);
    cell.replaceChildren(entriesView(upload, entries));
    entriesRow.dataset.loaded = "1";
  } catch (err) {
    cell.replaceChildren(el("div", { class: "entries error" }, `The contents could not be read: ${err.message}`));
  }
}

// --- the archive's tree ------------------------------------------------------------

// Paths ("a/b/c.txt", "a/b/") into nested nodes; a directory seen only
// through its children still becomes a node.
function buildTree(entries) {
  const root = { children: new Map() };
  for (const e of entries.slice(0, MAX_ENTRIES_SHOWN)) {
    const parts = e.path.split("/").filter((p) => p && p !== ".");
    let node = root;
    parts.forEach((part, i) => {
      if (!node.children.has(part)) node.children.set(part, { name: part, type: "dir", size: 0, children: new Map(), implied: true });
      node = node.children.get(part);
      if (i === parts.length - 1) Object.assign(node, { type: e.type, size: e.size, implied: false });
    });
  }
  return root;
}

function totals(node) {
  let files = 0;
  let bytes = 0;
  for (const child of node.children.values()) {
    if (child.type === "dir") {
      const t = totals(child);
      files += t.files;
      bytes += t.bytes;
    } else {
      files += 1;
      bytes += child.size;
    }
  }
  return { files, bytes };
}

function nodeLine(node) {
  let meta = node.type;
  if (node.type === "dir") {
    const t = totals(node);
    meta = `folder · ${formatCount(t.files)} ${t.files === 1 ? "file" : "files"} · ${formatBytes(t.bytes)}`;
  } else if (node.type === "file") {
    meta = formatBytes(node.size);
  }
  return el("span", { class: "node", "data-type": node.type },
    el("span", { class: "node-name" }, node.name + (node.type === "dir" ? "/" : "")),
    el("span", { class: "node-meta" }, meta));
}

// Folders first, then by name. A folder's children are drawn when it opens.
function treeList(node) {
  const list = el("ul", {});
  const rank = (n) => (n.type === "dir" ? 0 : 1);
  const sorted = [...node.children.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  for (const child of sorted) {
    if (child.type === "dir" && child.children.size) {
      const details = el("details", {}, el("summary", {}, nodeLine(child)));
      details.addEventListener("toggle", () => {
        if (details.open && details.children.length === 1) details.append(treeList(child));
      });
      list.append(el("li", {}, details));
    } else {
      list.append(el("li", {}, nodeLine(child)));
    }
  }
  return list;
}

function entriesView(upload, entries) {
  const tree = buildTree(entries);
  const list = treeList(tree);
  list.classList.add("tree");
  list.setAttribute("aria-label", `Contents of ${upload.filename}`);
  // One top folder (the usual archive): open it.
  const only = list.children.length === 1 && list.querySelector("details");
  if (only) only.open = true;
  const shown = Math.min(entries.length, MAX_ENTRIES_SHOWN);
  return el("div", { class: "entries" },
    el("div", { class: "entries-head" },
      el("strong", {}, `${formatCount(upload.entries)} entries · ${formatBytes(upload.uncompressed_size)} unpacked`),
      shown < entries.length ? el("span", { class: "muted" }, `showing the first ${formatCount(shown)}`) : null),
    entries.length ? list : el("p", { class: "muted" }, "The archive is empty."));
}

document.addEventListener("DOMContentLoaded", () => {
  $("more").addEventListener("click", loadPage);
  loadPage();
});
