const jobId = document.body.querySelector('[data-job]').dataset.job;
const es = new EventSource('/ui/jobs/' + jobId + '/events');
function fmt(n){ if(n===null||n===undefined) return '?'; const u=['B','KiB','MiB','GiB','TiB'];
  let i=0, v=n; while(v>=1024 && i<4){v/=1024;i++} return i? v.toFixed(1)+' '+u[i] : v+' B'; }
function retrying(a){  // an asset between two tries (humanize.retry_note, the same words)
  const r = a.retry; if(!r) return '';  // the store drops it when the asset ends
  const wait = Math.floor((Date.parse(r.next_try_at) - Date.now())/1000);
  const e = r.last_error, why = e.message ? e.code + ': ' + e.message : e.code;
  return 'retrying: try ' + r.attempt + ' of ' + r.of + (wait > 0 ? ' in ' + wait + 's' : ' now') + ' (' + why + ')';
}
function apply(e){
  const d = JSON.parse(e.data), p = d.progress;
  const pct = (p.assets_total && p.assets_done===p.assets_total) ? 100 :
    (p.bytes_total ? Math.min(100, Math.floor(100*p.bytes_done/p.bytes_total)) :
    (p.assets_total ? Math.floor(100*p.assets_done/p.assets_total) : 100));
  document.getElementById('pct').textContent = pct + '%';
  // views.Bar: a failed job is red where its assets did not store; failed assets are red.
  const c = d.counts || {}, stored = (c.stored||0) + (c.deduplicated||0), bad = c.failed||0, t = p.assets_total;
  let ok = pct, red = (t && bad) ? Math.ceil(100*bad/t) : 0;
  if(d.state === 'failed'){ ok = t ? Math.floor(100*stored/t) : 0; red = 100 - ok; } else { ok = Math.min(pct, 100 - red); }
  document.querySelector('#summary [data-bar]').style.width = ok + '%';
  document.querySelector('#summary [data-bar-failed]').style.width = red + '%';
  const s = document.querySelector('#summary [data-state]'); s.textContent = d.state; s.className='state '+d.state;
  document.getElementById('assets-done').textContent = p.assets_done + '/' + p.assets_total;
  document.getElementById('bytes').textContent = fmt(p.bytes_done) + ' / ' + fmt(p.bytes_total);
  for(const a of d.assets){
    const row = document.getElementById('a-' + a.asset_id); if(!row) continue;
    const st = row.querySelector('[data-state]'); st.textContent = a.state; st.className='state '+a.state;
    row.querySelector('[data-bytes]').textContent = fmt(a.bytes_done) + ' / ' + fmt(a.bytes_total);
    row.querySelector('[data-err]').textContent = a.error ? a.error.code + ': ' + a.error.message : retrying(a);
  }
  if(['succeeded','failed','canceled'].includes(d.state)){ es.close(); setTimeout(()=>location.reload(), 300); }
}
es.addEventListener('job', apply); es.addEventListener('delta', apply);
