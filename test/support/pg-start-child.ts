/**
 * A process for test/pg-server.test.ts: starts a throwaway server as the benchmarks do
 * (startPgServer, then onStopSignal; with NO_CALLER_LISTENER=1, startPgServer alone), says
 * "up", holds it for HOLD_MS, stops it.
 */
import { onStopSignal, startPgServer } from '../../scripts/pg-server.ts';

const callerListens = process.env.NO_CALLER_LISTENER !== '1';
const server = await startPgServer({ callerHandlesSignals: callerListens });
if (callerListens) onStopSignal(() => server.stop());
process.stdout.write('up\n');
setTimeout(() => server.stop(), Number(process.env.HOLD_MS ?? 0));
