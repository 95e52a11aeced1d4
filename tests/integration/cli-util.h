// Running the built CLI (or any command line) from integration tests and capturing what it
// printed. One copy for every integration test file.
//
//   CliRun r = run_command(std::string(EDGELM_CLI) + " info " + shell_quote(path));
//   EXPECT_EQ(r.exit_code, 0) << r.err;
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace edgelm::testing {

struct CliRun {
  int exit_code = -1;  // -1 when the process did not exit normally (killed by a signal)
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 'text' for /bin/sh, embedded single quotes escaped.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `cmdline` through /bin/sh (arguments already quoted), stdin from `stdin_text` (empty:
// nothing), stdout and stderr captured through temporary files that are removed afterwards.
inline CliRun run_command(const std::string& cmdline, const std::string& stdin_text = "") {
  static int counter = 0;
  const std::string base = temp_path("cli-run-" + std::to_string(counter++));
  const std::string in = base + ".in", out = base + ".out", err = base + ".err";
  std::ofstream(in, std::ios::binary) << stdin_text;
  const std::string cmd = cmdline + " <" + in + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  for (const auto& p : {in, out, err}) std::filesystem::remove(p);
  return r;
}

}  // namespace edgelm::testing
