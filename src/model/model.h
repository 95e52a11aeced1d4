// A loaded model: the memory-mapped GGUF file, its hyperparameters and the weights bound into
// the mapping (never copied). Immutable after load and shareable by several Contexts (each
// Context owns its own KV cache and scratch). The engine builds the tokenizer from gguf().
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load("model.gguf"));
//   ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::create(*model));
//   ASSIGN_OR_RETURN(std::span<const float> logits, ctx->eval(prompt_ids));
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace edgelm {

struct ModelOptions {
  // Log a one-line summary (arch, sizes, types) at info level after loading.
  bool log_summary = true;
  // Matrix types to treat as having no kernel (converted at load), in addition to those named
  // by EDGELM_DISABLE_KERNEL (see model/weights.h).
  std::vector<GgmlType> disabled_types = {};
  // Refuse to load (failed_precondition) when any tensor would be converted at load.
  bool strict_quant = false;
  // Repack matrices into the kernels' faster interleaved layout at load (model/weights.h);
  // false keeps every matrix in the mapped file (so does EDGELM_REPACK=0).
  bool repack = true;
};

class Model {
 public:
  static StatusOr<std::unique_ptr<Model>> load(const std::string& path,
                                               const ModelOptions& options = {});
  // Builds a model over an already opened file (takes ownership).
  static StatusOr<std::unique_ptr<Model>> from_gguf(std::unique_ptr<GgufFile> file,
                                                    const ModelOptions& options = {});

  const HParams& hparams() const { return hparams_; }
  const GgufFile& gguf() const { return *file_; }
  const Weights& weights() const { return weights_; }
  const std::string& path() const { return file_->path(); }
  // Bytes of all weight tensors (mapped, not copied).
  size_t weights_bytes() const { return weights_.total_bytes; }
  // Most common matrix type, e.g. "q4_K" or "f16" (for reports).
  std::string dominant_type() const;

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  HParams hparams_;
  Weights weights_;
};

}  // namespace edgelm
