// Process: choose media, mark a range on its video, pick templates, ProcessMedia; then the
// segment each template used (a Highlight template chooses its own window inside the range).
import { call } from "../api.js";
import { link } from "../router.js";
import { field, h, input, knownFileIds, notice, select, showError } from "../ui.js";

/** [FileId, label] for the newest media of the sub-application, and the FileIds this tab saw. */
async function mediaChoices() {
  const seen = knownFileIds().map((id) => [id, id]);
  try {
    const answer = await call("SearchMedia", { Limit: 50, Filters: ["basicInfo"] });
    const listed = answer.MediaInfoSet.map((m) => [m.FileId, `${m.BasicInfo?.Name || "(no name)"} · ${m.FileId}`]);
    const ids = new Set(listed.map(([id]) => id));
    return [...listed, ...seen.filter(([id]) => !ids.has(id))];
  } catch {
    return seen;
  }
}

const REFRESH_MS = 1500;

function segmentsOf(detail) {
  const task = detail.ProcedureTask || {};
  return (task.MediaProcessResultSet || []).map((r) => r.AnimatedGraphicTask).filter(Boolean);
}

/** Follows the task and lists, per template, the segment its output shows. */
function segmentList(taskId, templates, video) {
  const list = h("ul", { class: "segments", "aria-label": "Segments used" });
  const section = h("section", { class: "card" }, h("h2", {}, "Segments used"), list);
  let timer = null;
  async function load() {
    let detail;
    try {
      detail = await call("DescribeTaskDetail", { TaskId: taskId });
    } catch (error) {
      list.replaceChildren(h("li", { class: "error-text" }, `${error.code || ""} ${error.message}`));
      return;
    }
    list.replaceChildren(
      ...segmentsOf(detail).map((task) => {
        const definition = task.Input.Definition;
        const highlight = templates.get(definition)?.SegmentMode === "Highlight";
        const label = `Template ${definition}${highlight ? " (Highlight)" : ""}`;
        if (task.Status === "FAIL") return h("li", {}, `${label}: failed, ${task.ErrCodeExt || task.ErrCode}`);
        if (!task.Output) return h("li", {}, `${label}: ${task.Status.toLowerCase()}…`);
        const { StartTimeOffset: from, EndTimeOffset: to } = task.Output;
        const show = h("button", { type: "button", class: "secondary" }, "Show");
        show.addEventListener("click", () => {
          video.currentTime = from;
        });
        return h("li", {}, `${label}: ${highlight ? "chose" : "used"} ${from.toFixed(2)}–${to.toFixed(2)} s `, show);
      }),
    );
    if (detail.Status !== "FINISH" && list.isConnected) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return { section, stop: () => clearTimeout(timer) };
}

export async function renderProcess(root, args) {
  const message = notice();
  const choices = await mediaChoices();
  const chosen = args[0] || choices[0]?.[0] || "";
  const media = field("Media", select([["", "Choose…"], ...choices], chosen));
  if (chosen && !choices.some(([id]) => id === chosen)) media.input.append(h("option", { value: chosen }, chosen));
  media.input.value = chosen;
  const body = h("div", {});
  root.append(h("h1", {}, "Process"), h("div", { class: "toolbar" }, media.row), message, body);
  media.input.addEventListener("change", () => {
    location.hash = link("process", media.input.value);
  });
  if (!chosen) {
    body.append(h("p", { class: "muted" }, "No media yet: ", h("a", { href: link("media") }, "upload a video on the Media page"), " first."));
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
  const start = field("Start", input({ type: "number", min: 0, step: "0.01", value: 0 }), duration ? `seconds (the video is ${duration} s)` : "seconds");
  const end = field("End", input({ type: "number", min: 0, step: "0.01", value: Math.min(duration, 3) || 1 }), "seconds");
  const setStart = h("button", { type: "button", class: "secondary" }, "Set start");
  const setEnd = h("button", { type: "button", class: "secondary" }, "Set end");
  setStart.addEventListener("click", () => {
    start.input.value = video.currentTime.toFixed(2);
    checkRange(start, end, duration);
  });
  setEnd.addEventListener("click", () => {
    end.input.value = video.currentTime.toFixed(2);
    checkRange(start, end, duration);
  });
  const boxes = templates.AnimatedGraphicsTemplateSet.map((t) => {
    const box = input({ type: "checkbox", value: t.Definition, id: `tpl-${t.Definition}` });
    return {
      box,
      row: h("label", { class: "check", for: box.id }, box, ` ${t.Name || t.Definition} (${t.Definition}, ${t.Format}, ${t.Fps} fps)`),
    };
  });
  const byDefinition = new Map(templates.AnimatedGraphicsTemplateSet.map((t) => [t.Definition, t]));
  let following = null;
  const button = h("button", { type: "submit" }, "Start processing");
  // Next to the button, so the answer to a click is where the user looks.
  const outcome = notice();
  const rangeError = () => checkRange(start, end, duration);
  start.input.addEventListener("input", rangeError);
  end.input.addEventListener("input", rangeError);
  const form = h(
    "form",
    { class: "card", "aria-label": "Process" },
    h("h2", {}, item.BasicInfo.Name || chosen),
    video,
    h("div", { class: "actions" }, setStart, setEnd),
    h("div", { class: "grid" }, start.row, end.row),
    h("fieldset", {}, h("legend", {}, "Templates"), boxes.map((b) => b.row)),
    h("div", { class: "actions" }, button),
    outcome,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const definitions = boxes.filter((b) => b.box.checked).map((b) => Number(b.box.value));
    if (!definitions.length) {
      showError(outcome, "Choose at least one template.");
      return;
    }
    if (rangeError()) {
      showError(outcome, "Fix the range first.");
      start.input.focus();
      return;
    }
    const range = { StartTimeOffset: Number(start.input.value), EndTimeOffset: Number(end.input.value) };
    button.disabled = true;
    try {
      const answer = await call("ProcessMedia", {
        FileId: chosen,
        MediaProcessTask: { AnimatedGraphicTaskSet: definitions.map((d) => ({ Definition: d, ...range })) },
      });
      outcome.className = "notice info";
      outcome.replaceChildren("Started task ", h("a", { href: link("tasks", answer.TaskId), class: "mono" }, answer.TaskId));
      following?.stop();
      following = segmentList(answer.TaskId, byDefinition, video);
      body.replaceChildren(form, following.section);
    } catch (error) {
      showError(outcome, error);
    } finally {
      outcome.scrollIntoView({ block: "nearest" });
      button.disabled = false;
    }
  });
  body.append(form);
}

/**
 * Mark Start/End against the media's duration; true when the range cannot work (Start at or
 * past the end, End before Start). An End past the duration is only a hint: the API clamps it.
 */
function checkRange(start, end, duration) {
  const from = Number(start.input.value);
  const to = Number(end.input.value);
  const long = `the video is ${duration} s long`;
  let startProblem = "";
  let endProblem = "";
  let blocking = false;
  if (duration > 0 && from >= duration) {
    startProblem = `Past the end: ${long}.`;
    blocking = true;
  } else if (to > 0 && to <= from) {
    endProblem = "End must be after Start (0 means the end of the video).";
    blocking = true;
  } else if (duration > 0 && to > duration) {
    endProblem = `Past the end: ${long}, so the segment ends there.`;
  }
  start.error.textContent = startProblem;
  end.error.textContent = endProblem;
  for (const [control, problem] of [[start, startProblem], [end, endProblem]]) {
    if (problem && blocking) control.input.setAttribute("aria-invalid", "true");
    else control.input.removeAttribute("aria-invalid");
  }
  return blocking;
}
