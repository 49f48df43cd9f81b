// Tasks: DescribeTasks with a status filter, auto-refresh, and a DescribeTaskDetail view.
import { call } from "../api.js";
import { link } from "../router.js";
import { field, h, notice, outputCard, rememberFileIds, select, showError } from "../ui.js";

const REFRESH_MS = 2000;
const FILTER = "anigraph.taskFilter";

function unfinished(status) {
  return status === "WAITING" || status === "PROCESSING";
}

// A time not reached yet comes as Tencent's zero time (0001-01-01T00:00:00Z).
function shownTime(time) {
  return !time || time.startsWith("0001-") ? "—" : time;
}

function statusBadge(status, label = status) {
  return h("span", { class: `badge ${String(status).toLowerCase()}` }, label);
}

/**
 * A task as a person reads it. Tencent reports a task whose subtasks failed as Status FINISH
 * (ErrCode on the task, or FAIL on subtasks): shown as FAILED (or PARTLY FAILED), in red.
 */
function taskBadge(status, task, subtasks) {
  const failed = subtasks.filter((s) => s.Status === "FAIL").length;
  if (status !== "FINISH" || (!failed && !task.ErrCode)) return statusBadge(status);
  const label = failed && failed < subtasks.length ? "PARTLY FAILED" : "FAILED";
  return h("span", { class: "badge fail", title: `Status ${status}` }, label);
}

function subtasksOf(task) {
  return (task.MediaProcessResultSet || []).map((r) => r.AnimatedGraphicTask).filter(Boolean);
}

function errorLine(failure) {
  return `${failure.ErrCodeExt || failure.ErrCode}: ${failure.Message}`;
}

function subtaskView(result) {
  const task = result.AnimatedGraphicTask;
  if (!task) return h("li", { class: "card" }, `${result.Type} (not handled by anigraph)`);
  const input = task.Input || {};
  const failed = task.Status === "FAIL";
  return h(
    "li",
    { class: failed ? "card subtask failed" : "card subtask" },
    h(
      "h3",
      {},
      `Template ${input.Definition}, ${input.StartTimeOffset ?? 0}–${input.EndTimeOffset ?? "end"} s `,
      statusBadge(task.Status),
    ),
    failed
      ? h("p", { class: "notice error", role: "alert" }, errorLine(task))
      : [
          h("progress", { max: 100, value: task.Progress ?? 0, "aria-label": `Progress of template ${input.Definition}` }),
          h("span", { class: "muted" }, ` ${task.Progress ?? 0}%`),
        ],
    task.Output && task.Output.Url ? outputCard(task.Output) : null,
  );
}

function procedureOf(detail) {
  return detail.ProcedureTask || detail.PullUploadTask || null;
}

async function renderDetail(root, taskId) {
  const message = notice();
  const body = h("div", {});
  root.append(
    h("p", {}, h("a", { href: link("tasks") }, "← All tasks")),
    h("h1", {}, "Task"),
    h("p", { class: "mono" }, taskId),
    message,
    body,
  );
  let timer = null;
  let stopped = false;
  async function load() {
    try {
      const detail = await call("DescribeTaskDetail", { TaskId: taskId });
      const task = procedureOf(detail) || {};
      if (task.FileId) rememberFileIds([task.FileId]);
      const results = task.MediaProcessResultSet || [];
      const subtasks = subtasksOf(task);
      // replaceChildren would print a null as text: build through h(), which skips it.
      body.replaceChildren(
        ...h(
          "div",
          {},
          h(
          "dl",
          { class: "facts card" },
          h("dt", {}, "Type"),
          h("dd", {}, detail.TaskType),
          h("dt", {}, "Status"),
          h("dd", {}, taskBadge(detail.Status, task, subtasks), h("span", { class: "muted" }, ` Status ${detail.Status}`)),
          h("dt", {}, "Media"),
          h("dd", {}, task.FileId ? h("a", { href: link("media", task.FileId) }, `${task.FileName || ""} ${task.FileId}`) : "—"),
          h("dt", {}, "Created"),
          h("dd", {}, detail.CreateTime),
          h("dt", {}, "Finished"),
          h("dd", {}, shownTime(detail.FinishTime)),
        ),
        task.ErrCode ? h("p", { class: "notice error", role: "alert" }, errorLine(task)) : null,
        h("h2", {}, "Subtasks"),
        results.length ? h("ul", { class: "subtasks" }, results.map(subtaskView)) : h("p", { class: "muted" }, "No subtasks."),
        ).childNodes,
      );
      if (!stopped && unfinished(detail.Status)) timer = setTimeout(load, REFRESH_MS);
    } catch (error) {
      showError(message, error);
    }
  }
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function renderList(root) {
  const filter = field(
    "Status",
    select([["", "All"], "WAITING", "PROCESSING", "FINISH"], sessionStorage.getItem(FILTER) || ""),
  );
  const message = notice();
  const list = h("div", { class: "table-wrap" });
  const refreshing = h("p", { class: "muted", "aria-live": "polite" });
  root.append(h("h1", {}, "Tasks"), h("div", { class: "toolbar" }, filter.row), message, refreshing, list);
  let timer = null;
  let stopped = false;

  async function load() {
    clearTimeout(timer);
    const params = { Limit: 100 };
    if (filter.input.value) params.Status = filter.input.value;
    try {
      const answer = await call("DescribeTasks", params);
      const tasks = answer.TaskSet;
      rememberFileIds(tasks.map((t) => t.FileId));
      const pending = tasks.filter((t) => unfinished(t.Status));
      // The list has no progress or errors: fetch details for unfinished and failed ones shown.
      const details = await Promise.all(
        tasks.map((t) =>
          call("DescribeTaskDetail", { TaskId: t.TaskId }).catch(() => null),
        ),
      );
      const rows = tasks.map((t, index) => {
        const task = procedureOf(details[index] || {}) || {};
        const subtasks = subtasksOf(task);
        const progress = subtasks.length
          ? Math.round(subtasks.reduce((sum, s) => sum + (s.Progress || 0), 0) / subtasks.length)
          : 0;
        const failures = subtasks.filter((s) => s.Status === "FAIL");
        if (task.ErrCode) failures.unshift(task);
        // A bar only while the task runs; once final, each subtask's own outcome.
        const state = unfinished(t.Status)
          ? [h("progress", { max: 100, value: progress, "aria-label": `Progress of ${t.TaskId}` }), ` ${progress}%`]
          : subtasks.map((s) => statusBadge(s.Status));
        return h(
          "tr",
          {},
          h("td", { "data-label": "Task" }, h("a", { href: link("tasks", t.TaskId), class: "mono task-id", title: t.TaskId }, t.TaskId)),
          h("td", { "data-label": "Status" }, taskBadge(t.Status, task, subtasks)),
          h("td", { "data-label": "Subtasks", class: "subtask-states" }, state),
          h("td", { "data-label": "Media" }, t.FileId ? h("a", { href: link("media", t.FileId) }, t.FileId) : "—"),
          h("td", { "data-label": "Created" }, t.CreateTime),
          h(
            "td",
            { "data-label": "Errors" },
            failures.map((f) => h("div", { class: "error-text" }, errorLine(f))),
          ),
        );
      });
      list.replaceChildren(
        tasks.length
          ? h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["Task", "Status", "Subtasks", "Media", "Created", "Errors"].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, rows),
            )
          : h("p", { class: "muted" }, "No tasks (tasks are kept for 3 days)."),
      );
      refreshing.textContent = pending.length ? `Refreshing every 2 s while ${pending.length} task(s) run…` : "";
      if (!stopped && pending.length) timer = setTimeout(load, REFRESH_MS);
    } catch (error) {
      showError(message, error);
    }
  }

  filter.input.addEventListener("change", () => {
    sessionStorage.setItem(FILTER, filter.input.value);
    load();
  });
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function renderTasks(root, args) {
  return args[0] ? renderDetail(root, args[0]) : renderList(root);
}
