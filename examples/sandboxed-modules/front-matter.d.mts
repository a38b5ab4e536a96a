export function summarize(markdown: string): { title: string; tags: string[]; words: number };
