// Media: upload (ApplyUpload → PUT to the COS endpoint → CommitUpload), a list searched with
// SearchMedia (name, newest first), a detail view with outputs, and DeleteMedia.
import { call } from "../api.js";
import { putObject } from "../cos.js";
import { link } from "../router.js";
import {
  field,
  forgetFileId,
  formatBytes,
  h,
  input,
  knownFileIds,
  notice,
  outputCard,
  rememberFileIds,
  select,
  showError,

} from "../ui.js";

function extension(name) {
  const match = /\.([A-Za-z0-9]{1,8})$/.exec(name);
  return match ? match[1].toLowerCase() : "mp4";
}

async function uploadForm(onUploaded) {
  const file = field("Video file", input({ type: "file", accept: "video/*", required: true }));
  let flows = [];
  try {
    flows = (await call("DescribeProcedureTemplates", { Limit: 100 })).ProcedureTemplateSet;
  } catch {
    flows = [];
  }
  const flow = field("Task flow", select([["", "None"], ...flows.map((f) => [f.Name, f.Name])]));
  const progress = h("progress", { max: 100, value: 0, "aria-label": "Upload progress" });
  const percent = h("span", { class: "muted" }, "");
  const message = notice();
  const button = h("button", { type: "submit" }, "Upload");
  const form = h(
    "form",
    { class: "card", "aria-label": "Upload" },
    h("h2", {}, "Upload"),
    h("div", { class: "grid" }, file.row, flow.row),
    h("div", { class: "actions" }, button, progress, percent),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.input.files[0];
    if (!chosen) return;
    button.disabled = true;
    progress.value = 0;
    try {
      const applied = await call("ApplyUpload", {
        MediaType: extension(chosen.name),
        MediaName: chosen.name.replace(/\.[^.]*$/, ""),
        Procedure: flow.input.value,
      });
      await putObject(applied.MediaStoragePath, chosen, applied.TempCertificate, (fraction) => {
        progress.value = Math.round(fraction * 100);
        percent.textContent = ` ${progress.value}%`;
      });
      const committed = await call("CommitUpload", { VodSessionKey: applied.VodSessionKey });
      rememberFileIds([committed.FileId]);
      message.className = "notice info";
      message.replaceChildren(
        `Uploaded: FileId ${committed.FileId}. `,
        h("a", { href: link("media", committed.FileId) }, "Details"),
        " · ",
        h("a", { href: link("tasks") }, "Tasks"),
      );
      onUploaded();
    } catch (error) {
      showError(message, error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

async function renderList(root) {
  const message = notice();
  const list = h("div", { class: "table-wrap" });
  root.append(h("h1", {}, "Media"), message);
  const search = h("input", { id: "media-search", type: "search", placeholder: "Part of a name" });
  const searchForm = h(
    "form",
    { class: "inline-form", role: "search" },
    h("label", { for: "media-search" }, "Search by name"),
    search,
    h("button", { type: "submit", class: "secondary" }, "Search"),
  );
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  root.append(await uploadForm(() => load()), h("h2", {}, "Media"), searchForm, list);

  async function load() {
    try {
      const name = search.value.trim();
      const answer = await call("SearchMedia", {
        Limit: 50,
        Filters: ["basicInfo", "metaData"],
        ...(name ? { Names: [name] } : {}),
      });
      if (!answer.MediaInfoSet.length) {
        list.replaceChildren(
          h("p", { class: "muted" }, name ? "No media matches." : "No media yet: upload a video."),
        );
        return;
      }
      list.replaceChildren(
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Name", "FileId", "Duration", "Size", ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            answer.MediaInfoSet.map((m) =>
              h(
                "tr",
                {},
                h("td", { "data-label": "Name" }, m.BasicInfo?.Name || ""),
                h("td", { "data-label": "FileId" }, h("a", { href: link("media", m.FileId), class: "mono" }, m.FileId)),
                h("td", { "data-label": "Duration" }, m.MetaData ? `${m.MetaData.Duration} s` : ""),
                h("td", { "data-label": "Size" }, m.MetaData ? formatBytes(m.MetaData.Size) : ""),
                h("td", { class: "actions" }, h("a", { href: link("process", m.FileId), class: "button secondary" }, "Process")),
              ),
            ),
          ),
        ),
      );
    } catch (error) {
      showError(message, error);
    }
  }
  await load();
}

async function renderDetail(root, fileId) {
  const message = notice();
  const body = h("div", {});
  root.append(h("p", {}, h("a", { href: link("media") }, "← All media")), h("h1", {}, "Media"), h("p", { class: "mono" }, fileId), message, body);
  try {
    const answer = await call("DescribeMediaInfos", { FileIds: [fileId] });
    const media = answer.MediaInfoSet[0];
    if (!media) {
      forgetFileId(fileId);
      showError(message, "This media does not exist (deleted?).");
      return;
    }
    const basic = media.BasicInfo || {};
    const meta = media.MetaData || {};
    const video = (meta.VideoStreamSet || [])[0] || {};
    const outputs = media.AnimatedGraphicsInfo?.AnimatedGraphicsSet || [];
    const remove = h("button", { type: "button", class: "danger" }, "Delete media");
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete media ${fileId} and all its outputs?`)) return;
      try {
        await call("DeleteMedia", { FileId: fileId });
        forgetFileId(fileId);
        location.hash = link("media");
      } catch (error) {
        showError(message, error);
      }
    });
    body.replaceChildren(
      h(
        "div",
        { class: "card" },
        h("h2", {}, basic.Name || fileId),
        h("video", { src: basic.MediaUrl, controls: true, preload: "metadata", class: "player", "aria-label": "Source video" }),
        h(
          "dl",
          { class: "facts" },
          ...[
            ["Type", basic.Type],
            ["Created", basic.CreateTime],
            ["Size", formatBytes(meta.Size)],
            ["Duration", `${meta.Duration} s`],
            ["Dimensions", `${meta.Width} × ${meta.Height}`],
            ["Video", `${video.Codec || "—"}, ${video.Fps ?? "?"} fps, ${meta.Bitrate} bit/s`],
            ["Container", meta.Container],
            ["Rotate", meta.Rotate],
            ["Audio streams", (meta.AudioStreamSet || []).length],
          ].flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value ?? "—"))]),
        ),
        h(
          "div",
          { class: "actions" },
          h("a", { href: link("process", fileId), class: "button" }, "Process"),
          h("a", { href: basic.MediaUrl, download: "", class: "button secondary" }, "Download source"),
          remove,
        ),
      ),
      h("h2", {}, `Animated outputs (${outputs.length})`),
      outputs.length ? h("div", { class: "outputs" }, outputs.map(outputCard)) : h("p", { class: "muted" }, "None yet."),
    );
  } catch (error) {
    showError(message, error);
  }
}

export function renderMedia(root, args) {
  return args[0] ? renderDetail(root, args[0]) : renderList(root);
}

