// Parsing of the aggregator's replies on the ingest stream: `welcome` and `ack`.

import type WebSocket from 'ws';

import type { IngestReply } from '../shared/stream-protocol.ts';

export function rawDataToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** Parses a welcome or ack; returns undefined for anything else. */
export function parseReply(text: string): IngestReply | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const { type, lastSeq, seq } = value as Record<string, unknown>;
  if (type === 'welcome' && isSeq(lastSeq)) return { type, lastSeq };
  if (type === 'ack' && isSeq(seq)) return { type, seq };
  return undefined;
}

/**
 * Largest sequence number accepted from the aggregator. It leaves 2^52 numbers of room below
 * 2^53, where `seq + 1` would stop increasing, so a welcome cannot stall the numbering.
 */
export const MAX_ACCEPTED_SEQ = 2 ** 52;

function isSeq(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isSafeInteger(value) &&
    value >= 0 &&
    value <= MAX_ACCEPTED_SEQ
  );
}
