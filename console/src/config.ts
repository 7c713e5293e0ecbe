// `config.json` beside index.html: the API's address and the environment's name. Written at
// deploy time (make deploy, make dev), never baked into the build.
export interface ConsoleConfig {
  /** The API stage's base URL; empty when the API answers on the console's own origin. */
  api: string;
  env: 'local' | 'aws' | string;
}

let loaded: ConsoleConfig = { api: '', env: 'local' };

export const config = () => loaded;

export async function loadConfig(): Promise<ConsoleConfig> {
  const resp = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: 'no-store' });
  if (!resp.ok) throw new Error(`config.json answered ${resp.status}`);
  const raw = (await resp.json()) as Partial<ConsoleConfig>;
  loaded = { api: (raw.api ?? '').replace(/\/+$/, ''), env: raw.env ?? 'local' };
  return loaded;
}
