/**
 * A process for test/pg-server.test.ts: starts a throwaway server as the test runner and the
 * benchmarks do (startPgServer, then onStopSignal), says "up", holds it for HOLD_MS, stops it.
 */
import { onStopSignal, startPgServer } from '../../scripts/pg-server.ts';

const server = await startPgServer();
onStopSignal(() => server.stop());
process.stdout.write('up\n');
setTimeout(() => server.stop(), Number(process.env.HOLD_MS ?? 0));
