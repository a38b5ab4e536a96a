// sandboxee.mjs: the Node sandboxee of examples/buffer. Receives shared buffers on fd 1023 and
// inverts every byte in place (b -> b ^ 0xff); acks with the size. No byte is copied.
import { SyncComms, SharedBuffer, CommsError } from '@sbx/client';

const comms = new SyncComms(); // fd 1023
for (;;) {
  let buf;
  try {
    buf = comms.recvBuffer(); // a memfd, sealed against resizing, mapped shared
  } catch (err) {
    if (err instanceof CommsError && err.code === 'PEER_CLOSED') break;
    throw err;
  }
  const words = new Uint32Array(buf.arrayBuffer, 0, buf.size >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = ~words[i];
  for (let i = words.length * 4; i < buf.size; i++) buf.bytes[i] ^= 0xff;
  const size = buf.size;
  buf.close();
  comms.sendUint64(size);
}
void SharedBuffer;
