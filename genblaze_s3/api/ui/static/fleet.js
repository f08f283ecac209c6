// The fleet page follows the fleet: workers and queues refresh from /ui/fleet.json
// every 2 s (the same snapshot /v1/fleet and /metrics read). Text only: no innerHTML.
function cell(text){ const td = document.createElement('td'); td.textContent = text; return td; }
function ago(s){ if(s===null||s===undefined) return '-'; return s < 120 ? Math.round(s)+' s' : (s < 7200 ? Math.round(s/60)+' min' : (s/3600).toFixed(1)+' h'); }
async function refresh(){
  const r = await fetch('/ui/fleet.json', {credentials:'same-origin'});
  if(!r.ok) return;
  const f = await r.json();
  const wb = document.querySelector('#workers tbody'); wb.replaceChildren();
  let alive = 0;
  for(const w of f.workers){
    if(w.alive) alive++;
    const tr = document.createElement('tr'); tr.dataset.host = w.host;
    const badge = document.createElement('span'); badge.className = 'state ' + (w.alive ? 'alive' : 'dead');
    badge.dataset.state = ''; badge.textContent = w.alive ? 'alive' : 'dead';
    const st = document.createElement('td'); st.appendChild(badge);
    const act = cell(w.active); act.dataset.active = '';
    tr.append(cell(w.host), st, cell(w.pool), cell(w.concurrency), act,
      cell(w.active_jobs.slice(0,3).join(', ')), cell(w.processed), cell(ago(w.seconds_since_heartbeat)+' ago'));
    wb.appendChild(tr);
  }
  document.getElementById('workers-alive').textContent = alive;
  for(const q of f.queues){
    const row = document.querySelector('#queues tr[data-queue="' + CSS.escape(q.name) + '"]');
    if(!row) continue;
    row.querySelector('[data-depth]').textContent = q.depth === null ? '-' : q.depth;
    row.querySelector('[data-oldest]').textContent = ago(q.oldest_age_seconds);
  }
  const five = f.rates[0];
  document.getElementById('rate-assets').textContent = five.assets_per_second.toFixed(2);
  document.getElementById('rate-failed').textContent = (100*five.failure_rate).toFixed(1) + '%';
}
setInterval(refresh, 2000);
