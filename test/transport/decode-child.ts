// Decodes the payload it is given in a worker whose heap is capped, and posts the error
// code it was refused with (or 'decoded'): a decoder that builds what the bytes describe
// before checking them runs the worker out of memory instead.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeFrame } from '../../src/transport/wire.js';
import { codeOf } from '../../src/errors.js';

const { payload } = workerData as { payload: Uint8Array };
try {
  decodeFrame(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  parentPort!.postMessage('decoded');
} catch (e) {
  parentPort!.postMessage(codeOf(e));
}
