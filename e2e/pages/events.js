// Records the element's events and the page's Content Security Policy violations, from a
// script file rather than inline, so that it runs under a strict policy too.
window.shelfcastEvents = [];
window.cspViolations = [];
for (const name of ["change", "reserved", "released", "error", "store-chosen"]) {
  document.addEventListener(`shelfcast:${name}`, (e) => window.shelfcastEvents.push({ name, detail: e.detail, id: e.target.id }));
}
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
