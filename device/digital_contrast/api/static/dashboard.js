// Draws the dashboard's charts from the JSON the server embedded in the page
// (<script type="application/json" id="dashboard-data">). A static file, not an inline script:
// the page's Content-Security-Policy allows scripts from the service itself only.
"use strict";

(function () {
  const source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  // Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
  const COLOURS = { emitted: "#d55e00", potential: "#0072b2", confirmed: "#009e73",
                    jobs: "#56606b" };
  Chart.defaults.animation = false; // a report drawn once; stable for print and screenshots
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = "system-ui, sans-serif";

  const kg = (text, position) => ({
    type: "linear", position: position, beginAtZero: true,
    title: { display: true, text: text },
    grid: { drawOnChartArea: position === "left" },
  });
  // Emitted compute is orders of magnitude below the avoided footprint: its own axis (right),
  // named in the legend, so that neither series is flattened to zero.
  const scales = { y: kg("avoided kg CO2e", "left"), y1: kg("emitted kg CO2e", "right") };
  const avoidedAndEmitted = (rows) => [
    { label: "Potential avoided (kg CO2e, left)", data: rows.map((r) => r.potential_avoided_kg_co2e),
      backgroundColor: COLOURS.potential, borderColor: COLOURS.potential, yAxisID: "y" },
    { label: "Confirmed avoided (kg CO2e, left)", data: rows.map((r) => r.confirmed_avoided_kg_co2e),
      backgroundColor: COLOURS.confirmed, borderColor: COLOURS.confirmed, yAxisID: "y" },
    { label: "Emitted by compute (kg CO2e, right)", data: rows.map((r) => r.emissions_kg_co2e),
      backgroundColor: COLOURS.emitted, borderColor: COLOURS.emitted, yAxisID: "y1" },
  ];

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  draw("chart-timeseries", {
    type: "line",
    data: { labels: data.series.map((r) => r.start), datasets: avoidedAndEmitted(data.series) },
    options: { scales: scales, interaction: { mode: "index", intersect: false } },
  });
  for (const [id, rows, key] of [["chart-model-version", data.by_model_version, "model_version"],
                                 ["chart-use-case", data.by_use_case, "use_case"]]) {
    draw(id, {
      type: "bar",
      data: { labels: rows.map((r) => r[key]), datasets: avoidedAndEmitted(rows) },
      options: { scales: scales },
    });
  }
  const kwh = (value) => value.toFixed(4);
  draw("chart-energy", {
    type: "bar",
    data: {
      labels: data.energy_histogram.map((b) => `${kwh(b.from_kwh)}-${kwh(b.to_kwh)}`),
      datasets: [{ label: "Jobs", data: data.energy_histogram.map((b) => b.jobs),
                   backgroundColor: COLOURS.jobs, barPercentage: 1, categoryPercentage: 1 }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: { x: { title: { display: true, text: "compute energy per scan (kWh)" } },
                y: { beginAtZero: true, ticks: { precision: 0 },
                     title: { display: true, text: "jobs" } } },
    },
  });
})();
