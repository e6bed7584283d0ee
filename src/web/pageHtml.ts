/** The HTML of the exported page: layout and styles; `page.ts` (bundled as `app.js`) fills it in. */

const STYLE = `
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --accent:#3b5bdb; --bg:#f7f8fa; --card:#fff; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { padding: 18px 28px 12px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { font-size: 15px; margin: 0 0 10px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.muted { color: var(--muted); } .small { font-size: 12px; }
#meta, #status { font-size: 13px; }
main { display: grid; grid-template-columns: 320px 1fr; gap: 20px; padding: 20px 28px; }
section.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px; margin-bottom: 16px; }
#drop { display: block; border: 2px dashed #c5cbd6; border-radius: 10px; padding: 20px 12px; text-align: center; cursor: pointer; transition: background .15s; }
#drop.over { background: #eef2ff; border-color: var(--accent); }
#drop input { display: block; margin: 10px auto 0; }
.query-images { display: flex; gap: 12px; align-items: center; margin-top: 12px; }
#query-preview { width: 96px; height: 96px; object-fit: contain; background: #000; border: 1px solid var(--line); border-radius: 6px; image-rendering: pixelated; }
#model-input { width: 96px; height: 96px; border: 1px solid var(--line); border-radius: 6px; image-rendering: pixelated; }
label.control { display: block; margin: 10px 0 4px; font-size: 13px; color: var(--muted); }
select, input[type=number] { width: 100%; padding: 6px 8px; border: 1px solid #c5cbd6; border-radius: 6px; font: inherit; background: #fff; }
.predicted-path { font-size: 17px; margin: 0 0 10px; }
table.levels { width: 100%; border-collapse: collapse; font-size: 13px; }
table.levels th { text-align: left; font-weight: 600; padding: 4px 6px 4px 0; width: 28%; }
table.levels td { padding: 4px 6px 4px 0; }
tr.unanswered { color: var(--muted); }
td.bar-cell { width: 48%; white-space: nowrap; }
.track { display: inline-block; width: 96px; height: 10px; background: #eef0f3; border-radius: 5px; vertical-align: middle; overflow: hidden; }
.bar { display: block; height: 100%; background: var(--accent); }
tr.unanswered .bar { background: #c5cbd6; }
.pct { margin-left: 6px; font-variant-numeric: tabular-nums; }
#results { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
figure.hit { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 10px; cursor: pointer; }
figure.hit:hover { border-color: var(--accent); }
.thumb { display: block; width: 100%; aspect-ratio: 1; object-fit: contain; background: #000; border-radius: 6px; image-rendering: pixelated; }
.thumb.placeholder { display: grid; place-items: center; background: #eef0f3; color: var(--muted); font-size: 12px; }
figcaption { display: grid; grid-template-columns: auto 1fr; gap: 0 8px; margin-top: 8px; font-size: 13px; }
figcaption .score { text-align: right; font-variant-numeric: tabular-nums; }
figcaption .label, figcaption .id { grid-column: 1 / -1; word-break: break-word; }
#error { background: #fff1f0; border: 1px solid #ffccc7; color: #a8071a; border-radius: 8px; padding: 10px 12px; margin: 12px 28px 0; }
#timing { font-size: 12px; }
.empty { color: var(--muted); padding: 40px 0; text-align: center; }
main.has-results .empty { display: none; }
`;

/** Escapes text for HTML. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The exported `index.html`: loads `site-config.js` then `app.js` as classic scripts (file://
 * allows those, not modules); `app.js` adds `site-data.js` only when it cannot fetch the plain files.
 */
export function pageHtml(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1 id="title">${escapeHtml(title)}</h1>
  <div id="meta" class="muted">loading the index and the model…</div>
  <div id="status" class="muted"></div>
</header>
<div id="error" role="alert" hidden></div>
<main>
  <aside>
    <section class="panel">
      <h2>Query</h2>
      <label id="drop" for="file">Drop an image here, or choose a file
        <input id="file" type="file" accept="image/*">
      </label>
      <div class="query-images">
        <img id="query-preview" alt="query image" hidden>
        <canvas id="model-input" width="28" height="28" title="what the model sees"></canvas>
        <span class="muted small">query · model input</span>
      </div>
      <label class="control" for="within">Search within</label>
      <select id="within"></select>
      <label class="control" for="group-by">Group results</label>
      <select id="group-by"></select>
      <label class="control" for="k">Results</label>
      <input id="k" type="number" min="1" max="100" value="10">
    </section>
    <section class="panel">
      <h2>Predicted path</h2>
      <div id="prediction" class="muted">—</div>
    </section>
  </aside>
  <section>
    <h2 id="results-title">Neighbours</h2>
    <div id="timing" class="muted"></div>
    <div class="empty">Results appear here. Click a result to search with it.</div>
    <div id="results"></div>
  </section>
</main>
<script src="site-config.js"></script>
<script src="app.js"></script>
</body>
</html>
`;
}
