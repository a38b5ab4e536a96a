// Types of node-lines.mjs, for the tests that run other Node lines.
export interface NodeLine {
  major: number;
  /** The node binary. */
  node: string;
  /** Its include/node directory. */
  headers: string;
  version: string;
  abi: number;
}
export const NODE_LINES: number[];
export function nodeLinesDir(): string;
export function cachedLine(major: number): NodeLine | undefined;
export function findLine(major: number): NodeLine | undefined;
