// learn.cc: see learn.h.
#include "learn.h"

#include <string.h>

namespace sbx {

bool LearnFact::operator<(const LearnFact &o) const {
  if (nr != o.nr) return nr < o.nr;
  return memcmp(args, o.args, sizeof args) < 0;
}

uint32_t ReadU32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void DecodeSockFilters(const uint8_t *p, uint32_t n, std::vector<struct sock_filter> *out) {
  out->resize(n);
  for (uint32_t i = 0; i < n; i++, p += 8) {
    (*out)[i].code = (uint16_t)(p[0] | p[1] << 8);
    (*out)[i].jt = p[2];
    (*out)[i].jf = p[3];
    (*out)[i].k = ReadU32(p + 4);
  }
}

// Layout (little-endian): u32 version (1), u32 learn_ret, u32 max_facts, u32 program length n,
// u32 mask count m, then n sock_filter (u16 code, u8 jt, u8 jf, u32 k), then m mask bytes.
bool ParseLearnConfig(const uint8_t *data, size_t len, LearnConfig *out, std::string *err) {
  if (len < 20) {
    *err = "learn table: shorter than its 20-byte header";
    return false;
  }
  if (ReadU32(data) != 1) {
    *err = "learn table: unknown version";
    return false;
  }
  out->learn_ret = ReadU32(data + 4);
  out->max_facts = ReadU32(data + 8);
  uint32_t n = ReadU32(data + 12), m = ReadU32(data + 16);
  if (n == 0 || n > BPF_MAXINSNS || m > 4096 || len != 20 + (size_t)n * 8 + m) {
    *err = "learn table: the program or mask sizes do not match the table's length";
    return false;
  }
  const uint8_t *p = data + 20;
  DecodeSockFilters(p, n, &out->program);
  p += (size_t)n * 8;
  out->arg_masks.assign(p, p + m);
  return true;
}

uint32_t RunSeccompProgram(const std::vector<struct sock_filter> &prog,
                           const struct seccomp_data &d) {
  const uint32_t bad = SECCOMP_RET_KILL_PROCESS;
  uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = {0};
  unsigned char raw[sizeof d];
  memcpy(raw, &d, sizeof d);
  size_t pc = 0;
  // Jumps only go forward, so this ends within prog.size() steps.
  while (pc < prog.size()) {
    const struct sock_filter &f = prog[pc++];
    uint32_t k = f.k;
    switch (f.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (k % 4 || k + 4 > sizeof raw) return bad;
        memcpy(&A, raw + k, 4);
        break;
      case BPF_LD | BPF_W | BPF_LEN: A = sizeof raw; break;
      case BPF_LDX | BPF_W | BPF_LEN: X = sizeof raw; break;
      case BPF_LD | BPF_IMM: A = k; break;
      case BPF_LDX | BPF_IMM: X = k; break;
      case BPF_LD | BPF_MEM:
        if (k >= BPF_MEMWORDS) return bad;
        A = M[k];
        break;
      case BPF_LDX | BPF_MEM:
        if (k >= BPF_MEMWORDS) return bad;
        X = M[k];
        break;
      case BPF_ST:
        if (k >= BPF_MEMWORDS) return bad;
        M[k] = A;
        break;
      case BPF_STX:
        if (k >= BPF_MEMWORDS) return bad;
        M[k] = X;
        break;
      case BPF_MISC | BPF_TAX: X = A; break;
      case BPF_MISC | BPF_TXA: A = X; break;
      case BPF_RET | BPF_K: return k;
      case BPF_RET | BPF_A: return A;
      case BPF_JMP | BPF_JA:
        if (k >= prog.size() - pc) return bad;
        pc += k;
        break;
      default: {
        uint16_t cls = BPF_CLASS(f.code), op = BPF_OP(f.code);
        uint32_t src = BPF_SRC(f.code) == BPF_X ? X : k;
        if (cls == BPF_ALU) {
          switch (op) {
            case BPF_ADD: A += src; break;
            case BPF_SUB: A -= src; break;
            case BPF_MUL: A *= src; break;
            case BPF_DIV:
              if (src == 0) return 0;
              A /= src;
              break;
            case BPF_MOD:
              if (src == 0) return 0;
              A %= src;
              break;
            case BPF_AND: A &= src; break;
            case BPF_OR: A |= src; break;
            case BPF_XOR: A ^= src; break;
            case BPF_LSH: A = src >= 32 ? 0 : A << src; break;
            case BPF_RSH: A = src >= 32 ? 0 : A >> src; break;
            case BPF_NEG: A = -A; break;
            default: return bad;
          }
          break;
        }
        if (cls != BPF_JMP) return bad;
        bool c;
        switch (op) {
          case BPF_JEQ: c = A == src; break;
          case BPF_JGT: c = A > src; break;
          case BPF_JGE: c = A >= src; break;
          case BPF_JSET: c = (A & src) != 0; break;
          default: return bad;
        }
        uint32_t off = c ? f.jt : f.jf;
        if (off >= prog.size() - pc) return bad;
        pc += off;
      }
    }
  }
  return bad;
}

LearnFact LearnFactOf(const LearnConfig &cfg, const struct seccomp_data &d) {
  LearnFact f;
  memset(&f, 0, sizeof f);
  f.nr = d.nr;
  uint8_t mask = d.nr >= 0 && (size_t)d.nr < cfg.arg_masks.size() ? cfg.arg_masks[d.nr] : 0;
  for (int i = 0; i < 6; i++)
    if (mask & (1u << i)) f.args[i] = (uint32_t)d.args[i];
  return f;
}

}  // namespace sbx
