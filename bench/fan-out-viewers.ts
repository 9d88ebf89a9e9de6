// Child process of the fan-out benchmark: opens VIEWERS WebSocket clients to the URL in argv
// and counts the messages they receive. The parent sends `count` over IPC and gets the total.

import WebSocket from 'ws';

const [url, viewersText] = process.argv.slice(2);
const viewers = Number(viewersText);
if (url === undefined || !Number.isInteger(viewers) || viewers < 1) {
  console.error('usage: node bench/fan-out-viewers.ts WS_URL VIEWERS');
  process.exit(2);
}

let received = 0;
let open = 0;
const sockets = Array.from({ length: viewers }, () => {
  const socket = new WebSocket(url);
  socket.on('open', () => {
    open++;
    if (open === viewers) process.send?.({ type: 'open' });
  });
  socket.on('message', () => received++);
  socket.on('error', (error) => console.error(`viewer socket failed: ${error.message}`));
  return socket;
});

process.on('message', (message: { type: string }) => {
  if (message.type === 'count') process.send?.({ type: 'count', received });
  if (message.type === 'stop') {
    for (const socket of sockets) socket.terminate();
    process.disconnect();
  }
});
