export function inflate(data: Uint8Array, maxBytes?: number): Buffer;
export function checksum(data: Uint8Array): number;
export function version(): string;
