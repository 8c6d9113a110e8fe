// The back office's small scripts, all from our own origin (the Content-Security-Policy allows
// no inline script): charts from JSON in the page, confirmations. (The language switch has its
// own, static/js/language.js, which the admin uses too.)

// <canvas data-chart="ID"> draws the chart whose Chart.js configuration is in the
// <script type="application/json" id="ID"> next to it (Django's json_script). Needs
// static/vendor/chartjs-*/chart.umd.min.js on the page (templates/includes/chart.html).
function chartsDraw(root) {
  if (typeof Chart === "undefined") return;
  root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    if (canvas.dataset.drawn) return;
    const source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    const config = JSON.parse(source.textContent);
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    new Chart(canvas, config);
    canvas.dataset.drawn = "1";
  });
}

// <form data-confirm="question"> asks before it submits.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => chartsDraw(document));
document.addEventListener("htmx:afterSettle", (event) => chartsDraw(event.target));

// Work queues: <input type="checkbox" data-select-all="NAME"> ticks or unticks every checkbox
// named NAME in its form (the rows of the page), for a bulk decision.
document.addEventListener("change", (event) => {
  const name = event.target.dataset && event.target.dataset.selectAll;
  if (!name || !event.target.form) return;
  event.target.form.querySelectorAll(`input[type=checkbox][name="${name}"]`).forEach((box) => {
    box.checked = event.target.checked;
  });
});
