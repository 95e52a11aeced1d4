// `edgelm chat -m MODEL [--system S] [sampling flags] [-n N] [-c CTX] [-t T]`
//
// Interactive multi-turn chat with the model's chat template (detected from the GGUF's
// tokenizer.chat_template, or --chat-format). Reads one user message per stdin line; the reply
// streams to stdout and ends with "\n". Earlier turns stay in the KV cache (only each new turn
// is evaluated). Commands: /exit or /quit (or end of input) ends; /reset forgets the turns.
// When stdin is a terminal a "> " prompt is shown. --stats prints each turn's stats JSON line
// on stderr. Ctrl-C stops the reply being generated; a second Ctrl-C quits.
#include "engine/chat.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "subcommands.h"

namespace edgelm::cli {

namespace {

struct ChatOptions {
  std::string model;
  std::string system;
  std::string chat_format;
  int n_predict = -1;
  int n_threads = 0;
  int n_ctx = 0;
  std::vector<std::string> stop;
  bool stats = false;
  bool strict_quant = false;
  SamplingParams sampling;
  int64_t seed = -1;
};

std::atomic<bool> g_chat_interrupted{false};

extern "C" void on_chat_sigint(int) {
  if (g_chat_interrupted.load()) _exit(130);
  g_chat_interrupted.store(true);
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int run_chat(const ChatOptions& o) {
  EngineOptions eo;
  eo.chat_format = o.chat_format;
  eo.model.strict_quant = o.strict_quant;
  auto engine = Engine::load(o.model, eo);
  if (!engine.ok()) return report_error(engine.status());
  SessionOptions so;
  so.n_ctx = o.n_ctx;
  so.n_threads = o.n_threads;
  auto session = (*engine)->open_session(so);
  if (!session.ok()) return report_error(session.status());

  GenerateParams gp = make_generate_params(o.n_predict, o.sampling, o.seed, o.stop);

  Chat chat(**session, (*engine)->chat_format(), o.system);
  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  if (interactive) {
    fmt::print(stderr, "edgelm chat: {} ({} format). /exit quits, /reset starts over.\n", o.model,
               chat_format_name(chat.format()));
  }
  auto old_handler = std::signal(SIGINT, on_chat_sigint);
  std::string line;
  int rc = 0;
  while (true) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    const std::string msg = trim(line);
    if (msg.empty()) continue;
    if (msg == "/exit" || msg == "/quit") break;
    if (msg == "/reset") {
      chat.clear();
      (*session)->reset();
      continue;
    }
    g_chat_interrupted.store(false);
    auto r = chat.send(
        msg, gp,
        [](std::string_view text, int32_t) {
          if (!text.empty()) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
          }
          return true;
        },
        &g_chat_interrupted);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!r.ok()) {
      report_error(r.status());
      if (r.status().code() == StatusCode::kOutOfRange) {
        fmt::print(stderr,
                   "edgelm: the conversation no longer fits the context; /reset starts over\n");
      }
      rc = 1;
      if (!interactive) break;
      continue;
    }
    rc = 0;
    if (o.stats) {
      fmt::print(stderr, "{}\n", r->stats.to_json());
      std::fflush(stderr);
    }
  }
  std::signal(SIGINT, old_handler);
  return rc;
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub =
      app.add_subcommand("chat", "Interactive multi-turn chat using the model's chat template");
  sub->footer(
      "Reads one message per line from stdin; each reply streams to stdout and ends with a\n"
      "newline. /exit, /quit or end of input ends the chat; /reset forgets the conversation.\n"
      "Example: echo 'Hello!' | edgelm chat -m model.gguf --system 'You are terse.' --temp 0");
  sub->add_option("-m,--model", o->model, "GGUF model file")->required();
  sub->add_option("--system", o->system, "System prompt");
  sub->add_option("--chat-format", o->chat_format,
                  "Override the detected format: chatml, llama3, llama2, phi3, plain");
  sub->add_option("-n,--n-predict", o->n_predict,
                  "Tokens per reply at most; -1 = until end of turn or a full context")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->n_threads, "Threads; 0 = physical cores")
      ->capture_default_str();
  sub->add_option("-c,--ctx-size", o->n_ctx, "Context size in tokens; 0 = model's, at most 4096")
      ->capture_default_str();
  sub->add_option("--stop", o->stop, "Extra stop text (\\n, \\t escapes); may be repeated");
  sub->add_flag("--stats,!--no-stats", o->stats, "Print each turn's stats JSON line on stderr");
  sub->add_flag("--strict-quant", o->strict_quant,
                "Refuse to load if a tensor would be converted at load (see `edgelm audit`)");
  add_sampling_options(sub, o->sampling, o->seed);
  sub->callback([o] { exit_with(run_chat(*o)); });
}

}  // namespace edgelm::cli
