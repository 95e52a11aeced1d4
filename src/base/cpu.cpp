#include "base/cpu.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "edgelm-commit.h"  // generated at build time: EDGELM_GIT_COMMIT

namespace edgelm {
namespace {

CpuInfo detect() {
  CpuInfo c;
  c.logical_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#if defined(__x86_64__)
  c.arch = "x86_64";
  unsigned a, b, cc, d;
  if (__get_cpuid(1, &a, &b, &cc, &d)) {
    c.sse42 = cc & (1u << 20);
    c.avx = cc & (1u << 28);
    c.fma = cc & (1u << 12);
    c.f16c = cc & (1u << 29);
  }
  if (__get_cpuid_count(7, 0, &a, &b, &cc, &d)) {
    c.avx2 = b & (1u << 5);
    c.avx512f = b & (1u << 16);
    c.avx512bw = b & (1u << 30);
    c.avx512vl = b & (1u << 31);
    c.avx512vnni = cc & (1u << 11);
  }
  if (__get_cpuid_count(7, 1, &a, &b, &cc, &d)) {
    c.avx_vnni = a & (1u << 4);
    c.avx512bf16 = a & (1u << 5);
  }
#elif defined(__aarch64__)
  c.arch = "aarch64";
  c.neon = true;
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  c.dotprod = hw & (1ul << 20);
  c.sve = hw & (1ul << 22);
  unsigned long hw2 = getauxval(AT_HWCAP2);
  c.i8mm = hw2 & (1ul << 13);
#endif
#else
  c.arch = "unknown";
#endif
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) {
        c.model_name = line.substr(p + 2);
        break;
      }
    }
  }
  return c;
}

size_t read_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0) return std::stoull(line.substr(klen + 1)) * 1024;
  }
  return 0;
}

}  // namespace

std::string CpuInfo::features_string() const {
  std::string s;
  auto add = [&](bool f, const char* n) {
    if (!f) return;
    if (!s.empty()) s += ' ';
    s += n;
  };
  add(sse42, "SSE4.2");
  add(avx, "AVX");
  add(avx2, "AVX2");
  add(fma, "FMA");
  add(f16c, "F16C");
  add(avx512f, "AVX512F");
  add(avx512bw, "AVX512BW");
  add(avx512vl, "AVX512VL");
  add(avx512vnni, "AVX512_VNNI");
  add(avx_vnni, "AVX_VNNI");
  add(avx512bf16, "AVX512_BF16");
  add(neon, "NEON");
  add(dotprod, "DOTPROD");
  add(sve, "SVE");
  add(i8mm, "I8MM");
  return s;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

std::string build_info() {
  std::ostringstream s;
  s << "edgelm " << EDGELM_VERSION << " (" << EDGELM_GIT_COMMIT << ")";
#if defined(__clang__)
  s << " clang " << __clang_major__ << "." << __clang_minor__;
#elif defined(__GNUC__)
  s << " gcc " << __GNUC__ << "." << __GNUC_MINOR__;
#endif
#ifdef NDEBUG
  s << " release";
#else
  s << " debug";
#endif
#if defined(__SANITIZE_ADDRESS__)
  s << " asan";
#endif
  return s.str();
}

size_t peak_rss_bytes() { return read_status_kb("VmHWM:"); }
size_t current_rss_bytes() { return read_status_kb("VmRSS:"); }

}  // namespace edgelm
