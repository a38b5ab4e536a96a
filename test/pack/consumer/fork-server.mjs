// A Node forkserver (custom-fork mode): warm, then serves fork requests; each child sandboxes
// itself, answers one message and, when asked, tries to read a file, which the policy forbids.
import { readFileSync } from 'node:fs';
import { Client, ForkingClient, SyncComms } from '@sbx/client';

await ForkingClient.ready();
ForkingClient.enterForkLoop();
const comms = new SyncComms();
Client.sandboxMeHere();
const msg = comms.recvMessage();
comms.sendMessage({ pid: process.pid, square: msg.n * msg.n });
if (msg.violate) readFileSync('/etc/hostname');
