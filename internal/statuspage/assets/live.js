// Refetches the page's live part every few seconds and swaps it in, so
// the page follows the agent without a reload.
(function () {
  var every = 2000;
  var live = document.getElementById("live");
  var stamp = document.getElementById("updated");
  function tick() {
    fetch(location.pathname + "?part=live", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        document.body.classList.remove("stale");
        var at = live.querySelector("[data-rendered]");
        stamp.textContent = "live, updated " + (at ? at.dataset.rendered : "");
      })
      .catch(function (err) {
        document.body.classList.add("stale");
        stamp.textContent = "not updating (" + err.message + "), retrying";
      })
      .finally(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
