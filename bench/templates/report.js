"use strict";
// The report's only script: sortable tables and the live framework chooser. The chooser reads the per-criterion
// scores the report computed (bench/report/choose.py) and only takes their weighted mean, the formula the page
// explains; without this script the page shows the same ranking under the default weights.
(function () {
  document.documentElement.classList.replace("no-js", "js");

  function sortKey(cell) {
    if (cell.dataset.value === undefined) return cell.textContent.trim().toLowerCase();
    return cell.dataset.value === "" ? null : Number(cell.dataset.value);
  }

  function sortTable(header) {
    const table = header.closest("table");
    const column = Array.prototype.indexOf.call(header.parentNode.children, header);
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th[aria-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = sortKey(a.cells[column]), y = sortKey(b.cells[column]);
      if (x === null || y === null) return (x === null) - (y === null);  // a missing value always sorts last
      const order = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  document.querySelectorAll("th[data-sort]").forEach(function (header) {
    header.tabIndex = 0;
    header.addEventListener("click", function () { sortTable(header); });
    header.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(header); }
    });
  });

  const source = document.getElementById("choose-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const sliders = Array.from(document.querySelectorAll("input[data-criterion]"));
  const buttons = Array.from(document.querySelectorAll("button[data-preset]"));

  // The same weighted mean as choose.total: missing scores count as 0, unmeasured criteria are left out.
  function total(scores, weights, measured) {
    let weightSum = 0, sum = 0;
    measured.forEach(function (key) {
      weightSum += weights[key] || 0;
      sum += (weights[key] || 0) * (scores[key] || 0);
    });
    return weightSum > 0 ? sum / weightSum : 0;
  }

  function currentWeights() {
    const weights = {};
    sliders.forEach(function (slider) { weights[slider.dataset.criterion] = Number(slider.value); });
    return weights;
  }

  function rerank(table, setting, weights) {
    const entries = setting.entries.map(function (entry) {
      return { label: entry.label, contended: entry.contended, total: total(entry.scores, weights, setting.measured) };
    });
    // As choose.rank and html.ranked: entries measured under contention last and without a rank.
    entries.sort(function (a, b) {
      return (a.contended - b.contended) || b.total - a.total || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    });
    const body = table.tBodies[0];
    const rows = new Map();
    Array.from(body.rows).forEach(function (row) { if (row.dataset.label !== undefined) rows.set(row.dataset.label, row); });
    const best = [];
    entries.forEach(function (entry) {
      const row = rows.get(entry.label);
      const rank = entry.contended ? null : 1 + entries.filter(function (other) {
        return !other.contended && other.total > entry.total + 1e-12;
      }).length;
      const shown = Math.floor(entry.total * 100 + 0.5);
      row.querySelector(".rank").textContent = rank === null ? "—" : String(rank);
      row.querySelector(".score .value").textContent = String(shown);
      row.querySelector(".scorebar").style.width = shown + "px";
      body.appendChild(row);
      if (rank === 1) best.push(entry.label);
    });
    Array.from(body.rows).forEach(function (row) { if (row.dataset.unranked !== undefined) body.appendChild(row); });
    table.querySelectorAll("[data-criterion]").forEach(function (cell) {
      cell.classList.toggle("off", !weights[cell.dataset.criterion]);
    });
    return best;
  }

  function update() {
    const weights = currentWeights();
    sliders.forEach(function (slider) { slider.parentNode.querySelector("output").textContent = slider.value; });
    const preset = Object.keys(data.presets).find(function (name) {
      return data.criteria.every(function (c) { return data.presets[name][c.key] === weights[c.key]; });
    });
    buttons.forEach(function (button) { button.setAttribute("aria-pressed", String(button.dataset.preset === preset)); });
    document.querySelectorAll("table[data-ranking]").forEach(function (table) {
      const setting = data.settings[table.dataset.ranking];
      if (!setting) return;
      const best = rerank(table, setting, weights);
      const pick = table.closest(".ranking-block").querySelector("[data-pick] strong");
      if (pick) pick.textContent = best.join(", ") || "—";
    });
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      const preset = data.presets[button.dataset.preset];
      sliders.forEach(function (slider) { slider.value = String(preset[slider.dataset.criterion]); });
      update();
    });
  });
  sliders.forEach(function (slider) { slider.addEventListener("input", update); });
  update();
})();
