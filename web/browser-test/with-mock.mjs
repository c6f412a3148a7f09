// Runs the browser test against the mock API server (mock-server.mjs) on a free loopback port:
// checks the page itself when no cluster is up. `npm run build` first. The real check is
// `npm run test:browser` against the front service.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const mock = spawn(process.execPath, [here('./mock-server.mjs'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  mock.stdout.on('data', (d) => {
    out += d;
    const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
    if (m) resolve(m[1]);
  });
  mock.on('exit', (code) => reject(new Error(`mock server exited with ${code}`)));
});
console.log(`# mock service at ${url}`);
const test = spawn(process.execPath, ['--test', here('./run.mjs')], { stdio: 'inherit', env: { ...process.env, BASE_URL: url } });
const code = await new Promise((resolve) => test.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
mock.kill();
process.exit(code);
