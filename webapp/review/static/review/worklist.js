// Worklist: keyboard navigation (j/k, Enter, / to search, n for the next exam to review) and
// live analysis progress for exams still being analysed (one batched poll of the analysis app's
// progress endpoint for the whole page).
const script = document.getElementById('worklist-script');
const rows = [...document.querySelectorAll('#worklist tbody tr[data-exam]')];
let index = -1;

function select(i) {
  if (!rows.length) return;
  index = Math.max(0, Math.min(rows.length - 1, i));
  rows.forEach((r) => r.classList.remove('selected'));
  rows[index].classList.add('selected');
  rows[index].focus({ preventScroll: false });
}

rows.forEach((row, i) => row.addEventListener('click', (e) => {
  if (e.target.closest('a')) return;
  select(i);
  location.href = row.dataset.href;
}));

document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea, select') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'j') select(index + 1);
  else if (e.key === 'k') select(index - 1);
  else if (e.key === 'Enter' && index >= 0) location.href = rows[index].dataset.href;
  else if (e.key === '/') document.getElementById('wl-search').focus();
  else if (e.key === 'n' && script.dataset.nextUrl) location.href = script.dataset.nextUrl;
  else return;
  e.preventDefault();
});

async function poll() {
  const active = rows.filter((r) => r.dataset.active === '1');
  if (!active.length) return;
  try {
    const ids = active.map((r) => r.dataset.exam).join(',');
    const resp = await fetch(`${script.dataset.progressUrl}?ids=${ids}`, { credentials: 'same-origin' });
    const data = await resp.json();
    for (const row of active) {
      const info = data.exams[row.dataset.exam];
      const p = info?.run;
      if (!p) continue;
      const cell = row.querySelector('.progress-cell');
      const active = ['queued', 'analysing', 'finalizing'].includes(p.status);
      if (active) {
        cell.innerHTML = '';
        const bar = document.createElement('progress');
        bar.max = p.frames_total || 1;
        bar.value = p.frames_done;
        const note = document.createElement('small');
        note.textContent = ` ${p.stage_display} ${p.frames_done}/${p.frames_total}`;
        cell.append(bar, note);
      } else {
        row.dataset.active = '';
        cell.textContent = p.status === 'failed' ? 'failed' : 'done';
        const status = row.querySelector('.status');
        status.textContent = info.status_display;
        status.className = `status status-${info.status}`;
      }
    }
  } catch {
    /* the next poll tries again */
  }
  setTimeout(poll, 2000);
}
setTimeout(poll, 2000);
