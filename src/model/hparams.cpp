#include "model/hparams.h"

#include <fmt/format.h>

#include <cmath>

namespace edgelm {
namespace {

class KeyReader {
 public:
  KeyReader(const GgufFile& f, std::string prefix) : f_(f), prefix_(std::move(prefix)) {}

  std::string key(std::string_view k) const { return prefix_ + "." + std::string(k); }

  StatusOr<int64_t> require_int(std::string_view k) const {
    const std::string full = key(k);
    const GgufValue* v = f_.find(full);
    if (!v) return Status::not_found(fmt::format("{}: missing metadata key '{}'", f_.path(), full));
    std::optional<int64_t> x = f_.get_int(full);
    if (!x) {
      return Status::invalid_argument(
          fmt::format("{}: metadata key '{}' has type {}, expected an integer", f_.path(), full,
                      gguf_type_name(v->type)));
    }
    return *x;
  }
  StatusOr<int64_t> optional_int(std::string_view k, int64_t def) const {
    if (!f_.find(key(k))) return def;
    return require_int(k);
  }
  StatusOr<double> require_float(std::string_view k) const {
    const std::string full = key(k);
    const GgufValue* v = f_.find(full);
    if (!v) return Status::not_found(fmt::format("{}: missing metadata key '{}'", f_.path(), full));
    std::optional<double> x = f_.get_float(full);
    if (!x) {
      return Status::invalid_argument(
          fmt::format("{}: metadata key '{}' has type {}, expected a number", f_.path(), full,
                      gguf_type_name(v->type)));
    }
    return *x;
  }
  StatusOr<double> optional_float(std::string_view k, double def) const {
    if (!f_.find(key(k))) return def;
    return require_float(k);
  }

 private:
  const GgufFile& f_;
  std::string prefix_;
};

Status positive(const GgufFile& f, const std::string& key, int64_t v) {
  if (v <= 0) {
    return Status::invalid_argument(
        fmt::format("{}: metadata '{}' = {}, expected > 0", f.path(), key, v));
  }
  return Status::ok_status();
}

}  // namespace

StatusOr<HParams> HParams::from_gguf(const GgufFile& file) {
  HParams hp;
  const GgufValue* arch_v = file.find("general.architecture");
  if (!arch_v)
    return Status::not_found(
        fmt::format("{}: missing metadata key 'general.architecture'", file.path()));
  ASSIGN_OR_RETURN(hp.arch, file.require_string("general.architecture"));
  hp.arch_info = find_arch(hp.arch);
  if (!hp.arch_info) {
    return Status::unimplemented(fmt::format("{}: unsupported architecture '{}' (supported: {})",
                                             file.path(), hp.arch, supported_arch_names()));
  }
  hp.rope_type = hp.arch_info->rope_type;
  KeyReader r(file, hp.arch);

  ASSIGN_OR_RETURN(hp.n_embd, r.require_int("embedding_length"));
  RETURN_IF_ERROR(positive(file, r.key("embedding_length"), hp.n_embd));
  ASSIGN_OR_RETURN(hp.n_layer, r.require_int("block_count"));
  RETURN_IF_ERROR(positive(file, r.key("block_count"), hp.n_layer));
  ASSIGN_OR_RETURN(hp.n_head, r.require_int("attention.head_count"));
  RETURN_IF_ERROR(positive(file, r.key("attention.head_count"), hp.n_head));
  ASSIGN_OR_RETURN(hp.n_head_kv, r.optional_int("attention.head_count_kv", hp.n_head));
  RETURN_IF_ERROR(positive(file, r.key("attention.head_count_kv"), hp.n_head_kv));
  ASSIGN_OR_RETURN(hp.n_ff, r.require_int("feed_forward_length"));
  RETURN_IF_ERROR(positive(file, r.key("feed_forward_length"), hp.n_ff));
  ASSIGN_OR_RETURN(hp.n_ctx_train, r.require_int("context_length"));
  RETURN_IF_ERROR(positive(file, r.key("context_length"), hp.n_ctx_train));

  if (hp.n_head % hp.n_head_kv != 0) {
    return Status::invalid_argument(fmt::format(
        "{}: {} = {} is not a multiple of {} = {}", file.path(), r.key("attention.head_count"),
        hp.n_head, r.key("attention.head_count_kv"), hp.n_head_kv));
  }
  int64_t default_head_dim = hp.n_embd / hp.n_head;
  if (!file.find(r.key("attention.key_length")) && hp.n_embd % hp.n_head != 0) {
    return Status::invalid_argument(fmt::format("{}: {} = {} is not a multiple of {} = {}",
                                                file.path(), r.key("embedding_length"), hp.n_embd,
                                                r.key("attention.head_count"), hp.n_head));
  }
  ASSIGN_OR_RETURN(hp.head_dim, r.optional_int("attention.key_length", default_head_dim));
  ASSIGN_OR_RETURN(int64_t v_len, r.optional_int("attention.value_length", hp.head_dim));
  RETURN_IF_ERROR(positive(file, r.key("attention.key_length"), hp.head_dim));
  if (v_len != hp.head_dim) {
    return Status::unimplemented(fmt::format("{}: {} = {} differs from {} = {} (unsupported)",
                                             file.path(), r.key("attention.value_length"), v_len,
                                             r.key("attention.key_length"), hp.head_dim));
  }
  ASSIGN_OR_RETURN(hp.n_rot, r.optional_int("rope.dimension_count", hp.head_dim));
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return Status::invalid_argument(
        fmt::format("{}: {} = {}, expected an even number in (0, head_dim = {}]", file.path(),
                    r.key("rope.dimension_count"), hp.n_rot, hp.head_dim));
  }

  ASSIGN_OR_RETURN(double eps, r.require_float("attention.layer_norm_rms_epsilon"));
  if (!(eps > 0) || !(eps < 1)) {
    return Status::invalid_argument(fmt::format("{}: {} = {}, expected in (0, 1)", file.path(),
                                                r.key("attention.layer_norm_rms_epsilon"), eps));
  }
  hp.rms_eps = static_cast<float>(eps);
  ASSIGN_OR_RETURN(double base, r.optional_float("rope.freq_base", 10000.0));
  if (!(base > 0) || !std::isfinite(base)) {
    return Status::invalid_argument(
        fmt::format("{}: {} = {}, expected > 0", file.path(), r.key("rope.freq_base"), base));
  }
  hp.rope_freq_base = static_cast<float>(base);

  // RoPE scaling: none or linear (positions divided by the factor). YaRN/longrope unsupported.
  std::string scaling = "linear";
  if (auto t = file.get_string(r.key("rope.scaling.type"))) scaling = *t;
  double factor = 0;
  if (file.find(r.key("rope.scaling.factor"))) {
    ASSIGN_OR_RETURN(factor, r.require_float("rope.scaling.factor"));
  } else if (file.find(r.key("rope.scale_linear"))) {
    ASSIGN_OR_RETURN(factor, r.require_float("rope.scale_linear"));
  }
  if (scaling == "none") {
    factor = 0;
  } else if (scaling != "linear") {
    return Status::unimplemented(fmt::format("{}: {} = '{}' is not supported (none, linear)",
                                             file.path(), r.key("rope.scaling.type"), scaling));
  }
  if (factor < 0 || !std::isfinite(factor)) {
    return Status::invalid_argument(fmt::format("{}: {} = {}, expected >= 0", file.path(),
                                                r.key("rope.scaling.factor"), factor));
  }
  hp.rope_freq_scale = factor == 0 ? 1.0f : static_cast<float>(1.0 / factor);

  // Vocabulary: the rows of token_embd.weight, cross-checked with the metadata that states it.
  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd)
    return Status::not_found(fmt::format("{}: missing tensor 'token_embd.weight'", file.path()));
  if (embd->dims.size() != 2 || embd->ne(0) != hp.n_embd) {
    return Status::invalid_argument(
        fmt::format("{}: tensor 'token_embd.weight' has shape {}, expected [{}, n_vocab]",
                    file.path(), embd->shape_string(), hp.n_embd));
  }
  hp.n_vocab = embd->ne(1);
  if (hp.n_vocab <= 0 || hp.n_vocab > INT32_MAX) {
    return Status::invalid_argument(
        fmt::format("{}: tensor 'token_embd.weight' has {} rows, expected a vocabulary size",
                    file.path(), hp.n_vocab));
  }
  if (file.find(r.key("vocab_size"))) {
    ASSIGN_OR_RETURN(int64_t vs, r.require_int("vocab_size"));
    if (vs != hp.n_vocab) {
      return Status::invalid_argument(
          fmt::format("{}: {} = {} but tensor 'token_embd.weight' has {} rows", file.path(),
                      r.key("vocab_size"), vs, hp.n_vocab));
    }
  }
  if (const GgufValue* toks = file.find("tokenizer.ggml.tokens")) {
    if (toks->type == GgufType::kArray && static_cast<int64_t>(toks->array_count) != hp.n_vocab) {
      return Status::invalid_argument(fmt::format(
          "{}: tokenizer.ggml.tokens has {} entries but tensor 'token_embd.weight' has {} rows",
          file.path(), toks->array_count, hp.n_vocab));
    }
  }
  return hp;
}

std::string HParams::to_string() const {
  return fmt::format(
      "{}: n_vocab={} n_embd={} n_layer={} n_head={} n_head_kv={} head_dim={} n_ff={} "
      "n_ctx_train={} n_rot={} "
      "rope={} freq_base={} freq_scale={} rms_eps={}",
      arch, n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train, n_rot,
      rope_type == RopeType::kNeox ? "neox" : "norm", rope_freq_base, rope_freq_scale, rms_eps);
}

}  // namespace edgelm
