// Small DOM helpers shared by the pages.

let nextId = 0;

/** h("div", {class: "x", onclick: fn}, child, ...): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled control: returns {row, input, error} where `error` is a role=alert slot. */
export function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  const error = h("p", { class: "field-error", role: "alert", id: `${id}-error` });
  control.setAttribute("aria-describedby", error.id);
  const row = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", {}, hint) : null,
    error,
  );
  return { row, input: control, error };
}

export function input(attrs = {}) {
  return h("input", attrs);
}

export function select(options, value) {
  const element = h("select", {});
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    element.append(h("option", { value: optionValue }, text));
  }
  if (value !== undefined) element.value = String(value);
  return element;
}

/** A page-level message area (errors and notices). */
export function notice() {
  return h("div", { class: "notice", role: "status", "aria-live": "polite" });
}

export function showError(area, error) {
  area.className = "notice error";
  area.textContent = error && error.code ? `${error.code}: ${error.message}` : String(error?.message || error);
}

export function showInfo(area, text) {
  area.className = "notice info";
  area.textContent = text;
}

export function clear(element) {
  element.replaceChildren();
}

export function formatBytes(size) {
  if (size === undefined || size === null) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(2)} MiB`;
}

/** The output itself: an MP4 plays like a GIF would (muted, looping, inline, no controls);
 * GIF, WebP and AVIF are images. */
function outputMedia(output) {
  const label = `Animated output, template ${output.Definition}`;
  const size = { width: output.Width || undefined, height: output.Height || undefined };
  const container = output.Container || new URL(output.Url, location.href).pathname.split(".").pop();
  if (container === "mp4") {
    const video = h("video", {
      src: output.Url,
      ...size,
      autoplay: true,
      muted: true,
      loop: true,
      playsinline: true,
      preload: "auto",
      "aria-label": label,
    });
    video.muted = true; // the attribute alone does not satisfy every browser's autoplay rule
    return video;
  }
  return h("img", { src: output.Url, alt: label, ...size, loading: "lazy" });
}

// The measured result: only outputs of templates that use an extension (MaxSize, ...) carry it.
function measuredFacts(output) {
  const facts = [];
  if (output.FrameCount !== undefined) facts.push(["Frames", `${output.FrameCount} at ${output.Fps} fps`]);
  if (output.Ssim !== undefined) facts.push(["SSIM", Number(output.Ssim).toFixed(4)]);
  if (output.LoopSeam !== undefined) facts.push(["Loop seam", Number(output.LoopSeam).toFixed(4)]);
  if (output.Adjustments !== undefined) {
    facts.push(["Adjustments", output.Adjustments.length ? output.Adjustments.join(", ") : "none"]);
  }
  return facts.flatMap(([name, value]) => [
    h("dt", {}, name),
    h("dd", { "data-field": name.toLowerCase() }, value),
  ]);
}

/** An animated output: the image itself, with size, dimensions, Md5 and a download link. */
export function outputCard(output) {
  const name = new URL(output.Url, location.href).pathname.split("/").pop();
  return h(
    "figure",
    { class: "output" },
    outputMedia(output),
    h(
      "figcaption",
      {},
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Template"),
        h("dd", {}, String(output.Definition)),
        h("dt", {}, "Size"),
        h("dd", {}, formatBytes(output.Size)),
        h("dt", {}, "Dimensions"),
        h("dd", {}, `${output.Width} × ${output.Height}`),
        h("dt", {}, "Range"),
        h("dd", {}, `${output.StartTimeOffset}–${output.EndTimeOffset} s`),
        h("dt", {}, "Md5"),
        h("dd", { class: "mono" }, output.Md5 || "—"),
        ...measuredFacts(output),
      ),
      h("a", { href: output.Url, download: name, class: "button" }, `Download ${name}`),
    ),
  );
}

// FileIds this browser has seen (uploads, tasks): there is no media-listing action.
const FILES = "anigraph.fileIds";

export function knownFileIds() {
  return JSON.parse(sessionStorage.getItem(FILES) || "[]");
}

export function rememberFileIds(ids) {
  const known = knownFileIds();
  let changed = false;
  for (const id of ids) {
    if (id && !known.includes(id)) {
      known.unshift(id);
      changed = true;
    }
  }
  if (changed) sessionStorage.setItem(FILES, JSON.stringify(known));
}

export function forgetFileId(id) {
  sessionStorage.setItem(FILES, JSON.stringify(knownFileIds().filter((known) => known !== id)));
}
