// zlib-c.mjs: a C library (the system's libz) wrapped in a Node module with koffi, a foreign
// function interface whose binary ships on npm. The library is loaded (dlopen) once in the
// forkserver; each call runs its C code in a sandboxed child. This is how sbx answers "sandbox a
// C library": a module, not a C forkserver of its own (README.md says why).
import koffi from 'koffi';

const libz = koffi.load('libz.so.1');
// int uncompress(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen);
const uncompress = libz.func(
  'int uncompress(_Out_ uint8_t *dest, _Inout_ unsigned long *destLen, const uint8_t *src, unsigned long srcLen)',
);
// uLong crc32(uLong crc, const Bytef *buf, uInt len);
const crc32 = libz.func('unsigned long crc32(unsigned long crc, const uint8_t *buf, unsigned int len)');
const zlibVersion = libz.func('const char *zlibVersion(void)');

const Z_ERRORS = { '-2': 'Z_STREAM_ERROR', '-3': 'Z_DATA_ERROR', '-4': 'Z_MEM_ERROR', '-5': 'Z_BUF_ERROR' };

/** Inflates zlib data into at most `maxBytes` bytes; throws naming libz's error code. */
export function inflate(data, maxBytes = 1 << 20) {
  const out = Buffer.alloc(maxBytes);
  const len = [maxBytes];
  const rc = uncompress(out, len, data, data.length);
  if (rc !== 0)
    throw Object.assign(new Error(`uncompress: ${Z_ERRORS[rc] ?? rc}`), { code: Z_ERRORS[rc] ?? String(rc) });
  return out.subarray(0, len[0]);
}

export const checksum = (data) => crc32(0, data, data.length);
export const version = () => zlibVersion();
