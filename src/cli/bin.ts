#!/usr/bin/env node
import { setFaultHook } from '../io/faults.js';
import { main } from './main.js';

// fault-injection tests: CONTRASTIVE_FAULT=<point>:<n> kills this process at the n-th visit of a point
const fault = process.env.CONTRASTIVE_FAULT;
if (fault) {
  const [point, nth] = fault.split(':');
  let visits = 0;
  setFaultHook((name) => {
    if (name === point && ++visits === Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
  });
}

process.exitCode = await main(process.argv.slice(2));
