// A Node sandboxee: initialises, sandboxes itself with @sbx/client, answers one message, then
// tries to read a file, which the policy forbids.
import { readFileSync } from 'node:fs';
import { Client, SyncComms } from '@sbx/client';

const comms = new SyncComms();
Client.sandboxMeHere();
const msg = comms.recvMessage();
comms.sendMessage({ echo: msg.text, sandboxed: Client.isSandboxed });
readFileSync('/etc/hostname');
