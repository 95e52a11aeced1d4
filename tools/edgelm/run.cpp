// `edgelm run -m MODEL -p PROMPT [-n N] [sampling flags] [-t T] [-c CTX] [--stop S]...`
//
// Output contract (easy to parse):
//   stdout: the prompt text as given (like llama-cli; --no-display-prompt leaves it out), then
//           the continuation streamed as it is generated (whole UTF-8 characters only, never a
//           stop string), then one "\n".
//   stderr: diagnostics, and as its LAST line the stats JSON object (one line, keys documented
//           in src/engine/stats.h) unless --no-stats.
// Exit status: 0 ok; 1 error (message "edgelm: error: ..." on stderr); 2 usage error;
// 130 interrupted by Ctrl-C (the text so far and the stats are still printed).
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  int n_threads = 0;
  int n_ctx = 0;
  std::vector<std::string> stop;
  bool stats = true;
  bool display_prompt = true;
  bool ignore_eos = false;
  bool strict_quant = false;
  SamplingParams sampling;
  int64_t seed = -1;
};

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  if (g_interrupted.load()) _exit(130);  // second Ctrl-C: leave now
  g_interrupted.store(true);
}

int run_run(RunOptions o) {
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) return report_error(fmt::format("cannot read prompt file '{}'", o.prompt_file));
    std::ostringstream ss;
    ss << in.rdbuf();
    o.prompt = ss.str();
  }
  if (o.prompt.empty()) return report_error("the prompt is empty (give -p TEXT or -f FILE)");

  EngineOptions eo;
  eo.model.strict_quant = o.strict_quant;
  auto engine = Engine::load(o.model, eo);
  if (!engine.ok()) return report_error(engine.status());
  SessionOptions so;
  so.n_ctx = o.n_ctx;
  so.n_threads = o.n_threads;
  auto session = (*engine)->open_session(so);
  if (!session.ok()) return report_error(session.status());

  GenerateParams gp = make_generate_params(o.n_predict, o.sampling, o.seed, o.stop);
  gp.ignore_eog = o.ignore_eos;

  g_interrupted.store(false);
  auto old_handler = std::signal(SIGINT, on_sigint);

  if (o.display_prompt) {
    std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
    std::fflush(stdout);
  }
  auto result = (*session)->generate(
      o.prompt, gp,
      [](std::string_view text, int32_t) {
        if (!text.empty()) {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      },
      &g_interrupted);
  std::signal(SIGINT, old_handler);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (!result.ok()) return report_error(result.status());
  if (o.stats) {
    fmt::print(stderr, "{}\n", result->stats.to_json());
    std::fflush(stderr);
  }
  return result->stop_reason == StopReason::kCancelled ? 130 : 0;
}

}  // namespace

void register_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate a continuation of a prompt");
  sub->footer(
      "Output: stdout gets the prompt (unless --no-display-prompt), then the continuation as it\n"
      "is generated, then a newline. The last line of stderr is a one-line JSON object of stats\n"
      "(load_ms, ttft_ms, prefill_tokens, prefill_tps, decode_tokens, decode_tps, peak_rss_bytes,\n"
      "stop_reason, seed, ...) unless --no-stats. Exit status: 0 ok, 1 error, 2 usage, 130 "
      "Ctrl-C.\n"
      "Example: edgelm run -m model.gguf -p \"Once upon a time\" -n 32 --temp 0");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  auto* p = sub->add_option("-p,--prompt", o->prompt, "Prompt text");
  auto* f = sub->add_option("-f,--file", o->prompt_file, "Read the prompt from a file");
  p->excludes(f);
  sub->add_option("-n,--n-predict", o->n_predict,
                  "Tokens to generate at most; -1 = until end of text or a full context, 0 = none")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->n_threads, "Threads; 0 = physical cores")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->n_ctx, "Context size in tokens; 0 = model's, at most 4096")
      ->capture_default_str();
  sub->add_option("--stop", o->stop,
                  "Stop when this text appears (not printed; \\n, \\t escapes); may be repeated");
  sub->add_flag("--stats,!--no-stats", o->stats,
                "Print the stats JSON line on stderr (default on)");
  sub->add_flag("!--no-display-prompt", o->display_prompt, "Print only the continuation");
  sub->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-text tokens");
  sub->add_flag("--strict-quant", o->strict_quant,
                "Refuse to load if a tensor would be converted at load (see `edgelm audit`)");
  add_sampling_options(sub, o->sampling, o->seed);
  sub->callback([o] {
    if (o->prompt.empty() && o->prompt_file.empty()) {
      report_error("run needs a prompt: -p TEXT or -f FILE (see edgelm run --help)");
      exit_with(2);  // a usage error
    }
    exit_with(run_run(*o));
  });
}

}  // namespace edgelm::cli
