// front-matter.mjs: a module that reads a Markdown document's YAML front matter with js-yaml 3
// and returns its title, tags and word count. js-yaml 3's load() (unlike safeLoad(), and unlike
// js-yaml 4) understands the !!js/function tag: a document can carry a function that runs
// when the caller uses the value, here when the title is turned into a string. That is a real
// and well-known hole of this parser version, kept on purpose: the example shows what a
// malicious document can do in process, and what it can do in a sandboxed child.
import yaml from 'js-yaml';

export function summarize(markdown) {
  const m = /^---\n([\s\S]*?)\n---\n?([\s\S]*)$/.exec(String(markdown));
  const meta = (m && yaml.load(m[1])) || {};
  const body = m ? m[2] : String(markdown);
  return {
    title: `${meta.title ?? 'untitled'}`,
    tags: Array.isArray(meta.tags) ? meta.tags.map(String) : [],
    words: body.split(/\s+/).filter(Boolean).length,
  };
}
