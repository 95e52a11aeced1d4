// Helpers shared by the CLI subcommands (see subcommands.h).
#include <fmt/format.h>

#include <cstdio>

#include "subcommands.h"

namespace edgelm::cli {

void exit_with(int code) {
  if (code != 0) throw CLI::RuntimeError(code);
}

int report_error(const std::string& message) {
  std::fflush(stdout);
  fmt::print(stderr, "edgelm: error: {}\n", message);
  return 1;
}

int report_error(const Status& status) { return report_error(status.to_string()); }

void add_sampling_options(CLI::App* sub, SamplingParams& sp, int64_t& seed) {
  sub->add_option("--temp", sp.temperature, "Temperature; 0 = greedy (argmax)")
      ->capture_default_str();
  sub->add_option("--top-k", sp.top_k, "Keep the k most likely tokens; 0 = off")
      ->capture_default_str();
  sub->add_option("--top-p", sp.top_p,
                  "Nucleus sampling: smallest set with probability >= p; 1 = off")
      ->capture_default_str();
  sub->add_option("--min-p", sp.min_p, "Drop tokens with p < min_p * p(best); 0 = off")
      ->capture_default_str();
  sub->add_option("--repeat-penalty", sp.repeat_penalty, "Penalize repeated tokens; 1 = off")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", sp.repeat_last_n,
                  "Tokens of history the penalties look at; 0 = off, -1 = all")
      ->capture_default_str();
  sub->add_option("--frequency-penalty", sp.frequency_penalty,
                  "Subtract count * value from a repeated token's logit; 0 = off")
      ->capture_default_str();
  sub->add_option("--presence-penalty", sp.presence_penalty,
                  "Subtract value once from a token that occurred; 0 = off")
      ->capture_default_str();
  sub->add_option("-s,--seed", seed, "Random seed; -1 = random (the seed used is in the stats)")
      ->capture_default_str();
}

void apply_seed(SamplingParams& sp, int64_t seed) {
  sp.seed = seed < 0 ? kRandomSeed : static_cast<uint64_t>(seed);
}

GenerateParams make_generate_params(int n_predict, const SamplingParams& sampling, int64_t seed,
                                    const std::vector<std::string>& stop) {
  GenerateParams gp;
  gp.max_tokens = n_predict;
  gp.sampling = sampling;
  apply_seed(gp.sampling, seed);
  for (const auto& s : stop) gp.stop.push_back(unescape(s));
  return gp;
}

std::string unescape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    switch (s[i + 1]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case '\'':
        out += '\'';
        break;
      default:
        out += s[i];
        continue;  // keep the backslash; the next char follows as is
    }
    ++i;
  }
  return out;
}

}  // namespace edgelm::cli
