// Small helpers for keyboard use; every page also works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Language and site switches apply on change (the Switch button stays for keyboards
  // and for browsers without scripts).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  // A keyboard-wedge scanner ends each code with Enter: in a field that has a next field,
  // Enter moves on instead of submitting half a form.
  for (const input of document.querySelectorAll("input[data-next]")) {
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const next = document.getElementById(input.dataset.next);
      if (!next) return;
      event.preventDefault();
      next.focus();
      if (next.select) next.select();
    });
  }
  // On the scan page, put the cursor in the first field still empty.
  const form = document.getElementById("scan-form");
  if (form) {
    const empty = ["location", "expected_unit", "scanned"]
      .map((id) => document.getElementById(id))
      .find((el) => el && el.value === "");
    (empty || document.getElementById("scanned")).focus();
  }
  // After a refusal, the cursor goes to the field it names (its message is beside it).
  const invalid = document.querySelector("[aria-invalid='true']");
  if (invalid) invalid.focus();
});
