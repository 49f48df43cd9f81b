// Templates: presets and custom animated-graphics templates; create, edit, delete custom ones.
import { call } from "../api.js";
import { field, h, input, notice, select, showError, showInfo } from "../ui.js";

// Which form field an InvalidParameterValue.<X> error belongs to.
const ERROR_FIELD = {
  Fps: "Fps",
  Quality: "Quality",
  Resolution: "Width",
  ResolutionAdaptive: "ResolutionAdaptive",
  FormatWebpLackWidthAndHeight: "Width",
  FormatWebpWidthAndHeightBothZero: "Width",
  Name: "Name",
  Comment: "Comment",
  Format: "Format",
  MaxSize: "MaxSize",
  QualityTarget: "QualityTarget",
  SegmentMode: "SegmentMode",
  Duration: "Duration",
  LoopMode: "LoopMode",
};

// The extension fields (docs/api.md) and their defaults, which are Tencent's behaviour; a
// template that uses none comes back without them.
const EXTENSION_DEFAULTS = { MaxSize: 0, QualityTarget: 0, SegmentMode: "Fixed", Duration: 3, LoopMode: "None" };

/** "MaxSize 500000 · LoopMode Boomerang": the extension fields a template sets, or "—". */
export function extensionSummary(t) {
  const set = Object.entries(EXTENSION_DEFAULTS)
    .filter(([name, fallback]) => t[name] !== undefined && t[name] !== fallback)
    .map(([name]) => `${name} ${t[name]}`);
  return set.length ? set.join(" · ") : "—";
}

export function fieldForError(code) {
  const match = /^InvalidParameterValue\.(.+)$/.exec(code || "");
  return match ? ERROR_FIELD[match[1]] || null : null;
}

function templateForm(template, onDone) {
  const editing = Boolean(template);
  const t = template || {
    Name: "",
    Format: "gif",
    Width: 0,
    Height: 0,
    ResolutionAdaptive: "open",
    Fps: 10,
    Quality: 75,
    Comment: "",
  };
  const ext = { ...EXTENSION_DEFAULTS, ...t };
  const fields = {
    Name: field("Name", input({ value: t.Name, maxlength: 64 })),
    Format: field("Format", select(["gif", "webp", "avif", "mp4"], t.Format), "avif, mp4: extensions"),
    Width: field("Width", input({ type: "number", min: 0, max: 4096, value: t.Width }), "0 = keep ratio"),
    Height: field("Height", input({ type: "number", min: 0, max: 4096, value: t.Height }), "0 = keep ratio"),
    ResolutionAdaptive: field("Resolution adaptive", select(["open", "close"], t.ResolutionAdaptive)),
    Fps: field("Fps", input({ type: "number", value: t.Fps }), "1–30"),
    Quality: field("Quality", input({ type: "number", step: "any", value: t.Quality }), "1–100"),
    Comment: field("Comment", input({ value: t.Comment, maxlength: 256 })),
    MaxSize: field("Max size (bytes)", input({ type: "number", min: 0, step: 1, value: ext.MaxSize }), "0 = no budget, else at least 10240"),
    QualityTarget: field("Quality target (SSIM)", input({ type: "number", min: 0, max: 0.99, step: "any", value: ext.QualityTarget }), "0 = off, else 0.80–0.99"),
    SegmentMode: field("Segment mode", select(["Fixed", "Highlight"], ext.SegmentMode), "Highlight: the best window"),
    Duration: field("Duration (s)", input({ type: "number", min: 0.5, max: 30, step: "any", value: ext.Duration }), "0.5–30, the Highlight window"),
    LoopMode: field("Loop mode", select(["None", "Seamless", "Crossfade", "Boomerang"], ext.LoopMode)),
  };
  const message = notice();
  const submit = h("button", { type: "submit" }, editing ? "Save" : "Create template");
  const form = h(
    "form",
    { class: "card", "aria-label": editing ? `Edit template ${t.Definition}` : "New template" },
    h("h2", {}, editing ? `Edit template ${t.Definition}` : "New template"),
    h("div", { class: "grid" }, Object.values(fields).map((f) => f.row)),
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
    for (const f of Object.values(fields)) {
      f.error.textContent = "";
      f.input.removeAttribute("aria-invalid");
    }
    message.textContent = "";
    message.className = "notice";
    const number = (name) => Number(fields[name].input.value || 0);
    const params = {
      Name: fields.Name.input.value,
      Format: fields.Format.input.value,
      Width: number("Width"),
      Height: number("Height"),
      ResolutionAdaptive: fields.ResolutionAdaptive.input.value,
      Fps: number("Fps"),
      Quality: number("Quality"),
      Comment: fields.Comment.input.value,
      MaxSize: number("MaxSize"),
      QualityTarget: number("QualityTarget"),
      SegmentMode: fields.SegmentMode.input.value,
      Duration: number("Duration"),
      LoopMode: fields.LoopMode.input.value,
    };
    if (editing) params.Definition = t.Definition;
    submit.disabled = true;
    try {
      const answer = await call(
        editing ? "ModifyAnimatedGraphicsTemplate" : "CreateAnimatedGraphicsTemplate",
        params,
      );
      showInfo(message, editing ? "Saved." : `Created template ${answer.Definition}.`);
      onDone(true);
    } catch (error) {
      const name = fieldForError(error.code);
      if (name && fields[name]) {
        fields[name].error.textContent = error.message;
        fields[name].input.setAttribute("aria-invalid", "true");
        fields[name].input.focus();
      } else {
        showError(message, error);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function renderTemplates(root) {
  const message = notice();
  const list = h("div", { class: "table-wrap" });
  const formSlot = h("div", {});
  root.append(h("h1", {}, "Templates"), message, formSlot, h("h2", {}, "All templates"), list);

  function showCreate() {
    formSlot.replaceChildren(templateForm(null, (changed) => changed && load()));
  }

  function edit(template) {
    formSlot.replaceChildren(
      templateForm(template, (changed) => {
        showCreate();
        if (changed) load();
      }),
    );
    formSlot.scrollIntoView({ block: "start" });
  }

  async function remove(template) {
    if (!confirm(`Delete template ${template.Definition} (${template.Name})?`)) return;
    try {
      await call("DeleteAnimatedGraphicsTemplate", { Definition: template.Definition });
      showInfo(message, `Deleted template ${template.Definition}.`);
      load();
    } catch (error) {
      showError(message, error);
    }
  }

  async function load() {
    try {
      const answer = await call("DescribeAnimatedGraphicsTemplates", { Limit: 100 });
      const rows = answer.AnimatedGraphicsTemplateSet.map((t) =>
        h(
          "tr",
          {},
          h("td", { "data-label": "Definition" }, String(t.Definition)),
          h("td", { "data-label": "Type" }, t.Type),
          h("td", { "data-label": "Name" }, t.Name),
          h("td", { "data-label": "Format" }, t.Format),
          h("td", { "data-label": "Size" }, `${t.Width}×${t.Height} (${t.ResolutionAdaptive})`),
          h("td", { "data-label": "Fps" }, String(t.Fps)),
          h("td", { "data-label": "Quality" }, String(t.Quality)),
          h("td", { "data-label": "Comment" }, t.Comment),
          h("td", { "data-label": "Extensions" }, extensionSummary(t)),
          h(
            "td",
            { class: "actions" },
            t.Type === "Custom"
              ? [
                  h("button", { type: "button", class: "secondary", onclick: () => edit(t), "aria-label": `Edit ${t.Name || t.Definition}` }, "Edit"),
                  h("button", { type: "button", class: "danger", onclick: () => remove(t), "aria-label": `Delete ${t.Name || t.Definition}` }, "Delete"),
                ]
              : "preset",
          ),
        ),
      );
      list.replaceChildren(
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h("tr", {}, ["Definition", "Type", "Name", "Format", "Size", "Fps", "Quality", "Comment", "Extensions", ""].map((c) => h("th", { scope: "col" }, c))),
          ),
          h("tbody", {}, rows),
        ),
        h("p", { class: "muted" }, `${answer.TotalCount} templates.`),
      );
    } catch (error) {
      showError(message, error);
    }
  }

  showCreate();
  await load();
}
