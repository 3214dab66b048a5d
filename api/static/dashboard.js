// The dashboard's only script of its own: draw the Mermaid graphs (after htmx swaps too).
// Pages work without it: the graph's source stays readable as text.
(function () {
  function draw() {
    if (window.mermaid) {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
      window.mermaid.run({ querySelector: "pre.mermaid:not([data-processed])" });
    }
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", draw);
})();
