// thumbnail.mjs: a module that decodes untrusted images with sharp (libvips: C and C++ decoders
// shipped as prebuilt binaries on npm) and returns a small WebP. Meant to run through
// sandboxedModule(): the decoders then see only the bytes they are given. Nothing is warmed up
// here beyond the import: libvips starts worker threads on its first image, and a forked child
// has none of its parent's threads (README.md, "Native addons").
import sharp from 'sharp';

// No operation cache: a child serves one call or one session, so a cache would only cost memory.
sharp.cache(false);
sharp.concurrency(1);

/** A WebP of at most `size`×`size` pixels, and what the input turned out to be. */
export async function thumbnail(input, size = 128) {
  const image = sharp(input, { limitInputPixels: 50_000_000, failOn: 'error' });
  const meta = await image.metadata();
  const out = await image
    .resize(size, size, { fit: 'inside' })
    .webp({ quality: 80 })
    .toBuffer({ resolveWithObject: true });
  return { format: meta.format, width: meta.width, height: meta.height, webp: out.data, size: out.info.size };
}
