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
 *
 * Each page draws into a container of its own. When the user moves on before a page's data
 * arrived, that container is already detached, so the late page draws where no one sees it
 * instead of into the page that replaced it.
 */
export function startRouter(root, pages, fallback, onChange) {
  let cleanup = null;
  let shown = null;
  function show() {
    if (typeof cleanup === "function") cleanup();
    cleanup = null;
    let { name, args } = parseHash(location.hash);
    if (!pages[name]) {
      name = fallback;
      args = [];
    }
    onChange(name);
    const container = document.createElement("div");
    container.className = "page";
    root.replaceChildren(container);
    shown = container;
    Promise.resolve(pages[name](container, args)).then(
      (result) => {
        if (shown === container) cleanup = result || null;
        else if (typeof result === "function") result();
      },
      (error) => {
        if (shown === container) container.append(String(error?.message || error));
      },
    );
  }
  window.addEventListener("hashchange", show);
  show();
  return show;
}
