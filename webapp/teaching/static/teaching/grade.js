// Keyboard-driven grading: one criterion is current; keys set its verdict or move on.
(function () {
  "use strict";
  const form = document.getElementById("grade-form");
  if (!form) return;
  const items = Array.from(form.querySelectorAll("li.criterion"));
  const progress = form.querySelector("[data-progress]");
  let current = 0;

  function verdictOf(li) {
    const checked = li.querySelector("input[type=radio]:checked");
    return checked ? checked.value : "";
  }

  function refresh() {
    let answered = 0;
    items.forEach((li, i) => {
      const v = verdictOf(li);
      if (v) answered += 1;
      li.classList.toggle("current", i === current);
      li.classList.toggle("answered", !!v);
      const ai = li.dataset.ai;
      const over = (ai === "met" || ai === "not_met") && v && v !== ai;
      li.classList.toggle("overridden", over);
      li.querySelector(".overridden-flag").hidden = !over;
    });
    // Show the current criterion's evidence on its plane's image.
    document.querySelectorAll("section.plane").forEach((section) => {
      const li = items[current];
      const mine = li && section.contains(li);
      section.querySelectorAll("rect[data-box]").forEach((r) => {
        r.classList.toggle("shown", mine && r.dataset.box === li.dataset.key);
      });
      const cap = section.querySelector("[data-caption]");
      if (cap) cap.textContent = mine ? li.dataset.evidence || "" : "";
    });
    if (progress) progress.textContent = `${answered} of ${items.length} criteria answered`;
  }

  function go(i) {
    current = Math.max(0, Math.min(items.length - 1, i));
    refresh();
    items[current].scrollIntoView({ block: "nearest" });
  }

  function setVerdict(value) {
    const input = items[current].querySelector(`input[value="${value}"]`);
    if (input) input.checked = true;
    refresh();
    if (current < items.length - 1) go(current + 1);
  }

  const keymap = {
    "1": "met", m: "met", "2": "not_met", n: "not_met", "3": "not_applicable", a: "not_applicable",
  };

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text"));
    if (typing) {
      if (ev.key === "Escape") { t.blur(); ev.preventDefault(); }
      // Enter in a one-line comment box submits like the form would; in the textarea it is a newline.
      return;
    }
    if (ev.key === "j" || ev.key === "ArrowDown") { go(current + 1); ev.preventDefault(); }
    else if (ev.key === "k" || ev.key === "ArrowUp") { go(current - 1); ev.preventDefault(); }
    else if (keymap[ev.key]) { setVerdict(keymap[ev.key]); ev.preventDefault(); }
    else if (ev.key === "c") { items[current].querySelector(".crit-comment").focus(); ev.preventDefault(); }
    else if (ev.key === "Enter") { ev.preventDefault(); form.requestSubmit(); }
  });

  items.forEach((li, i) => {
    li.addEventListener("click", () => { current = i; refresh(); });
    li.addEventListener("change", refresh);
  });
  // Start at the first criterion the AI could not pre-fill (it needs a person), else the first.
  const firstOpen = items.findIndex((li) => !verdictOf(li));
  go(firstOpen >= 0 ? firstOpen : 0);
})();
