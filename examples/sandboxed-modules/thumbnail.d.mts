export function thumbnail(
  input: Uint8Array,
  size?: number,
): Promise<{ format: string; width: number; height: number; webp: Buffer; size: number }>;
