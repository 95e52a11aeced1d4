// edgelm: command-line front end. `edgelm <subcommand> --help` documents each subcommand.
//
//   edgelm run -m model.gguf -p "Once upon a time" -n 32 --temp 0
//   edgelm chat -m model.gguf --system "You are terse."
//   edgelm info model.gguf --json
//
// Exit status: 0 success; 1 a runtime error (the message is on stderr, "edgelm: error: ...");
// 2 a usage error (unknown flag, missing required option).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "base/cpu.h"
#include "subcommands.h"

namespace {

using RegisterFn = void (*)(CLI::App&);

// Every subcommand, in the order `edgelm --help` lists them. Add new ones here.
constexpr RegisterFn kSubcommands[] = {
    edgelm::cli::register_run,      edgelm::cli::register_chat,     edgelm::cli::register_info,
    edgelm::cli::register_bench,    edgelm::cli::register_serve,    edgelm::cli::register_quantize,
    edgelm::cli::register_audit,    edgelm::cli::register_eval,     edgelm::cli::register_keygen,
    edgelm::cli::register_release,  edgelm::cli::register_delta,    edgelm::cli::register_update,
    edgelm::cli::register_rollback, edgelm::cli::register_models,   edgelm::cli::register_route,
    edgelm::cli::register_monitor,  edgelm::cli::register_governor,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgelm: run llama-family GGUF models on the CPU"};
  app.set_version_flag("--version", edgelm::build_info());
  app.require_subcommand(1);
  for (RegisterFn reg : kSubcommands) reg(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    return edgelm::cli::report_error(fmt::format("unexpected failure: {}", e.what()));
  }
  return 0;
}
