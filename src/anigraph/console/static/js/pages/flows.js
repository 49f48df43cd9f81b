// Task flows: procedure templates made of animated-graphics steps.
import { call } from "../api.js";
import { field, h, input, notice, showError, showInfo } from "../ui.js";

function flowForm(flow, templates, onDone) {
  const editing = Boolean(flow);
  const steps = new Map(
    (flow?.MediaProcessTask?.AnimatedGraphicTaskSet || []).map((s) => [s.Definition, s]),
  );
  const name = field("Name", input({ value: flow?.Name || "", required: true, readonly: editing || undefined }));
  const comment = field("Comment", input({ value: flow?.Comment || "" }));
  const rows = templates.map((t) => {
    const step = steps.get(t.Definition);
    const box = input({ type: "checkbox", id: `flow-tpl-${t.Definition}`, checked: Boolean(step) });
    const label = t.Name || String(t.Definition);
    const start = input({ type: "number", min: 0, step: "0.01", value: step?.StartTimeOffset ?? "", "aria-label": `Start of ${label}` , placeholder: "start s" });
    const end = input({ type: "number", min: 0, step: "0.01", value: step?.EndTimeOffset ?? "", "aria-label": `End of ${label}`, placeholder: "end s" });
    return {
      definition: t.Definition,
      box,
      start,
      end,
      row: h("div", { class: "step" }, h("label", { class: "check", for: box.id }, box, ` ${label} (${t.Definition}, ${t.Format})`), start, end),
    };
  });
  const message = notice();
  const submit = h("button", { type: "submit" }, editing ? "Save" : "Create task flow");
  const form = h(
    "form",
    { class: "card", "aria-label": editing ? `Edit task flow ${flow.Name}` : "New task flow" },
    h("h2", {}, editing ? `Edit task flow ${flow.Name}` : "New task flow"),
    h("div", { class: "grid" }, name.row, comment.row),
    h("fieldset", {}, h("legend", {}, "Templates (optional start/end in seconds)"), rows.map((r) => r.row)),
    h(
      "div",
      { class: "actions" },
      submit,
      editing ? h("button", { type: "button", class: "secondary", onclick: () => onDone(false) }, "Cancel") : null,
    ),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const set = rows
      .filter((r) => r.box.checked)
      .map((r) => {
        const step = { Definition: r.definition };
        if (r.start.value !== "") step.StartTimeOffset = Number(r.start.value);
        if (r.end.value !== "") step.EndTimeOffset = Number(r.end.value);
        return step;
      });
    const params = {
      Name: name.input.value.trim(),
      Comment: comment.input.value,
      MediaProcessTask: { AnimatedGraphicTaskSet: set },
    };
    submit.disabled = true;
    try {
      await call(editing ? "ResetProcedureTemplate" : "CreateProcedureTemplate", params);
      showInfo(message, editing ? "Saved." : `Created task flow ${params.Name}.`);
      onDone(true);
    } catch (error) {
      if (/\.Name$/.test(error.code || "")) {
        name.error.textContent = error.message;
        name.input.setAttribute("aria-invalid", "true");
      } else {
        showError(message, error);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function renderFlows(root) {
  const message = notice();
  const formSlot = h("div", {});
  const list = h("div", { class: "flows" });
  root.append(h("h1", {}, "Task flows"), message, formSlot, h("h2", {}, "All task flows"), list);
  let templates = [];

  function showCreate() {
    formSlot.replaceChildren(flowForm(null, templates, (changed) => changed && load()));
  }

  async function load() {
    try {
      const [flows, tpl] = await Promise.all([
        call("DescribeProcedureTemplates", { Limit: 100 }),
        call("DescribeAnimatedGraphicsTemplates", { Limit: 100 }),
      ]);
      templates = tpl.AnimatedGraphicsTemplateSet;
      if (!formSlot.firstChild) showCreate();
      list.replaceChildren(
        ...(flows.ProcedureTemplateSet.length
          ? flows.ProcedureTemplateSet.map((f) => {
              const steps = f.MediaProcessTask?.AnimatedGraphicTaskSet || [];
              return h(
                "div",
                { class: "card" },
                h("h3", {}, f.Name, " ", h("span", { class: "badge" }, f.Type)),
                f.Comment ? h("p", {}, f.Comment) : null,
                h(
                  "ul",
                  {},
                  steps.map((s) => h("li", {}, `Template ${s.Definition}: ${s.StartTimeOffset ?? 0}–${s.EndTimeOffset || "end"} s`)),
                ),
                f.Type === "Custom"
                  ? h(
                      "div",
                      { class: "actions" },
                      h("button", { type: "button", class: "secondary", "aria-label": `Edit ${f.Name}`, onclick: () => {
                        formSlot.replaceChildren(flowForm(f, templates, (changed) => { showCreate(); if (changed) load(); }));
                        formSlot.scrollIntoView({ block: "start" });
                      } }, "Edit"),
                      h("button", { type: "button", class: "danger", "aria-label": `Delete ${f.Name}`, onclick: async () => {
                        if (!confirm(`Delete task flow ${f.Name}?`)) return;
                        try {
                          await call("DeleteProcedureTemplate", { Name: f.Name });
                          showInfo(message, `Deleted task flow ${f.Name}.`);
                          load();
                        } catch (error) {
                          showError(message, error);
                        }
                      } }, "Delete"),
                    )
                  : null,
              );
            })
          : [h("p", { class: "muted" }, "No task flows yet.")]),
      );
    } catch (error) {
      showError(message, error);
    }
  }
  await load();
}
