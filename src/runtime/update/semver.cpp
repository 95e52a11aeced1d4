// Semantic version parsing and precedence (see semver.h).
#include "runtime/update/semver.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

#include "base/cpu.h"

namespace edgelm::update {

namespace {

bool is_numeric(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool valid_ident(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

}  // namespace

StatusOr<SemVer> SemVer::parse(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::invalid_argument(fmt::format(
        "version '{}' is not a semantic version MAJOR.MINOR.PATCH[-pre][+build]: {}", text, why));
  };
  SemVer v;
  std::string core = text;
  if (const size_t plus = core.find('+'); plus != std::string::npos) {
    v.build = core.substr(plus + 1);
    core = core.substr(0, plus);
    for (const auto& id : split(v.build, '.')) {
      if (!valid_ident(id)) return bad("empty or invalid build identifier");
    }
  }
  if (const size_t dash = core.find('-'); dash != std::string::npos) {
    v.prerelease = split(core.substr(dash + 1), '.');
    core = core.substr(0, dash);
    for (const auto& id : v.prerelease) {
      if (!valid_ident(id)) return bad("empty or invalid pre-release identifier");
      if (is_numeric(id) && id.size() > 1 && id[0] == '0') {
        return bad("numeric pre-release identifier with a leading zero");
      }
    }
  }
  const auto parts = split(core, '.');
  if (parts.size() != 3) return bad("expected three numbers separated by dots");
  uint64_t* fields[3] = {&v.major, &v.minor, &v.patch};
  for (int i = 0; i < 3; ++i) {
    const std::string& p = parts[i];
    if (!is_numeric(p)) return bad(fmt::format("'{}' is not a number", p));
    if (p.size() > 1 && p[0] == '0') return bad(fmt::format("'{}' has a leading zero", p));
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), *fields[i]);
    if (ec != std::errc() || ptr != p.data() + p.size()) {
      return bad(fmt::format("'{}' is out of range", p));
    }
  }
  return v;
}

std::string SemVer::to_string() const {
  std::string s = fmt::format("{}.{}.{}", major, minor, patch);
  for (size_t i = 0; i < prerelease.size(); ++i) s += (i == 0 ? "-" : ".") + prerelease[i];
  if (!build.empty()) s += "+" + build;
  return s;
}

int SemVer::compare(const SemVer& o) const {
  auto cmp = [](uint64_t a, uint64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  if (int c = cmp(major, o.major)) return c;
  if (int c = cmp(minor, o.minor)) return c;
  if (int c = cmp(patch, o.patch)) return c;
  if (prerelease.empty() || o.prerelease.empty()) {
    if (prerelease.empty() && o.prerelease.empty()) return 0;
    return prerelease.empty() ? 1 : -1;  // 1.0.0-rc < 1.0.0
  }
  const size_t n = std::min(prerelease.size(), o.prerelease.size());
  for (size_t i = 0; i < n; ++i) {
    const std::string &a = prerelease[i], &b = o.prerelease[i];
    const bool na = is_numeric(a), nb = is_numeric(b);
    if (na && nb) {
      if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
      if (int c = a.compare(b)) return c < 0 ? -1 : 1;
    } else if (na != nb) {
      return na ? -1 : 1;  // numeric identifiers sort before alphanumeric ones
    } else if (int c = a.compare(b)) {
      return c < 0 ? -1 : 1;
    }
  }
  return cmp(prerelease.size(), o.prerelease.size());
}

int compare_versions(const std::string& a, const std::string& b) {
  auto va = SemVer::parse(a);
  auto vb = SemVer::parse(b);
  if (va.ok() && vb.ok()) return va->compare(*vb);
  if (va.ok() != vb.ok()) return va.ok() ? 1 : -1;
  return a < b ? -1 : (a > b ? 1 : 0);
}

std::string runtime_version() {
  // build_info() = "edgelm <version> (<commit>) ...".
  std::istringstream in(build_info());
  std::string name, version;
  in >> name >> version;
  return SemVer::parse(version).ok() ? version : std::string("0.0.0");
}

}  // namespace edgelm::update
