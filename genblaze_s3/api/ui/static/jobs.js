async function refresh(){
  const r = await fetch('/ui/jobs.json' + location.search, {credentials:'same-origin'});
  if(!r.ok) return;
  for(const j of (await r.json()).jobs){
    const row = document.getElementById('job-' + j.job_id);
    if(!row) continue;
    row.querySelector('[data-bar]').style.width = j.ok_pct + '%';
    row.querySelector('[data-bar-failed]').style.width = j.failed_pct + '%';
    row.querySelector('[data-pct]').textContent = j.percent + '%';
    const s = row.querySelector('[data-state]'); s.textContent = j.state; s.className = 'state ' + j.state;
    row.querySelector('[data-assets]').textContent = j.assets;
    row.querySelector('[data-size]').textContent = j.size;
  }
}
setInterval(refresh, 1500);
