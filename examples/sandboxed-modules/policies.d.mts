import type { PolicyBuilder } from '@sbx/executor';
export function sharpAddon(): string;
export function libzView(b: PolicyBuilder): void;
