#include "model/weights.h"

#include <fmt/format.h>

#include <set>
#include <string>

#include "kernels/kernels.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string supported_matrix_types() {
  return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q5_K, q6_K";
}

class Binder {
 public:
  Binder(const GgufFile& f) : f_(f) {}

  // kind: 1 = F32 vector, 2 = matrix of a supported type.
  StatusOr<TensorRef> bind(const std::string& name, std::vector<int64_t> shape, bool required) {
    const GgufTensorInfo* t = f_.find_tensor(name);
    if (!t) {
      if (!required) return TensorRef{};
      return Status::not_found(fmt::format("{}: missing tensor '{}' (expected shape {})", f_.path(),
                                           name, shape_str(shape)));
    }
    std::vector<int64_t> found = t->dims;
    while (found.size() > shape.size() && found.back() == 1) found.pop_back();
    if (found != shape) {
      return Status::invalid_argument(fmt::format("{}: tensor '{}' has shape {}, expected {}",
                                                  f_.path(), name, t->shape_string(),
                                                  shape_str(shape)));
    }
    if (shape.size() == 1) {
      if (t->type != GgmlType::kF32) {
        return Status::unimplemented(
            fmt::format("{}: tensor '{}' has type {}, expected f32 for a vector", f_.path(), name,
                        type_name(t->type)));
      }
    } else if (!is_supported_matrix_type(t->type)) {
      return Status::unimplemented(
          fmt::format("{}: tensor '{}' has unsupported type {} (supported: {})", f_.path(), name,
                      type_name(t->type), supported_matrix_types()));
    }
    const TypeTraits* tr = type_traits(t->type);
    if (!tr || shape[0] % tr->block_size != 0) {
      return Status::invalid_argument(
          fmt::format("{}: tensor '{}' row length {} is not a multiple of the {} block size {}",
                      f_.path(), name, shape[0], type_name(t->type), tr ? tr->block_size : 0));
    }
    TensorRef r;
    r.info = t;
    r.type = t->type;
    r.data = t->data;
    r.ne0 = shape[0];
    r.ne1 = shape.size() > 1 ? shape[1] : 1;
    const size_t expect = r.row_bytes() * static_cast<size_t>(r.ne1);
    if (t->nbytes < expect || !t->data) {
      return Status::data_loss(fmt::format("{}: tensor '{}' holds {} bytes, expected {}", f_.path(),
                                           name, t->nbytes, expect));
    }
    if (seen_.insert(t).second) total_ += t->nbytes;
    return r;
  }

  size_t total() const { return total_; }

 private:
  const GgufFile& f_;
  std::set<const GgufTensorInfo*> seen_;
  size_t total_ = 0;
};

}  // namespace

bool is_supported_matrix_type(GgmlType t) {
  // Needs a product kernel and a dequantizer (token embeddings are looked up by row).
  return vec_dot_supported(t) && can_dequantize(t);
}

StatusOr<Weights> bind_weights(const GgufFile& file, const HParams& hp) {
  Binder b(file);
  Weights w;
  const int64_t E = hp.n_embd, Q = hp.n_embd_q(), KV = hp.n_embd_kv(), F = hp.n_ff, V = hp.n_vocab;
  ASSIGN_OR_RETURN(w.token_embd, b.bind("token_embd.weight", {E, V}, true));
  ASSIGN_OR_RETURN(w.output_norm, b.bind("output_norm.weight", {E}, true));
  ASSIGN_OR_RETURN(w.output, b.bind("output.weight", {E, V}, false));
  if (!w.output) {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  ASSIGN_OR_RETURN(w.rope_freqs, b.bind("rope_freqs.weight", {hp.n_rot / 2}, false));
  const bool bias_ok = hp.arch_info && hp.arch_info->qkv_bias_allowed;
  const bool bias_req = hp.arch_info && hp.arch_info->qkv_bias_required;
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t i = 0; i < hp.n_layer; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = fmt::format("blk.{}.", i);
    ASSIGN_OR_RETURN(l.attn_norm, b.bind(p + "attn_norm.weight", {E}, true));
    ASSIGN_OR_RETURN(l.wq, b.bind(p + "attn_q.weight", {E, Q}, true));
    ASSIGN_OR_RETURN(l.wk, b.bind(p + "attn_k.weight", {E, KV}, true));
    ASSIGN_OR_RETURN(l.wv, b.bind(p + "attn_v.weight", {E, KV}, true));
    ASSIGN_OR_RETURN(l.wo, b.bind(p + "attn_output.weight", {Q, E}, true));
    if (bias_ok) {
      ASSIGN_OR_RETURN(l.bq, b.bind(p + "attn_q.bias", {Q}, bias_req));
      ASSIGN_OR_RETURN(l.bk, b.bind(p + "attn_k.bias", {KV}, bias_req));
      ASSIGN_OR_RETURN(l.bv, b.bind(p + "attn_v.bias", {KV}, bias_req));
    }
    ASSIGN_OR_RETURN(l.ffn_norm, b.bind(p + "ffn_norm.weight", {E}, true));
    ASSIGN_OR_RETURN(l.ffn_gate, b.bind(p + "ffn_gate.weight", {E, F}, true));
    ASSIGN_OR_RETURN(l.ffn_up, b.bind(p + "ffn_up.weight", {E, F}, true));
    ASSIGN_OR_RETURN(l.ffn_down, b.bind(p + "ffn_down.weight", {F, E}, true));
  }
  w.total_bytes = b.total();
  return w;
}

}  // namespace edgelm
