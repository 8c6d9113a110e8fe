// The language switch submits itself when a language is picked (no inline handler: the
// Content-Security-Policy allows scripts from our own origin only).
document.querySelectorAll("form.language-switch select").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
