// A small hash router: "#/tasks/<id>" runs the "tasks" page with ["<id>"].

export function parseHash(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "", args: parts.slice(1) };
}

export function link(...parts) {
  return `#/${parts.map((part) => encodeURIComponent(part)).join("/")}`;
}

/**
 * Start routing: `pages` maps a name to `render(root, args)`, which may return a cleanup
 * function (stop timers). Unknown names go to `fallback`.
 */
export function startRouter(root, pages, fallback, onChange) {
  let cleanup = null;
  let generation = 0;
  async function show() {
    generation += 1;
    const mine = generation;
    if (typeof cleanup === "function") cleanup();
    cleanup = null;
    let { name, args } = parseHash(location.hash);
    if (!pages[name]) {
      name = fallback;
      args = [];
    }
    onChange(name);
    root.replaceChildren();
    const result = await pages[name](root, args);
    if (mine !== generation) {
      if (typeof result === "function") result();
    } else {
      cleanup = result || null;
    }
  }
  window.addEventListener("hashchange", show);
  show();
  return show;
}
