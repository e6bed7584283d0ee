#!/usr/bin/env node
import { setFaultHook } from '../io/faults.js';
import { main } from './main.js';

// fault-injection tests: CONTRASTIVE_FAULT=<point>:<n> kills this process at the n-th visit of a
// point; CONTRASTIVE_FAULT=<point>:<n>:<code> (ENOSPC, EIO, ...) makes that visit throw the
// file-system error a full or failing disk would
const fault = process.env.CONTRASTIVE_FAULT;
if (fault) {
  const [point, nth, code] = fault.split(':');
  let visits = 0;
  setFaultHook((name) => {
    if (name !== point || ++visits !== Number(nth ?? 1)) return;
    if (!code) {
      process.kill(process.pid, 'SIGKILL');
      return;
    }
    throw Object.assign(new Error(`${code}: injected fault at ${name}`), { code, syscall: 'write' });
  });
}

process.exitCode = await main(process.argv.slice(2));
