// Events: DescribeEventConfig / ModifyEventConfig. Dead letters have no API.
import { call } from "../api.js";
import { field, h, input, notice, select, showError, showInfo } from "../ui.js";

const SWITCHES = [
  ["UploadMediaCompleteEventSwitch", "Upload complete events"],
  ["DeleteMediaCompleteEventSwitch", "Delete complete events"],
  ["PersistenceCompleteEventSwitch", "Persistence complete events"],
];

export async function renderEvents(root) {
  const message = notice();
  root.append(h("h1", {}, "Events"), message);
  let config;
  try {
    config = await call("DescribeEventConfig", {});
  } catch (error) {
    showError(message, error);
    return;
  }
  const mode = field("Mode", select(["PUSH", "PULL"], config.Mode));
  const url = field("NotificationUrl", input({ type: "url", value: config.NotificationUrl || "", placeholder: "https://example.com/anigraph/events" }), "for PUSH");
  url.row.classList.add("wide");
  const switches = SWITCHES.map(([name, label]) => [name, field(label, select(["ON", "OFF"], config[name]))]);
  const signKey = field("SignKey", input({ value: "", autocomplete: "off" }), "leave empty to keep the current one");
  const button = h("button", { type: "submit" }, "Save");
  const form = h(
    "form",
    { class: "card", "aria-label": "Event configuration" },
    h("div", { class: "grid" }, mode.row, url.row, switches.map(([, f]) => f.row), signKey.row),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = { Mode: mode.input.value, NotificationUrl: url.input.value };
    for (const [name, f] of switches) params[name] = f.input.value;
    if (signKey.input.value) params.SignKey = signKey.input.value;
    button.disabled = true;
    try {
      await call("ModifyEventConfig", params);
      showInfo(message, "Saved.");
    } catch (error) {
      showError(message, error);
    } finally {
      button.disabled = false;
    }
  });
  root.append(
    form,
    h("h2", {}, "Dead letters"),
    h(
      "p",
      { class: "card" },
      "Notifications that could not be delivered are kept as dead letters. There is no API for them, so the console cannot show them: on the server, run ",
      h("code", {}, "anigraph events dead-letters"),
      ".",
    ),
  );
}
