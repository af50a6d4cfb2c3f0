// A backtest's page while it runs: its state pushed by the console's one reader (SSE); the page
// reloads once the run is done or failed, to show the result or the reason.
(function () {
  "use strict";
  var status = document.getElementById("run-status");
  if (!status || !status.dataset.events) { return; }
  var elapsed = document.getElementById("run-elapsed");
  var source = new EventSource(status.dataset.events);
  source.addEventListener("backtest", function (event) {
    var state = JSON.parse(event.data);
    status.textContent = state.status;
    status.className = "status-" + state.status;
    elapsed.textContent = state.elapsed;
    if (state.finished) {
      source.close();
      window.location.reload();
    }
  });
  source.onerror = function () { elapsed.textContent = "disconnected, retrying…"; };
})();
