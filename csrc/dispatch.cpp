// Picks the instruction-set level of the hot kernels at import (see kernels/table.h): from
// cpuid and XGETBV on x86-64 (the CPU has the instructions and the OS saves their registers),
// from the hardware capabilities on aarch64. GRADFLOW_SIMD=<level> forces a lower level.
#include <cstdlib>
#include <stdexcept>

#include "kernels/table.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__APPLE__) && defined(__x86_64__)
#include <sys/sysctl.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace gf {

KernelTables active_kernels;

// Each level's table filler, defined by csrc/kernels/<level>.cpp (the CMake build compiles the
// levels it defines GF_LEVEL_<NAME> for).
namespace baseline { void fill_tables(KernelTables&); }
#if defined(GF_LEVEL_AVX2)
namespace avx2 { void fill_tables(KernelTables&); }
#endif
#if defined(GF_LEVEL_AVX512)
namespace avx512 { void fill_tables(KernelTables&); }
#endif
#if defined(GF_LEVEL_SVE)
namespace sve { void fill_tables(KernelTables&); }
#endif

namespace {

#if defined(__APPLE__) && defined(__x86_64__)
bool sysctl_flag(const char* name) {
  int v = 0;
  size_t len = sizeof v;
  return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
}
#endif

#if defined(__x86_64__)
struct X86Levels {
  bool v3 = false, v4 = false;
};

X86Levels x86_levels() {
  X86Levels r;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return r;
  const unsigned c1 = c;
  if (__get_cpuid_max(0, nullptr) < 7) return r;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned b7 = b;
  if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return r;
  const unsigned c81 = c;
  auto bit = [](unsigned reg, int i) { return (reg >> i) & 1u; };
  // The OS must save the YMM (and for AVX-512 the opmask and ZMM) registers on a context
  // switch: XCR0 says which it does.
  if (!bit(c1, 27)) return r;  // OSXSAVE: XGETBV usable
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  const bool os_ymm = (lo & 0x6u) == 0x6u;
  bool os_zmm = (lo & 0xe6u) == 0xe6u;
#if defined(__APPLE__)
  // macOS turns the AVX-512 state on at a thread's first AVX-512 instruction, so XCR0 does not
  // show it yet; the kernel reports the support instead.
  os_zmm = os_ymm && sysctl_flag("hw.optional.avx512f");
#endif
  // x86-64-v3: AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE (every such CPU has the v2 set).
  r.v3 = os_ymm && bit(c1, 28) && bit(b7, 5) && bit(b7, 3) && bit(b7, 8) && bit(c1, 29) &&
         bit(c1, 12) && bit(c81, 5) && bit(c1, 22);
  // x86-64-v4: AVX-512 F, DQ, CD, BW, VL.
  r.v4 = r.v3 && os_zmm && bit(b7, 16) && bit(b7, 17) && bit(b7, 28) && bit(b7, 30) && bit(b7, 31);
  return r;
}
#endif

#if defined(GF_LEVEL_SVE)
bool cpu_has_sve() {
#if defined(__linux__)
  constexpr unsigned long kHwcapSve = 1ul << 22;  // HWCAP_SVE in <asm/hwcap.h>
  return (getauxval(AT_HWCAP) & kHwcapSve) != 0;
#else
  return false;
#endif
}
#endif

struct Level {
  const char* name;
  void (*fill)(KernelTables&);
  bool runs;  // on this CPU
};

// This build's levels, lowest first.
std::vector<Level> build_levels() {
  std::vector<Level> v;
#if defined(GF_NATIVE)
  v.push_back({"native", baseline::fill_tables, true});
#elif defined(__x86_64__)
  const X86Levels x = x86_levels();
  v.push_back({"baseline", baseline::fill_tables, true});
#if defined(GF_LEVEL_AVX2)
  v.push_back({"avx2", avx2::fill_tables, x.v3});
#endif
#if defined(GF_LEVEL_AVX512)
  v.push_back({"avx512", avx512::fill_tables, x.v4});
#endif
  (void)x;
#elif defined(__aarch64__)
  v.push_back({"neon", baseline::fill_tables, true});
#if defined(GF_LEVEL_SVE)
  v.push_back({"sve", sve::fill_tables, cpu_has_sve()});
#endif
#else
  v.push_back({"baseline", baseline::fill_tables, true});
#endif
  return v;
}

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string chosen = "";

}  // namespace

std::vector<std::string> simd_levels() {
  std::vector<std::string> names;
  for (const Level& l : build_levels())
    if (l.runs) names.push_back(l.name);
  return names;
}

std::string simd_level() { return chosen; }

void init_dispatch() {
  const std::vector<Level> levels = build_levels();
  const Level* pick = nullptr;
  for (const Level& l : levels)
    if (l.runs) pick = &l;
  const char* env = std::getenv("GRADFLOW_SIMD");
  if (env && *env) {
    const std::string want = env;
    const Level* named = nullptr;
    std::vector<std::string> all;
    for (const Level& l : levels) {
      all.push_back(l.name);
      if (want == l.name) named = &l;
    }
    if (!named)
      throw std::invalid_argument("GRADFLOW_SIMD='" + want + "' is not a SIMD level of this build (" +
                                  join(all) + "); this CPU runs: " + join(simd_levels()));
    if (!named->runs)
      throw std::invalid_argument("GRADFLOW_SIMD='" + want + "': this CPU cannot run that level; it runs: " +
                                  join(simd_levels()));
    pick = named;
  }
  pick->fill(active_kernels);
  chosen = pick->name;
}

}  // namespace gf
