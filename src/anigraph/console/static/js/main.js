// Entry point: sign-in, the navigation and the page router.
import { callWith, currentKey, discoverSubAppId, forgetKey, saveKey } from "./api.js";
import { startRouter } from "./router.js";
import { field, h, input, notice, showError } from "./ui.js";
import { renderEvents } from "./pages/events.js";
import { renderFlows } from "./pages/flows.js";
import { renderMedia } from "./pages/media.js";
import { renderProcess } from "./pages/process.js";
import { renderTasks } from "./pages/tasks.js";
import { renderTemplates } from "./pages/templates.js";

const PAGES = {
  media: renderMedia,
  process: renderProcess,
  templates: renderTemplates,
  flows: renderFlows,
  tasks: renderTasks,
  events: renderEvents,
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// The API's wording is Tencent's; at sign-in, say what the user got wrong.
const SIGN_IN_ERRORS = {
  "AuthFailure.SignatureFailure": "The SecretId/SecretKey pair is wrong: this SecretKey does not belong to this SecretId.",
  "AuthFailure.SecretIdNotFound": "There is no such SecretId on this service (or it was revoked).",
};

function signInError(error) {
  const text = error && SIGN_IN_ERRORS[error.code];
  return text ? `${text} (${error.code})` : error;
}

function signInPage() {
  nav.hidden = true;
  who.hidden = true;
  const secretId = field("SecretId", input({ autocomplete: "username", required: true }));
  const secretKey = field(
    "SecretKey",
    input({ type: "password", autocomplete: "current-password", required: true }),
  );
  const message = notice();
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h(
      "p",
      {},
      "Use an API key (SecretId and SecretKey) of this anigraph service. ",
      "It is kept in this tab only (sessionStorage) and every request is signed in the browser.",
    ),
    secretId.row,
    secretKey.row,
    button,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = { secretId: secretId.input.value.trim(), secretKey: secretKey.input.value.trim() };
    button.disabled = true;
    try {
      await callWith(key, "DescribeAnimatedGraphicsTemplates", { Limit: 1 });
      key.subAppId = await discoverSubAppId(key);
      saveKey(key);
      // replaceState, not location.hash: a hashchange would render the page a second time,
      // concurrently with boot()'s, and both would append their forms.
      if (!location.hash || location.hash === "#/") history.replaceState(null, "", "#/media");
      boot();
    } catch (error) {
      showError(message, signInError(error));
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(form);
  secretId.input.focus();
}

let routing = null;

function boot() {
  const key = currentKey();
  if (!key) {
    signInPage();
    return;
  }
  nav.hidden = false;
  who.hidden = false;
  who.replaceChildren(
    h(
      "span",
      { title: "Each key belongs to exactly one sub-application." },
      `SubAppId ${key.subAppId ?? "unknown"} · ${key.secretId.slice(0, 8)}…`,
    ),
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          forgetKey();
          location.hash = "";
          location.reload();
        },
      },
      "Sign out",
    ),
  );
  const highlight = (name) => {
    for (const anchor of nav.querySelectorAll("a")) {
      if (anchor.getAttribute("href") === `#/${name}`) anchor.setAttribute("aria-current", "page");
      else anchor.removeAttribute("aria-current");
    }
  };
  if (routing) routing();
  else routing = startRouter(main, PAGES, "media", highlight);
}

boot();
