#!/usr/bin/env node
// Asks a Kafka broker for its cluster metadata (Metadata v4 over the plain wire protocol; no dependencies,
// so that it works before `npm ci`). Exits 0 when the broker answers with at least one registered broker
// and an active controller, 1 otherwise. Usage: node ready.mjs 127.0.0.1:19092 [timeoutMs] [--quiet]
import net from 'node:net';

const [addr = '127.0.0.1:19092', timeoutArg = '3000'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const quiet = process.argv.includes('--quiet');
const sep = addr.lastIndexOf(':');
const host = addr.slice(0, sep);
const port = Number(addr.slice(sep + 1));
const timeoutMs = Number(timeoutArg);

function metadataRequest() {
  const clientId = Buffer.from('faceflow-infra');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4 + 1);
  let o = 0;
  o = body.writeInt16BE(3, o); // api key: Metadata
  o = body.writeInt16BE(4, o); // api version 4 (the oldest Kafka 4.x still serves; not yet "flexible")
  o = body.writeInt32BE(7, o); // correlation id
  o = body.writeInt16BE(clientId.length, o);
  o += clientId.copy(body, o);
  o = body.writeInt32BE(-1, o); // topics: null = all
  body.writeInt8(0, o); // allow_auto_topic_creation: false
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
}

function parse(buf) {
  let o = 0;
  const i16 = () => { const v = buf.readInt16BE(o); o += 2; return v; };
  const i32 = () => { const v = buf.readInt32BE(o); o += 4; return v; };
  const str = () => { const n = i16(); if (n < 0) return null; const s = buf.toString('utf8', o, o + n); o += n; return s; };
  if (i32() !== 7) throw new Error('unexpected correlation id');
  i32(); // throttle_time_ms
  const brokers = [];
  for (let n = i32(); n > 0; n--) brokers.push({ nodeId: i32(), host: str(), port: i32(), rack: str() });
  const clusterId = str();
  const controllerId = i32();
  return { brokers, clusterId, controllerId };
}

const timer = setTimeout(() => done(1, 'timed out'), timeoutMs);
const sock = net.connect({ host, port });
let acc = Buffer.alloc(0);
function done(code, msg) {
  clearTimeout(timer);
  sock.destroy();
  if (!quiet || code === 0) console.log(msg);
  process.exit(code);
}
sock.on('connect', () => sock.write(metadataRequest()));
sock.on('error', (e) => done(1, `not reachable: ${e.message}`));
sock.on('data', (chunk) => {
  acc = Buffer.concat([acc, chunk]);
  if (acc.length < 4 || acc.length < 4 + acc.readInt32BE(0)) return;
  try {
    const m = parse(acc.subarray(4, 4 + acc.readInt32BE(0)));
    if (m.brokers.length > 0 && m.controllerId >= 0) {
      done(0, `kafka ready: cluster ${m.clusterId}, brokers ${m.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`).join(',')}, controller ${m.controllerId}`);
    } else {
      done(1, 'kafka answered but has no registered broker / controller yet');
    }
  } catch (e) {
    done(1, `bad metadata response: ${e instanceof Error ? e.message : e}`);
  }
});
sock.on('close', () => done(1, 'connection closed before a full response'));
