// Concordat's only script: start GOV.UK Frontend's components. Every page works without it.
import { initAll } from "/assets/govuk-frontend.min.js";

document.body.classList.add("govuk-frontend-supported");
initAll();

// A page showing a long task's progress asks to be reloaded until the task is done.
const refresh = document.querySelector("[data-app-refresh]");
if (refresh) {
  setTimeout(() => window.location.reload(), Number(refresh.dataset.appRefresh) || 1000);
}
