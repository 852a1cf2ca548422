/**
 * serve's live page (--http, 127.0.0.1 only, read-only): a snapshot of every device, its
 * counters and the trace tail, pushed to the browser as they change.
 */
export { LiveCounters } from './counters.ts';
export { type LivePage, startLivePage } from './http.ts';
