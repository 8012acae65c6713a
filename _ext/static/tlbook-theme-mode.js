// pydata-sphinx-theme reads the colour mode from localStorage and logs a console error on a
// reader's first visit, when there is none yet. Start from "auto" (follow the system) instead.
if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }
