import { runSeed } from './sim.js';
Error.stackTraceLimit = Number(process.env.STL ?? 10);
const ticks = Number(process.env.TICKS ?? 24);
const n = Number(process.env.N ?? 60);
for (let s = 1000; s < 1005; s++) await runSeed(s, { ticks });
const t = performance.now();
const c0 = process.cpuUsage();
let steps = 0;
let bad = 0;
for (let s = 1; s <= n; s++) { const r = await runSeed(s, { ticks }); steps += r.steps; if (r.violations.length) bad++; }
const c = process.cpuUsage(c0);
console.log('ticks', ticks, 'wall ms/seed', ((performance.now() - t) / n).toFixed(1), 'cpu ms/seed', ((c.user + c.system) / 1000 / n).toFixed(1), 'steps', steps / n, 'bad', bad);
