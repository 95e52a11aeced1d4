#include "model/model.h"

#include <fmt/format.h>

#include <map>

#include "base/log.h"

namespace edgelm {

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& path, const ModelOptions& options) {
  auto file = GgufFile::open(path);
  if (!file.ok()) return file.status().with_context(fmt::format("loading model '{}'", path));
  return from_gguf(std::move(file).value(), options);
}

StatusOr<std::unique_ptr<Model>> Model::from_gguf(std::unique_ptr<GgufFile> file,
                                                  const ModelOptions& options) {
  if (!file) return Status::invalid_argument("Model::from_gguf: null file");
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  ASSIGN_OR_RETURN(m->hparams_, HParams::from_gguf(*m->file_));
  auto policy = LoadPolicy::from_env();
  if (!policy.ok()) return policy.status();
  for (GgmlType t : options.disabled_types) policy->disabled_types.push_back(t);
  policy->strict_quant = options.strict_quant;
  policy->repack = policy->repack && options.repack;
  ASSIGN_OR_RETURN(m->weights_, bind_weights(*m->file_, m->hparams_, *policy));
  size_t n_converted = 0;
  const TensorLoadRecord* first = nullptr;
  for (const TensorLoadRecord& r : m->weights_.load_records) {
    if (r.converted && n_converted++ == 0) first = &r;
  }
  if (first) {
    EDGELM_LOG_WARN(
        "{}: {} tensor(s) converted at load (+{:.1f} MiB), e.g. '{}' {} -> {} ({}); see `edgelm "
        "audit`",
        m->path(), n_converted, m->weights_.converted_bytes / 1048576.0, first->name,
        type_name(first->stored_type), type_name(first->exec_type), first->reason);
  }
  if (options.log_summary) {
    EDGELM_LOG_INFO("loaded {} ({}, {}, {:.1f} MiB of weights{})", m->path(),
                    m->hparams_.to_string(), m->dominant_type(), m->weights_bytes() / 1048576.0,
                    m->weights_.tied_output ? ", tied output" : "");
  }
  return m;
}

std::string Model::dominant_type() const {
  std::map<std::string, size_t> bytes;
  auto add = [&](const TensorRef& t) {
    if (t && t.ne1 > 1) bytes[type_name(t.type)] += t.info ? t.info->nbytes : 0;
  };
  for (const LayerWeights& l : weights_.layers) {
    add(l.wq), add(l.wk), add(l.wv), add(l.wo), add(l.ffn_gate), add(l.ffn_up), add(l.ffn_down);
  }
  std::string best = "unknown";
  size_t most = 0;
  for (const auto& [name, n] : bytes)
    if (n > most) most = n, best = name;
  return best;
}

}  // namespace edgelm
