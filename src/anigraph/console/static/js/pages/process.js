// Process: choose media, mark a range on its video, pick templates, ProcessMedia.
import { call } from "../api.js";
import { link } from "../router.js";
import { field, h, input, knownFileIds, notice, select, showError } from "../ui.js";

export async function renderProcess(root, args) {
  const message = notice();
  const ids = knownFileIds();
  const chosen = args[0] || ids[0] || "";
  const media = field("Media (FileId)", select([["", "Choose…"], ...ids.map((id) => [id, id])], chosen));
  if (chosen && !ids.includes(chosen)) media.input.append(h("option", { value: chosen }, chosen));
  media.input.value = chosen;
  const body = h("div", {});
  root.append(h("h1", {}, "Process"), h("div", { class: "toolbar" }, media.row), message, body);
  media.input.addEventListener("change", () => {
    location.hash = link("process", media.input.value);
  });
  if (!chosen) {
    body.append(h("p", { class: "muted" }, "Upload a video on the Media page first."));
    return;
  }

  let info;
  let templates;
  try {
    [info, templates] = await Promise.all([
      call("DescribeMediaInfos", { FileIds: [chosen] }),
      call("DescribeAnimatedGraphicsTemplates", { Limit: 100 }),
    ]);
  } catch (error) {
    showError(message, error);
    return;
  }
  const item = info.MediaInfoSet[0];
  if (!item) {
    showError(message, `No media ${chosen}.`);
    return;
  }
  const duration = item.MetaData?.Duration || 0;
  const video = h("video", { src: item.BasicInfo.MediaUrl, controls: true, preload: "metadata", class: "player", "aria-label": "Source video" });
  const start = field("Start", input({ type: "number", min: 0, step: "0.01", value: 0 }), "seconds");
  const end = field("End", input({ type: "number", min: 0, step: "0.01", value: Math.min(duration, 3) || 1 }), "seconds");
  const setStart = h("button", { type: "button", class: "secondary" }, "Set start");
  const setEnd = h("button", { type: "button", class: "secondary" }, "Set end");
  setStart.addEventListener("click", () => {
    start.input.value = video.currentTime.toFixed(2);
  });
  setEnd.addEventListener("click", () => {
    end.input.value = video.currentTime.toFixed(2);
  });
  const boxes = templates.AnimatedGraphicsTemplateSet.map((t) => {
    const box = input({ type: "checkbox", value: t.Definition, id: `tpl-${t.Definition}` });
    return {
      box,
      row: h("label", { class: "check", for: box.id }, box, ` ${t.Name || t.Definition} (${t.Definition}, ${t.Format}, ${t.Fps} fps)`),
    };
  });
  const button = h("button", { type: "submit" }, "Start processing");
  const form = h(
    "form",
    { class: "card", "aria-label": "Process" },
    h("h2", {}, item.BasicInfo.Name || chosen),
    video,
    h("div", { class: "actions" }, setStart, setEnd),
    h("div", { class: "grid" }, start.row, end.row),
    h("fieldset", {}, h("legend", {}, "Templates"), boxes.map((b) => b.row)),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const definitions = boxes.filter((b) => b.box.checked).map((b) => Number(b.box.value));
    if (!definitions.length) {
      showError(message, "Choose at least one template.");
      return;
    }
    const range = { StartTimeOffset: Number(start.input.value), EndTimeOffset: Number(end.input.value) };
    button.disabled = true;
    try {
      const answer = await call("ProcessMedia", {
        FileId: chosen,
        MediaProcessTask: { AnimatedGraphicTaskSet: definitions.map((d) => ({ Definition: d, ...range })) },
      });
      message.className = "notice info";
      message.replaceChildren("Started task ", h("a", { href: link("tasks", answer.TaskId), class: "mono" }, answer.TaskId));
    } catch (error) {
      showError(message, error);
    } finally {
      button.disabled = false;
    }
  });
  body.append(form);
}
