/**
 * ELF reading for addLibrariesForBinary(): the interpreter (PT_INTERP) and the dynamic section
 * (DT_NEEDED, DT_RPATH, DT_RUNPATH) of a binary, and library lookup with the dynamic loader's
 * rules. Runs in the executor (trusted), on host files.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { SbxError } from '@sbx/client';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const EM_386 = 3;

export interface ElfInfo {
  readonly path: string;
  readonly class: 32 | 64;
  readonly littleEndian: boolean;
  readonly machine: number;
  readonly interpreter: string | null;
  readonly needed: readonly string[];
  readonly rpath: readonly string[];
  readonly runpath: readonly string[];
}

export class ElfError extends SbxError {
  declare readonly code: 'BAD_ELF';
  constructor(message: string) {
    super('BAD_ELF', message);
  }
}

/** Reads the parts of an ELF file the loader needs. Throws ElfError on anything else. */
export function readElf(path: string): ElfInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new ElfError(`open("${path}"): ${(e as Error).message}`);
  }
  try {
    const size = statSync(path).size;
    const read = (off: number, len: number): DataView => {
      if (off < 0 || len < 0 || off + len > size)
        throw new ElfError(`${path}: truncated ELF (read of ${len} bytes at ${off}, file has ${size})`);
      const buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, off + got);
        if (n === 0) throw new ElfError(`${path}: short read`);
        got += n;
      }
      return new DataView(buf.buffer, buf.byteOffset, len);
    };
    if (size < 64) throw new ElfError(`${path} is not an ELF file (${size} bytes)`);
    const ident = read(0, 16);
    if (ident.getUint32(0, false) !== 0x7f454c46) throw new ElfError(`${path} is not an ELF file`);
    const cls = ident.getUint8(4);
    const dataEnc = ident.getUint8(5);
    if (cls !== 1 && cls !== 2) throw new ElfError(`${path}: unknown ELF class ${cls}`);
    if (dataEnc !== 1 && dataEnc !== 2) throw new ElfError(`${path}: unknown ELF data encoding ${dataEnc}`);
    const is64 = cls === 2;
    const le = dataEnc === 1;
    const hdr = read(0, is64 ? 64 : 52);
    const u16 = (v: DataView, o: number): number => v.getUint16(o, le);
    const u32 = (v: DataView, o: number): number => v.getUint32(o, le);
    const addr = (v: DataView, o: number): number => (is64 ? Number(v.getBigUint64(o, le)) : v.getUint32(o, le));
    const machine = u16(hdr, 18);
    const phoff = addr(hdr, is64 ? 32 : 28);
    const phentsize = u16(hdr, is64 ? 54 : 42);
    const phnum = u16(hdr, is64 ? 56 : 44);
    if (phnum > 4096 || phentsize < (is64 ? 56 : 32)) throw new ElfError(`${path}: implausible program header table`);
    const phdrs = read(phoff, phentsize * phnum);
    const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
    let interpreter: string | null = null;
    let dyn: { offset: number; size: number } | null = null;
    for (let i = 0; i < phnum; i++) {
      const b = i * phentsize;
      const type = u32(phdrs, b);
      const offset = addr(phdrs, b + (is64 ? 8 : 4));
      const vaddr = addr(phdrs, b + (is64 ? 16 : 8));
      const filesz = addr(phdrs, b + (is64 ? 32 : 16));
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      else if (type === PT_DYNAMIC) dyn = { offset, size: filesz };
      else if (type === PT_INTERP) {
        const v = read(offset, Math.min(filesz, 4096));
        let s = '';
        for (let j = 0; j < v.byteLength && v.getUint8(j) !== 0; j++) s += String.fromCharCode(v.getUint8(j));
        interpreter = s;
      }
    }
    const needed: string[] = [];
    const rpath: string[] = [];
    const runpath: string[] = [];
    if (dyn) {
      const entSize = is64 ? 16 : 8;
      const count = Math.min(Math.floor(dyn.size / entSize), 65536);
      const d = read(dyn.offset, count * entSize);
      const entries: Array<[number, number]> = [];
      let strtab = -1;
      let strsz = 0;
      for (let i = 0; i < count; i++) {
        const tag = is64 ? Number(d.getBigInt64(i * entSize, le)) : d.getInt32(i * entSize, le);
        const val = addr(d, i * entSize + (is64 ? 8 : 4));
        if (tag === DT_NULL) break;
        if (tag === DT_STRTAB) strtab = val;
        else if (tag === DT_STRSZ) strsz = val;
        else entries.push([tag, val]);
      }
      if (entries.some(([t]) => t === DT_NEEDED || t === DT_RPATH || t === DT_RUNPATH)) {
        if (strtab < 0) throw new ElfError(`${path}: dynamic section without DT_STRTAB`);
        const seg = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
        if (!seg) throw new ElfError(`${path}: DT_STRTAB 0x${strtab.toString(16)} is outside every PT_LOAD segment`);
        const strOff = strtab - seg.vaddr + seg.offset;
        const len = Math.min(strsz || seg.offset + seg.filesz - strOff, size - strOff);
        const strs = read(strOff, len);
        const str = (o: number): string => {
          if (o >= len) throw new ElfError(`${path}: string offset ${o} outside the string table`);
          let s = '';
          for (let j = o; j < len && strs.getUint8(j) !== 0; j++) s += String.fromCharCode(strs.getUint8(j));
          return s;
        };
        for (const [tag, val] of entries) {
          if (tag === DT_NEEDED) needed.push(str(val));
          else if (tag === DT_RPATH) rpath.push(...str(val).split(':').filter(Boolean));
          else if (tag === DT_RUNPATH) runpath.push(...str(val).split(':').filter(Boolean));
        }
      }
    }
    return { path, class: is64 ? 64 : 32, littleEndian: le, machine, interpreter, needed, rpath, runpath };
  } finally {
    closeSync(fd);
  }
}

const TRIPLES: Record<number, string> = {
  [EM_X86_64]: 'x86_64-linux-gnu',
  [EM_AARCH64]: 'aarch64-linux-gnu',
  [EM_386]: 'i386-linux-gnu',
};

/** The loader's default directories for a machine, after the ld.so.conf directories. */
export function defaultLibraryDirs(machine: number, is64: boolean): string[] {
  const triple = TRIPLES[machine];
  const dirs: string[] = [];
  if (triple) dirs.push(`/lib/${triple}`, `/usr/lib/${triple}`);
  if (is64) dirs.push('/lib64', '/usr/lib64');
  dirs.push('/lib', '/usr/lib');
  return dirs;
}

/** Directories listed by /etc/ld.so.conf and its includes (absolute paths only). */
export function ldSoConfDirs(file = '/etc/ld.so.conf', seen = new Set<string>()): string[] {
  if (seen.has(file) || seen.size > 64) return [];
  seen.add(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pattern of inc[1]!.split(/\s+/)) {
        const abs = isAbsolute(pattern) ? pattern : join(dirname(file), pattern);
        for (const f of globSimple(abs)) out.push(...ldSoConfDirs(f, seen));
      }
    } else if (isAbsolute(line)) out.push(normalize(line).replace(/\/$/, '') || '/');
  }
  return out;
}

/** Expands one `*` in the last path component (what ld.so.conf includes use). */
function globSimple(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (!base.includes('*')) return existsSync(pattern) ? [pattern] : [];
  const re = new RegExp(
    `^${base
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  try {
    return readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

export interface ResolveOptions {
  /** LD_LIBRARY_PATH-style directories searched after DT_RPATH and before DT_RUNPATH. */
  readonly ldLibraryPath?: readonly string[];
  /** Read /etc/ld.so.conf (default true). */
  readonly useLdSoConf?: boolean;
}

export interface ResolvedLibraries {
  /** The interpreter path as named by PT_INTERP (null for static binaries). */
  readonly interpreter: string | null;
  /** Every resolved library path, in load (breadth-first) order. */
  readonly libraries: readonly string[];
  /** Every path to make visible: interpreter and libraries, each with its symlink target. */
  readonly files: readonly string[];
  /** Libraries that could not be found: "libfoo.so.1 (needed by /usr/bin/x)". */
  readonly missing: readonly string[];
}

function expandOrigin(dir: string, origin: string, machine: number): string {
  const lib = TRIPLES[machine] ? `lib/${TRIPLES[machine]}` : 'lib';
  return dir.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin).replace(/\$\{LIB\}|\$LIB/g, lib);
}

function compatible(path: string, ref: ElfInfo): ElfInfo | null {
  try {
    if (!statSync(path).isFile()) return null;
    const e = readElf(path);
    return e.machine === ref.machine && e.class === ref.class && e.littleEndian === ref.littleEndian ? e : null;
  } catch {
    return null;
  }
}

/**
 * Finds the interpreter and all libraries a binary loads, recursively, with ld.so's search order:
 * DT_RPATH of the loading object and its loaders (when it has no DT_RUNPATH), ldLibraryPath,
 * DT_RUNPATH of the loading object, /etc/ld.so.conf directories, then the default directories.
 * $ORIGIN is the directory of the (symlink-resolved) object. Throws ElfError if the binary itself
 * is unreadable; missing libraries are reported in `missing`.
 */
export function resolveLibraries(binary: string, options: ResolveOptions = {}): ResolvedLibraries {
  const root = readElf(binary);
  const confDirs = options.useLdSoConf === false ? [] : ldSoConfDirs();
  const defaults = defaultLibraryDirs(root.machine, root.class === 64);
  const libs: string[] = [];
  const missing: string[] = [];
  const loaded = new Map<string, string>(); // needed name -> path
  const queue: Array<{ elf: ElfInfo; chainRpath: string[] }> = [];
  const originOf = (p: string): string => {
    try {
      return dirname(realpathSync(p));
    } catch {
      return dirname(p);
    }
  };
  queue.push({ elf: root, chainRpath: [] });
  while (queue.length) {
    const { elf, chainRpath } = queue.shift()!;
    const origin = originOf(elf.path);
    const ownRpath = elf.runpath.length ? [] : elf.rpath.map((d) => expandOrigin(d, origin, root.machine));
    const rpath = elf.runpath.length ? [] : [...ownRpath, ...chainRpath];
    const runpath = elf.runpath.map((d) => expandOrigin(d, origin, root.machine));
    for (const name of elf.needed) {
      if (loaded.has(name)) continue;
      let found: { path: string; elf: ElfInfo } | null = null;
      if (name.includes('/')) {
        const e = compatible(name, root);
        if (e) found = { path: name, elf: e };
      } else {
        const dirs = [...rpath, ...(options.ldLibraryPath ?? []), ...runpath, ...confDirs, ...defaults];
        for (const d of dirs) {
          const p = join(d, name);
          const e = compatible(p, root);
          if (e) {
            found = { path: normalize(p), elf: e };
            break;
          }
        }
      }
      if (!found) {
        missing.push(`${name} (needed by ${elf.path})`);
        loaded.set(name, '');
        continue;
      }
      loaded.set(name, found.path);
      libs.push(found.path);
      queue.push({
        elf: found.elf,
        chainRpath: elf === root || elf.runpath.length === 0 ? [...ownRpath, ...chainRpath] : [],
      });
    }
  }
  const files: string[] = [];
  const add = (p: string): void => {
    if (!files.includes(p)) files.push(p);
    try {
      const real = realpathSync(p);
      if (!files.includes(real)) files.push(real);
    } catch {
      // A dangling interpreter link is reported by the caller through the missing existence check.
    }
  };
  if (root.interpreter) add(root.interpreter);
  for (const l of libs) add(l);
  return { interpreter: root.interpreter, libraries: libs, files, missing };
}
