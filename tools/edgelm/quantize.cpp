// `edgelm quantize IN OUT --type q8_0|q4_0|q4_k_m|q5_k_m|q6_k [--threads N] [--awq CALIB.txt]`:
// an F32/F16/BF16 GGUF to a quantized GGUF with llama.cpp's mixture rules (model/quantize-model.h),
// readable by llama.cpp too. Progress per tensor on stderr; a summary line at the end. The output
// is written atomically: on any error OUT is left as it was (absent or the previous file).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "model/awq.h"
#include "model/model.h"
#include "model/quantize-model.h"
#include "subcommands.h"
#include "tokenizer/tokenizer.h"

namespace edgelm::cli {

namespace {

struct QuantizeCliOptions {
  std::string in;
  std::string out;
  std::string type;
  int n_threads = 0;
  bool quiet = false;
  std::string awq;  // calibration text
  int awq_tokens = 2048;
};

// --awq: per-channel scales from the source model's activations on the calibration text.
Status add_awq_scales(const QuantizeCliOptions& o, QuantizeOptions& qo) {
  std::ifstream in(o.awq, std::ios::binary);
  if (!in) return Status::not_found(fmt::format("cannot read calibration text '{}'", o.awq));
  std::ostringstream ss;
  ss << in.rdbuf();
  ASSIGN_OR_RETURN(auto model, Model::load(o.in, {.log_summary = false}));
  ASSIGN_OR_RETURN(auto tok, Tokenizer::from_gguf(model->gguf()));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->encode(ss.str(), true, false));
  AwqOptions ao;
  ao.preset = qo.preset;
  ao.max_tokens = o.awq_tokens;
  ao.n_threads = o.n_threads;
  ASSIGN_OR_RETURN(AwqResult r, compute_awq_scales(*model, ids, ao));
  int scaled = 0;
  for (const AwqLayerChoice& c : r.choices) {
    scaled += c.alpha > 0;
    if (!o.quiet) {
      fmt::print(stderr, "awq: layer {:>3} {:<9} alpha {:.3f}  error {:.4g} -> {:.4g} ({:+.1f}%)\n",
                 c.layer, c.site == 0 ? "attn qkv" : "ffn gate/up", c.alpha, c.err_plain,
                 c.err_best, c.err_plain > 0 ? 100 * (c.err_best - c.err_plain) / c.err_plain : 0);
    }
  }
  fmt::print(stderr, "awq: {} calibration tokens from {}; {} of {} layer sites scaled\n", r.tokens,
             o.awq, scaled, r.choices.size());
  qo.column_scales = std::move(r.column_scales);
  qo.norm_divisors = std::move(r.norm_divisors);
  return Status::ok_status();
}

int run_quantize(const QuantizeCliOptions& o) {
  auto preset = quant_preset_from_name(o.type);
  if (!preset) {
    return report_error(
        fmt::format("unknown --type '{}' (expected q8_0, q4_0, q4_k_m, q5_k_m or q6_k)", o.type));
  }
  if (o.in == o.out) return report_error("IN and OUT are the same file; write to a new path");
  QuantizeOptions qo;
  qo.preset = *preset;
  qo.n_threads = o.n_threads;
  if (!o.awq.empty()) {
    Status st = add_awq_scales(o, qo);
    if (!st.ok()) return report_error(st.with_context("--awq"));
  }
  if (!o.quiet) {
    qo.progress = [](const QuantizeProgress& p) {
      const TensorQuantPlan& t = *p.tensor;
      fmt::print(stderr,
                 "[{:>4}/{:>4}] {:<36} {:<16} {:>5} -> {:<5} {:>9.2f} MiB -> {:>8.2f} MiB  {}\n",
                 p.index, p.count, t.name, fmt::format("{}", t.dims), type_name(t.src_type),
                 type_name(t.dst_type), t.src_bytes / 1048576.0, t.dst_bytes / 1048576.0, t.rule);
      std::fflush(stderr);
    };
  }
  auto r = quantize_model(o.in, o.out, qo);
  if (!r.ok()) return report_error(r.status());
  std::string types;
  for (const auto& [name, n] : r->type_counts) types += fmt::format(" {}:{}", name, n);
  fmt::print(
      stderr, "quantize: {} -> {} ({}): {:.2f} MiB -> {:.2f} MiB ({:.2f}x) in {:.2f} s;{}\n", o.in,
      o.out, quant_preset_name(*preset), r->src_bytes / 1048576.0, r->dst_bytes / 1048576.0,
      r->dst_bytes ? static_cast<double>(r->src_bytes) / r->dst_bytes : 0.0, r->seconds, types);
  return 0;
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "Quantize an F32/F16/BF16 GGUF (llama.cpp's mixture rules, ggml layouts)");
  sub->add_option("IN", o->in, "Source GGUF (F32, F16 or BF16 weights)")->required();
  sub->add_option("OUT", o->out, "Output GGUF (written atomically)")->required();
  sub->add_option("--type", o->type, "q8_0, q4_0, q4_k_m, q5_k_m or q6_k")->required();
  sub->add_option("-t,--threads", o->n_threads, "Threads; 0 = all hardware threads")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("-q,--quiet", o->quiet, "No per-tensor progress lines");
  sub->add_option("--awq", o->awq,
                  "Calibration text: activation-aware per-channel scales (for 4-bit types), "
                  "folded into the RMSNorm weights");
  sub->add_option("--awq-tokens", o->awq_tokens, "Calibration tokens used at most")
      ->check(CLI::PositiveNumber);
  sub->footer(
      "Output: one progress line per tensor on stderr ([i/n] name shape src -> dst, sizes, the\n"
      "rule that chose the type), then a summary line. Exit status: 0 ok, 1 error (OUT "
      "unchanged).");
  sub->callback([o] { exit_with(run_quantize(*o)); });
}

}  // namespace edgelm::cli
