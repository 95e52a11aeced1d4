// CPU facts for reports and kernel choice: ISA features, core count, cache sizes, build info.
//
//   const CpuInfo& cpu = cpu_info();
//   if (cpu.avx2) ...;   fmt::print("{}", cpu.features_string());
#pragma once

#include <cstddef>
#include <string>

namespace edgelm {

struct CpuInfo {
  std::string arch;        // "x86_64", "aarch64", ...
  std::string model_name;  // from /proc/cpuinfo when available
  int logical_cores = 1;
  bool sse42 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx_vnni = false;
  bool avx512bf16 = false;
  bool neon = false, dotprod = false, sve = false, i8mm = false;
  // Space-separated list of the features that are set ("AVX2 FMA F16C AVX512F ...").
  std::string features_string() const;
};

const CpuInfo& cpu_info();

// Build description: version, git commit, compiler, build type.
std::string build_info();

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();
// Current resident set size in bytes (VmRSS), 0 if unknown.
size_t current_rss_bytes();

}  // namespace edgelm
