// Shows whether a live (SSE) view is connected, so a projector never shows a stale board
// without saying so. Works with htmx's SSE extension; elements: [data-live-status].
(function () {
  function show(text, state) {
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = text;
      el.dataset.state = state;
    });
  }
  document.addEventListener("htmx:sseOpen", function () { show("live", "open"); });
  document.addEventListener("htmx:sseError", function () { show("connection lost, reconnecting…", "error"); });
  document.addEventListener("htmx:sseClose", function () { show("disconnected", "error"); });
})();
