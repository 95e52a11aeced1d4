// Semantic versions (semver.org 2.0): parse "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]" and
// compare by semver precedence (build metadata ignored, a pre-release sorts before its release).
//
//   ASSIGN_OR_RETURN(SemVer v, SemVer::parse("1.2.0-rc.1"));
//   if (v < SemVer::parse("1.2.0").value()) ...;   v.to_string() == "1.2.0-rc.1"
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace edgelm::update {

struct SemVer {
  uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> prerelease;  // dot-separated identifiers
  std::string build;                    // kept for printing, ignored in comparisons

  static StatusOr<SemVer> parse(const std::string& text);
  std::string to_string() const;
  // <0, 0, >0 by semver precedence.
  int compare(const SemVer& other) const;
  bool operator==(const SemVer& o) const { return compare(o) == 0; }
  bool operator<(const SemVer& o) const { return compare(o) < 0; }
  bool operator>(const SemVer& o) const { return compare(o) > 0; }
  bool operator<=(const SemVer& o) const { return compare(o) <= 0; }
  bool operator>=(const SemVer& o) const { return compare(o) >= 0; }
};

// Compares two version strings; both must parse (callers validate first). Unparsable strings
// sort before parsable ones, then lexicographically, so sorting never fails.
int compare_versions(const std::string& a, const std::string& b);

// The version of this edgelm build (the project(VERSION) in CMakeLists.txt, as reported by
// base/cpu.h build_info()).
std::string runtime_version();

}  // namespace edgelm::update
