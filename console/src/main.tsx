import { render } from 'preact';
import { App } from './App';
import { loadConfig } from './config';
import { session } from './session';
import './styles.css';

// A mailed link's token is in the fragment: take it and clear the address bar before anything
// else runs, so it is never in history, a screenshot of the bar, or a Referer.
const fragment = new URLSearchParams(location.hash.slice(1));
const mailedToken = fragment.get('token');
if (location.hash) history.replaceState(null, '', location.pathname + location.search);

async function start() {
  const root = document.getElementById('app')!;
  try {
    await loadConfig();
  } catch (e) {
    root.innerHTML = '';
    const p = document.createElement('p');
    p.className = 'boot';
    p.textContent = `The console cannot start: ${(e as Error).message}`;
    root.append(p);
    return;
  }
  await session.init();
  root.textContent = '';
  render(<App mailedToken={mailedToken} />, root);
}

void start();
