// Concordat's only script: start GOV.UK Frontend's components. Every page works without it.
import { initAll } from "/assets/govuk-frontend.min.js";

document.body.classList.add("govuk-frontend-supported");
initAll();
