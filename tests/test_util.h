// Shared helpers for tests: paths to ../shared files with a visible skip when absent, and
// tiny-model generation lives in tests/model_builder.h.
//
//   std::string m = shared_path("models/conf-llama-spm-f16.gguf");
//   if (m.empty()) GTEST_SKIP() << "missing ...";   // or use EDGELM_REQUIRE_SHARED
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace edgelm::testing {

inline std::string shared_dir() {
  if (const char* env = std::getenv("EDGELM_SHARED_DIR")) return env;
  return EDGELM_SHARED_DIR;
}

// Absolute path of a file under ../shared, or "" if it is absent.
inline std::string shared_path(const std::string& rel) {
  std::filesystem::path p = std::filesystem::path(shared_dir()) / rel;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

inline std::string temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "edgelm-tests";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "-" + name)).string();
}

}  // namespace edgelm::testing

// Skips the test with a visible message when a shared file is missing.
#define EDGELM_REQUIRE_SHARED(var, rel)                                         \
  std::string var = ::edgelm::testing::shared_path(rel);                        \
  if (var.empty()) {                                                            \
    GTEST_SKIP() << "SKIPPED: shared file ../shared/" << (rel) << " is absent"; \
  }
