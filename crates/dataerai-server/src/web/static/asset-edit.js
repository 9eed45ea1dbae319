// The asset page's edit form: the metadata text is checked as JSON before
// the form is sent, and a mistake is shown under the field (the server
// checks it again and answers with its ERR_* message either way).

function check(textarea, message) {
  const text = textarea.value.trim();
  let problem = "";
  if (text !== "") {
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        problem = 'Metadata must be a JSON object, e.g. {"sample": "SrRuO3"}.';
      }
    } catch (e) {
      problem = `Metadata is not valid JSON: ${e.message}`;
    }
  }
  textarea.setCustomValidity(problem);
  textarea.setAttribute("aria-invalid", problem ? "true" : "false");
  message.textContent = problem;
  message.hidden = !problem;
  return !problem;
}

for (const form of document.querySelectorAll("form.edit-form")) {
  const textarea = form.querySelector("textarea[name=metadata]");
  const message = form.querySelector(".field-error");
  if (!textarea || !message) continue;
  form.addEventListener("submit", (e) => {
    if (!check(textarea, message)) {
      e.preventDefault();
      textarea.focus();
    }
  });
  textarea.addEventListener("input", () => {
    if (textarea.getAttribute("aria-invalid") === "true") check(textarea, message);
  });
}
