// The edgelm CLI's subcommands. Each lives in its own file and registers itself on the root
// CLI11 app; main.cpp lists the registration functions in kSubcommands. To add one (e.g.
// bench), write tools/edgelm/bench.cpp with `void register_bench(CLI::App& app)`, declare it
// here and append it to kSubcommands in main.cpp.
//
//   void register_info(CLI::App& app) {
//     auto* sub = app.add_subcommand("info", "Show a GGUF file's metadata and tensors");
//     sub->callback([=] { cli::exit_with(run_info(...)); });
//   }
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"
#include "engine/session.h"
#include "sampling/sampler.h"

namespace edgelm::cli {

void register_run(CLI::App& app);
void register_chat(CLI::App& app);
void register_info(CLI::App& app);
void register_bench(CLI::App& app);
void register_serve(CLI::App& app);
void register_quantize(CLI::App& app);
void register_audit(CLI::App& app);
void register_eval(CLI::App& app);
void register_keygen(CLI::App& app);
void register_release(CLI::App& app);
void register_delta(CLI::App& app);
void register_update(CLI::App& app);
void register_rollback(CLI::App& app);
void register_models(CLI::App& app);
void register_route(CLI::App& app);
void register_monitor(CLI::App& app);
void register_governor(CLI::App& app);

// Ends a subcommand's callback: a non-zero code leaves through CLI11 (CLI::RuntimeError) and
// becomes the process exit status; 0 returns normally.
void exit_with(int code);

// Prints "edgelm: error: <message>" to stderr and returns 1 (the exit status for failures).
int report_error(const Status& status);
int report_error(const std::string& message);

// Sampling flags shared by run and chat: --temp, --top-k, --top-p, --min-p, --repeat-penalty,
// --repeat-last-n, --frequency-penalty, --presence-penalty, --seed.
void add_sampling_options(CLI::App* sub, SamplingParams& sp, int64_t& seed);
// Applies --seed (-1 = random) to sp.
void apply_seed(SamplingParams& sp, int64_t seed);
// Generation parameters shared by run and chat: token limit, sampling with the seed applied,
// stop strings with their escapes resolved.
GenerateParams make_generate_params(int n_predict, const SamplingParams& sampling, int64_t seed,
                                    const std::vector<std::string>& stop);

// Turns the escapes \n \t \r \\ \" \' into their characters (for --stop "\n\n"); other
// backslashes stay as they are.
std::string unescape(const std::string& s);

}  // namespace edgelm::cli
