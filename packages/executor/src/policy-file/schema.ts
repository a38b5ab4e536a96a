// policy-file-schema.ts: the JSON Schema (draft-07) of sbx policy files. The same schema is
// committed as packages/executor/policy.schema.json for editors; a test keeps the two equal.

const absPath = { type: 'string', minLength: 1, description: 'An absolute path.' } as const;
const errno = {
  type: ['string', 'integer'],
  pattern: '^E[A-Z0-9]+$',
  minimum: 1,
  maximum: 4095,
  description: 'An errno name such as "EPERM", or its number (1..4095).',
} as const;
const bind = {
  type: 'object',
  additionalProperties: false,
  required: ['path'],
  properties: {
    path: { ...absPath, description: 'The host path (absolute).' },
    inside: { ...absPath, description: 'Where it appears inside the sandbox (default: the same path).' },
    writable: { type: 'boolean', description: 'Mount read-write (default read-only).' },
  },
} as const;

const argValue = {
  type: ['integer', 'string'],
  pattern: '^(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})$',
  minimum: -2147483648,
  maximum: 4294967295,
  description: 'A 32-bit value: a number, or a string in hex ("0x5401") or decimal.',
} as const;
const argTest = {
  type: ['array', 'object'],
  description: 'The values the argument may have (its low 32 bits), or {"onlyFlags": MASK}: no bit outside MASK set.',
  if: { type: 'array' },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else keyword, not a thenable
  then: { minItems: 1, items: argValue },
  else: { additionalProperties: false, required: ['onlyFlags'], properties: { onlyFlags: argValue } },
} as const;

export const PRESET_NAMES = [
  'dynamic-startup',
  'static-startup',
  'system-malloc',
  'read',
  'write',
  'open',
  'stat',
  'access',
  'exit',
  'time',
  'sleep',
  'get-ids',
  'get-pids',
  'futex',
  'mmap',
  'safe-fcntl',
  'node-runtime',
  'network-client',
  'command-line',
] as const;

export const POLICY_FILE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'sbx policy file',
  description:
    'A sandbox policy: syscall rules, the filesystem view and the network. See docs/policy-guide.md, "Policy files".',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    presets: {
      type: 'array',
      description: 'PolicyBuilder presets by name (allowDynamicStartup is "dynamic-startup", ...).',
      items: { type: 'string', enum: [...PRESET_NAMES] },
    },
    allow: { type: 'array', description: 'Syscalls allowed unconditionally.', items: { type: 'string', minLength: 1 } },
    allowWhen: {
      type: 'object',
      description:
        'Syscalls allowed when their arguments match one of the alternatives, e.g. {"ioctl": [{"arg1": ["0x5401"]}]}. ' +
        'An alternative holds when each argument it names matches. Otherwise the other rules, then the default, decide.',
      additionalProperties: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { arg0: argTest, arg1: argTest, arg2: argTest, arg3: argTest, arg4: argTest, arg5: argTest },
        },
      },
    },
    notify: {
      type: 'object',
      description:
        'Syscalls sent to the Sandbox\'s notify handler (PolicyBuilder.notifySyscall), e.g. {"getpid": [], "kill": [{"arg1": ["15"]}]}: ' +
        'an empty list sends every call, alternatives (as in allowWhen) only the matching ones. Applied before the other rules.',
      additionalProperties: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { arg0: argTest, arg1: argTest, arg2: argTest, arg3: argTest, arg4: argTest, arg5: argTest },
        },
      },
    },
    errno: {
      type: 'object',
      description: 'Syscalls that fail with an errno instead of running, e.g. {"uname": "EPERM"}.',
      additionalProperties: errno,
    },
    default: {
      description: 'What every other syscall gets: "kill" (default; a violation), "allow", "log", or {"errno": ...}.',
      type: ['string', 'object'],
      if: { type: 'string' },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then/else keyword, not a thenable
      then: { enum: ['kill', 'allow', 'log'] },
      else: { additionalProperties: false, required: ['errno'], properties: { errno } },
    },
    view: {
      enum: ['standard'],
      description:
        'standard: the file view sbx run gives a program (PolicyBuilder.addStandardView: system directories, the /etc files programs read, generated passwd/group, /dev, /proc, a tmpfs /tmp unless tmpfs lists one).',
    },
    files: { type: 'array', description: 'Host files bound into the sandbox.', items: bind },
    directories: { type: 'array', description: 'Host directories bound into the sandbox.', items: bind },
    tmpfs: {
      type: 'array',
      description: 'Empty tmpfs mounts.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          path: { ...absPath, description: 'Where the tmpfs appears inside the sandbox.' },
          size: {
            type: ['string', 'integer'],
            pattern: '^[0-9]+[kKmMgGtT]?$',
            minimum: 0,
            description: 'Size limit: bytes, or "64K", "64M", "1G" (default: the kernel default).',
          },
        },
      },
    },
    librariesFor: {
      type: 'array',
      description: 'Binaries whose interpreter and shared libraries are bound read-only at their host paths.',
      items: absPath,
    },
    network: {
      type: 'object',
      additionalProperties: false,
      required: ['mode'],
      properties: {
        mode: {
          enum: ['none', 'host', 'rules'],
          description: 'none: no network (default); host: the host network; rules: the lists below.',
        },
        allow: {
          type: 'array',
          items: { type: 'string' },
          description: 'CIDR[:PORT]: "10.0.0.0/8:443", "[2001:db8::/32]:443".',
        },
        deny: { type: 'array', items: { type: 'string' }, description: 'CIDR[:PORT]; a deny wins over every allow.' },
        dns: {
          type: 'array',
          items: { type: 'string' },
          description: 'Resolver addresses reachable on port 53 even in denied networks.',
        },
        unix: {
          type: 'array',
          items: { type: 'string' },
          description: 'Unix socket paths the sandboxee may connect to.',
        },
      },
    },
  },
} as const;
