// The Jupyter widget manager (html-manager 1.0.x) typesets widget labels with MathJax 2's
// MathJax.Hub.Queue; Sphinx loads MathJax 3, which has no Hub, so every widget label would throw.
// Map the old call onto MathJax 3's typesetPromise. Loaded (deferred) right after MathJax.
(function () {
  if (!window.MathJax || window.MathJax.Hub) { return; }
  window.MathJax.Hub = {
    Queue: function () {
      var job = arguments[0];
      var element = Array.isArray(job) ? job[2] : undefined;
      if (window.MathJax.typesetPromise) {
        window.MathJax.typesetPromise(element ? [element] : undefined).catch(function () {});
      }
    }
  };
})();
