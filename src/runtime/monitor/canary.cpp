// Canary runs, baselines and the perturbed-model test utility (see canary.h).
#include "runtime/monitor/canary.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/context.h"
#include "quant/quant.h"

namespace edgelm::monitor {

namespace {

constexpr const char* kBaselineFormat = "edgelm.monitor.baseline";
constexpr int kBaselineVersion = 1;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Perplexity of `tokens` (positions 1..n-1 scored) on a fresh context.
StatusOr<std::pair<double, int>> perplexity_of(Context& ctx, const std::vector<int32_t>& tokens) {
  if (tokens.size() < 2) return std::pair<double, int>{1.0, 0};
  ctx.reset();
  ASSIGN_OR_RETURN(std::span<const float> logits, ctx.eval(tokens, /*all_logits=*/true));
  const size_t nv = static_cast<size_t>(ctx.n_vocab());
  double nll = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    nll -= token_logprob(logits.subspan(i * nv, nv), tokens[i + 1]).logprob;
  }
  const int n = static_cast<int>(tokens.size() - 1);
  return std::pair<double, int>{std::exp(nll / n), n};
}

}  // namespace

std::string model_label(const Engine& engine) {
  if (auto name = engine.model().gguf().get_string("general.name"); name && !name->empty()) {
    return *name;
  }
  return std::filesystem::path(engine.model().path()).filename().string();
}

StatusOr<std::vector<CanaryPrompt>> load_canary_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("canary file '{}': cannot open", path));
  std::vector<CanaryPrompt> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    CanaryPrompt p;
    if (line[0] == '{') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("prompt") || !j["prompt"].is_string()) {
        return Status::invalid_argument(
            fmt::format("canary file '{}' line {}: expected a JSON object with a string \"prompt\"",
                        path, lineno));
      }
      p.prompt = j["prompt"].get<std::string>();
      if (j.contains("id") && j["id"].is_string()) p.id = j["id"].get<std::string>();
    } else {
      p.prompt = line;
    }
    if (p.prompt.empty()) {
      return Status::invalid_argument(
          fmt::format("canary file '{}' line {}: empty prompt", path, lineno));
    }
    if (p.id.empty()) p.id = fmt::format("p{}", out.size());
    out.push_back(std::move(p));
  }
  if (out.empty()) {
    return Status::invalid_argument(fmt::format("canary file '{}': no prompts", path));
  }
  return out;
}

nlohmann::json to_json(const CanaryOptions& o) {
  return {{"max_tokens", o.max_tokens},
          {"samples_per_prompt", o.samples_per_prompt},
          {"seed", o.seed},
          {"temperature", o.temperature},
          {"top_k", o.top_k},
          {"top_p", o.top_p}};
}

StatusOr<CanaryOptions> canary_options_from_json(const nlohmann::json& j) {
  CanaryOptions o;
  if (!j.is_object()) return Status::invalid_argument("baseline options: expected an object");
  try {
    o.max_tokens = j.value("max_tokens", o.max_tokens);
    o.samples_per_prompt = j.value("samples_per_prompt", o.samples_per_prompt);
    o.seed = j.value("seed", o.seed);
    o.temperature = j.value("temperature", o.temperature);
    o.top_k = j.value("top_k", o.top_k);
    o.top_p = j.value("top_p", o.top_p);
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("baseline options: {}", e.what()));
  }
  return o;
}

nlohmann::json to_json(const Baseline& b) {
  nlohmann::json canary = nlohmann::json::array();
  for (const auto& p : b.canary) {
    canary.push_back({{"id", p.id},
                      {"prompt", p.prompt},
                      {"greedy_tokens", p.greedy_tokens},
                      {"greedy_text", p.greedy_text},
                      {"perplexity", p.perplexity},
                      {"n_scored", p.n_scored}});
  }
  return {
      {"format", kBaselineFormat},     {"version", kBaselineVersion},
      {"created_utc", b.created_utc},  {"model", {{"path", b.model_path}, {"name", b.model_name}}},
      {"options", to_json(b.options)}, {"canary", canary},
      {"features", b.features}};
}

StatusOr<Baseline> baseline_from_json(const nlohmann::json& j_in) {
  const nlohmann::json* j = &j_in;
  if (j->is_object() && !j->contains("format")) {
    // A release manifest: quality.monitor_baseline.
    if (j->contains("quality") && (*j)["quality"].is_object() &&
        (*j)["quality"].contains("monitor_baseline")) {
      j = &(*j)["quality"]["monitor_baseline"];
    } else if (j->contains("monitor_baseline")) {
      j = &(*j)["monitor_baseline"];
    }
  }
  if (!j->is_object() || j->value("format", std::string()) != kBaselineFormat) {
    return Status::invalid_argument(fmt::format(
        "baseline: expected \"format\": \"{}\" (or a manifest with quality.monitor_baseline)",
        kBaselineFormat));
  }
  const int version = j->value("version", 0);
  if (version != kBaselineVersion) {
    return Status::unimplemented(fmt::format("baseline: version {} (this runtime reads version {})",
                                             version, kBaselineVersion));
  }
  Baseline b;
  try {
    b.created_utc = j->value("created_utc", std::string());
    if (j->contains("model")) {
      b.model_path = (*j)["model"].value("path", std::string());
      b.model_name = (*j)["model"].value("name", std::string());
    }
    if (j->contains("options")) {
      ASSIGN_OR_RETURN(b.options, canary_options_from_json((*j)["options"]));
    }
    if (!j->contains("canary") || !(*j)["canary"].is_array()) {
      return Status::invalid_argument("baseline: missing the \"canary\" array");
    }
    for (const auto& c : (*j)["canary"]) {
      CanaryPromptResult p;
      p.id = c.value("id", std::string());
      p.prompt = c.at("prompt").get<std::string>();
      p.greedy_tokens = c.at("greedy_tokens").get<std::vector<int32_t>>();
      p.greedy_text = c.value("greedy_text", std::string());
      p.perplexity = c.at("perplexity").get<double>();
      p.n_scored = c.value("n_scored", 0);
      b.canary.push_back(std::move(p));
    }
    if (j->contains("features")) {
      b.features = (*j)["features"].get<std::map<std::string, std::vector<double>>>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(fmt::format("baseline: {}", e.what()));
  }
  for (const auto& [name, values] : b.features) {
    if (!feature_value(RequestFeatures{}, name)) {
      return Status::invalid_argument(fmt::format("baseline: unknown feature '{}'", name));
    }
  }
  return b;
}

StatusOr<Baseline> load_baseline(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("baseline '{}': cannot open", path));
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return Status::invalid_argument(fmt::format("baseline '{}': not valid JSON", path));
  }
  auto b = baseline_from_json(j);
  if (!b.ok()) return b.status().with_context(path);
  return b;
}

Status save_baseline(const Baseline& b, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io(fmt::format("baseline '{}': cannot write", tmp));
    // Greedy texts may hold partial UTF-8 characters: replaced, the token ids stay exact.
    out << to_json(b).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out.flush()) return Status::io(fmt::format("baseline '{}': write failed", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::io(fmt::format("baseline '{}': rename failed: {}", path, ec.message()));
  return Status::ok_status();
}

StatusOr<CanaryRun> run_canary(const Engine& engine, const std::vector<CanaryPrompt>& prompts,
                               const CanaryOptions& options, const Baseline* reference,
                               const MayRunNow& may_run_now, const std::atomic<bool>* cancel) {
  if (prompts.empty()) return Status::invalid_argument("canary: no prompts");
  if (options.max_tokens <= 0 || options.samples_per_prompt < 0) {
    return Status::invalid_argument(
        fmt::format("canary: max_tokens must be > 0 and samples_per_prompt >= 0, found {} and {}",
                    options.max_tokens, options.samples_per_prompt));
  }
  // Tokenize first: size the context for the longest prompt (+ reference answer).
  std::vector<std::vector<int32_t>> ids;
  size_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSIGN_OR_RETURN(auto t, engine.tokenizer().encode(prompts[i].prompt, true, true));
    size_t need = t.size() + static_cast<size_t>(options.max_tokens);
    if (reference != nullptr && i < reference->canary.size()) {
      need = std::max(need, t.size() + reference->canary[i].greedy_tokens.size());
    }
    longest = std::max(longest, need);
    ids.push_back(std::move(t));
  }
  if (reference != nullptr && reference->canary.size() != prompts.size()) {
    return Status::invalid_argument(
        fmt::format("canary: the baseline has {} prompts, the canary set {}",
                    reference->canary.size(), prompts.size()));
  }
  SessionOptions so;
  so.n_ctx = options.n_ctx > 0 ? options.n_ctx : static_cast<int>(longest) + 1;
  so.n_threads = options.n_threads;
  ASSIGN_OR_RETURN(auto session, engine.open_session(so));
  ContextOptions co;
  co.n_ctx = so.n_ctx;
  co.n_threads = options.n_threads;
  ASSIGN_OR_RETURN(auto ctx, Context::create(engine.model(), co));

  auto allowed = [&]() -> Status {
    if (cancel != nullptr && cancel->load()) return Status::cancelled("canary: cancelled");
    if (may_run_now && !may_run_now()) {
      return Status::cancelled("canary: stopped, may_run_now() returned false");
    }
    return Status::ok_status();
  };

  CanaryRun run;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RETURN_IF_ERROR(allowed());
    GenerateParams gp;
    gp.max_tokens = options.max_tokens;
    gp.sampling = SamplingParams::greedy();
    gp.reuse_cache = false;
    ASSIGN_OR_RETURN(GenerateResult g, session->generate_tokens(ids[i], gp, {}, cancel));
    CanaryPromptResult pr;
    pr.id = prompts[i].id;
    pr.prompt = prompts[i].prompt;
    pr.greedy_tokens = g.tokens;
    pr.greedy_text = g.text;
    std::vector<int32_t> scored = ids[i];
    const auto& answer =
        reference != nullptr ? reference->canary[i].greedy_tokens : pr.greedy_tokens;
    scored.insert(scored.end(), answer.begin(), answer.end());
    ASSIGN_OR_RETURN(auto ppl, perplexity_of(*ctx, scored));
    pr.perplexity = ppl.first;
    pr.n_scored = ppl.second;
    run.prompts.push_back(std::move(pr));

    for (int k = 0; k < options.samples_per_prompt; ++k) {
      RETURN_IF_ERROR(allowed());
      GenerateParams sp;
      sp.max_tokens = options.max_tokens;
      sp.reuse_cache = false;
      sp.sampling.temperature = options.temperature;
      sp.sampling.top_k = options.top_k;
      sp.sampling.top_p = options.top_p;
      sp.sampling.seed = options.seed + i * static_cast<uint64_t>(options.samples_per_prompt) +
                         static_cast<uint64_t>(k);
      ASSIGN_OR_RETURN(GenerateResult s, session->generate_tokens(ids[i], sp, {}, cancel));
      RequestFeatures f = features_from_result(s, model_label(engine));
      f.source = "canary";
      run.samples.push_back(std::move(f));
    }
  }
  return run;
}

StatusOr<Baseline> make_baseline(const Engine& engine, const std::string& model_path,
                                 const std::vector<CanaryPrompt>& prompts,
                                 const CanaryOptions& options) {
  ASSIGN_OR_RETURN(CanaryRun run, run_canary(engine, prompts, options));
  Baseline b;
  b.model_path = model_path;
  b.model_name = model_label(engine);
  b.created_utc = utc_now();
  b.options = options;
  b.canary = std::move(run.prompts);
  b.features = feature_columns(run.samples);
  return b;
}

StatusOr<Baseline> baseline_from_rows(const std::vector<RequestFeatures>& rows,
                                      const std::string& origin) {
  if (rows.empty()) {
    return Status::invalid_argument(fmt::format(
        "baseline from {}: no production rows (source \"request\") to build it from", origin));
  }
  std::map<std::string, size_t> models;
  for (const auto& r : rows) ++models[r.model];
  Baseline b;
  b.model_path = origin;
  b.model_name = std::max_element(models.begin(), models.end(), [](const auto& x, const auto& y) {
                   return x.second < y.second;
                 })->first;
  b.created_utc = utc_now();
  b.features = feature_columns(rows);
  return b;
}

double token_overlap_f1(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  if (a.empty() || b.empty()) return 0.0;
  std::map<int32_t, int> ca;
  for (int32_t t : a) ++ca[t];
  int common = 0;
  for (int32_t t : b) {
    auto it = ca.find(t);
    if (it != ca.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double p = static_cast<double>(common) / static_cast<double>(b.size());
  const double r = static_cast<double>(common) / static_cast<double>(a.size());
  return 2 * p * r / (p + r);
}

nlohmann::json CanaryReport::to_json() const {
  return {{"baseline_perplexity", baseline_perplexity},
          {"current_perplexity", current_perplexity},
          {"perplexity_ratio", perplexity_ratio},
          {"agreement", agreement},
          {"overlap", overlap},
          {"features", drift_json(features)},
          {"reasons", reasons},
          {"alarm", alarm}};
}

CanaryReport compare_canary(const Baseline& baseline, const CanaryRun& run,
                            const DriftThresholds& t) {
  CanaryReport rep;
  double nll_b = 0, nll_c = 0;
  int n_b = 0, n_c = 0, same = 0;
  double overlap = 0;
  const size_t n = std::min(baseline.canary.size(), run.prompts.size());
  for (size_t i = 0; i < n; ++i) {
    const auto& b = baseline.canary[i];
    const auto& c = run.prompts[i];
    nll_b += std::log(std::max(b.perplexity, 1e-300)) * b.n_scored;
    n_b += b.n_scored;
    nll_c += std::log(std::max(c.perplexity, 1e-300)) * c.n_scored;
    n_c += c.n_scored;
    same += b.greedy_tokens == c.greedy_tokens ? 1 : 0;
    overlap += token_overlap_f1(b.greedy_tokens, c.greedy_tokens);
  }
  rep.baseline_perplexity = n_b > 0 ? std::exp(nll_b / n_b) : 0;
  rep.current_perplexity = n_c > 0 ? std::exp(nll_c / n_c) : 0;
  rep.perplexity_ratio =
      rep.baseline_perplexity > 0 ? rep.current_perplexity / rep.baseline_perplexity : 1;
  rep.agreement = n > 0 ? static_cast<double>(same) / static_cast<double>(n) : 1;
  rep.overlap = n > 0 ? overlap / static_cast<double>(n) : 1;
  if (rep.perplexity_ratio > t.perplexity_ratio_max) {
    rep.reasons.push_back(fmt::format("canary perplexity ratio {:.3f} > {:.3f} ({:.2f} -> {:.2f})",
                                      rep.perplexity_ratio, t.perplexity_ratio_max,
                                      rep.baseline_perplexity, rep.current_perplexity));
  }
  if (rep.agreement < t.agreement_min) {
    rep.reasons.push_back(
        fmt::format("canary greedy agreement {:.3f} < {:.3f}", rep.agreement, t.agreement_min));
  }
  if (rep.overlap < t.overlap_min) {
    rep.reasons.push_back(
        fmt::format("canary token overlap {:.3f} < {:.3f}", rep.overlap, t.overlap_min));
  }
  rep.features = compare_features(baseline.features, run.samples, t);
  for (const auto& d : rep.features) {
    if (d.alarm) {
      rep.reasons.push_back(fmt::format(
          "{} drifted: KS D {:.3f} p {:.2g}, PSI {:.3f} (mean "
          "{:.4g} -> {:.4g})",
          d.feature, d.ks.statistic, d.ks.p_value, d.psi, d.baseline_mean, d.current_mean));
    }
  }
  rep.alarm = !rep.reasons.empty();
  return rep;
}

StatusOr<int> write_perturbed_model(const std::string& in, const std::string& out,
                                    const std::vector<std::string>& patterns, double relative_noise,
                                    uint64_t seed) {
  ASSIGN_OR_RETURN(auto file, GgufFile::open(in));
  GgufWriter w;
  w.set_alignment(static_cast<uint32_t>(file->alignment()));
  for (const auto& [key, value] : file->metadata()) {
    if (key == "general.alignment") continue;
    w.set_value(key, value);
  }
  std::mt19937_64 rng(seed);
  int changed = 0;
  for (const auto& t : file->tensors()) {
    const bool hit = std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
      return t.name.find(p) != std::string::npos;
    });
    if (!hit || relative_noise == 0) {
      RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, {t.data, t.nbytes}));
      continue;
    }
    if (!can_dequantize(t.type) || !can_quantize(t.type)) {
      return Status::unimplemented(
          fmt::format("perturb: tensor '{}' has a type this tool cannot "
                      "re-quantize",
                      t.name));
    }
    ASSIGN_OR_RETURN(std::vector<float> v,
                     dequantize_tensor(t.type, t.data, t.nbytes, t.n_elements, t.name));
    double ss = 0;
    for (float x : v) ss += static_cast<double>(x) * x;
    const double rms = std::sqrt(ss / std::max<size_t>(v.size(), 1));
    std::normal_distribution<double> noise(0.0, relative_noise * rms);
    for (float& x : v) x = static_cast<float>(x + noise(rng));
    std::vector<uint8_t> bytes(t.nbytes);
    RETURN_IF_ERROR(
        quantize_tensor(t.type, v.data(), t.n_elements, bytes.data(), bytes.size(), t.name));
    RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, bytes));
    ++changed;
  }
  if (changed == 0) {
    return Status::invalid_argument(
        fmt::format("perturb: no tensor of '{}' matches the given patterns", in));
  }
  RETURN_IF_ERROR(w.write(out));
  return changed;
}

}  // namespace edgelm::monitor
