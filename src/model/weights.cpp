#include "model/weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>

#include "base/mmap.h"
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

// Heap memory for a converted or repacked tensor, aligned to the 64-byte cache line: the SIMD
// kernels load 64 bytes at a time, and a large malloc block starts 16 bytes into a page, which
// splits every such load across two lines (1-thread decode of the repacked gen Q4_0 model:
// about 10% slower, over six alternating runs).
std::shared_ptr<uint8_t[]> alloc_tensor_bytes(size_t n) {
  void* p = std::aligned_alloc(64, std::max<size_t>(64, (n + 63) / 64 * 64));
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

bool is_disabled(const LoadPolicy& p, GgmlType t) {
  return std::find(p.disabled_types.begin(), p.disabled_types.end(), t) != p.disabled_types.end();
}

bool can_execute(const LoadPolicy& p, GgmlType t) {
  return has_matrix_kernel(t) && !is_disabled(p, t);
}

class Binder {
 public:
  Binder(const GgufFile& f, const LoadPolicy& policy, Weights& w) : f_(f), policy_(policy), w_(w) {}

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
    } else if (!has_matrix_kernel(t->type) && !can_dequantize(t->type)) {
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
    if (!seen_.insert(t).second) {
      // Bound before (tied output): reuse the first binding, converted or not.
      for (const TensorLoadRecord& rec : w_.load_records)
        if (rec.name == name) r.type = rec.exec_type;
      auto it = converted_.find(t);
      if (it != converted_.end()) r.data = it->second;
      return r;  // (token_embd, the only tensor bound twice, is never repacked)
    }
    total_ += t->nbytes;
    TensorLoadRecord rec;
    rec.name = name;
    rec.stored_type = rec.exec_type = t->type;
    rec.stored_bytes = rec.exec_bytes = expect;
    rec.mapped = t->data;
    if (shape.size() > 1 && !can_execute(policy_, t->type)) {
      ASSIGN_OR_RETURN(r, convert(r, name, rec));
      converted_[t] = r.data;
    } else if (shape.size() > 1 && policy_.repack && name != "token_embd.weight") {
      // (token_embd is also read row by row for the embeddings: never repacked, even if tied.)
      repack(r, rec);
    }
    w_.load_records.push_back(std::move(rec));
    return r;
  }

  size_t total() const { return total_; }

 private:
  // Copies `r` to F16 (or F32 when F16 cannot execute either) in memory owned by w_.
  StatusOr<TensorRef> convert(TensorRef r, const std::string& name, TensorLoadRecord& rec) {
    const bool disabled = is_disabled(policy_, r.type);
    rec.reason = disabled ? fmt::format("{} kernel disabled (EDGELM_DISABLE_KERNEL / LoadPolicy)",
                                        type_name(r.type))
                          : fmt::format("no {} kernel on this CPU/build", type_name(r.type));
    GgmlType target = GgmlType::kF16;
    if (!can_execute(policy_, target)) target = GgmlType::kF32;
    if (policy_.strict_quant || !can_dequantize(r.type) || !can_execute(policy_, target)) {
      return Status::failed_precondition(
          fmt::format("{}: tensor '{}' is stored as {} but would run as {} ({}); {}", f_.path(),
                      name, type_name(r.type), type_name(target), rec.reason,
                      policy_.strict_quant ? "strict quantization refuses to convert at load"
                                           : "no type to convert it to"));
    }
    const size_t out_row = row_size(target, r.ne0);
    const size_t bytes = out_row * static_cast<size_t>(r.ne1);
    auto buf = alloc_tensor_bytes(bytes);
    std::vector<float> tmp(static_cast<size_t>(r.ne0));
    for (int64_t i = 0; i < r.ne1; ++i) {
      dequantize_row(r.type, r.row(i), tmp.data(), r.ne0);
      quantize_row(target, tmp.data(), buf.get() + static_cast<size_t>(i) * out_row, r.ne0);
    }
    r.type = target;
    r.data = buf.get();
    rec.exec_type = target;
    rec.exec_bytes = bytes;
    rec.converted = true;
    w_.converted_bytes += bytes;
    w_.converted_storage.push_back(std::move(buf));
    return r;
  }

  // Rewrites `r` into the layout best_ops() multiplies fastest, if it has one for r's type.
  void repack(TensorRef& r, TensorLoadRecord& rec) {
    const Ops& ops = best_ops();
    if (ops.packed_layout == nullptr) return;
    const PackedLayout layout = ops.packed_layout(r.type);
    if (layout == PackedLayout::kNone || r.ne1 < packed_group_rows(layout)) return;
    const size_t bytes = r.row_bytes() * static_cast<size_t>(r.ne1);
    auto buf = alloc_tensor_bytes(bytes);
    repack_rows(layout, r.ne0, r.data, buf.get(), r.ne1);
    MappedFile::release_pages(r.data, bytes);  // the copy replaces them
    r.data = buf.get();
    r.layout = rec.layout = layout;
    w_.repacked_bytes += bytes;
    w_.converted_storage.push_back(std::move(buf));
  }

  const GgufFile& f_;
  const LoadPolicy& policy_;
  Weights& w_;
  std::map<const GgufTensorInfo*, const uint8_t*> converted_;
  std::set<const GgufTensorInfo*> seen_;
  size_t total_ = 0;
};

}  // namespace

bool is_supported_matrix_type(GgmlType t) {
  // Needs a product kernel and a dequantizer (token embeddings are looked up by row).
  return vec_dot_supported(t) && can_dequantize(t);
}

bool has_matrix_kernel(GgmlType t) { return is_supported_matrix_type(t); }

StatusOr<LoadPolicy> LoadPolicy::from_env() {
  LoadPolicy p;
  if (const char* rp = std::getenv("EDGELM_REPACK")) {
    const std::string v(rp);
    if (v != "0" && v != "1") {
      return Status::invalid_argument(
          fmt::format("EDGELM_REPACK='{}': expected 0 (keep the file's layout) or 1", v));
    }
    p.repack = v == "1";
  }
  const char* env = std::getenv("EDGELM_DISABLE_KERNEL");
  if (!env) return p;
  std::string s(env);
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      auto t = type_from_name(item);
      if (!t) {
        return Status::invalid_argument(fmt::format(
            "EDGELM_DISABLE_KERNEL='{}': '{}' is not a ggml type name (e.g. q4_K, q8_0, f16)", s,
            item));
      }
      p.disabled_types.push_back(*t);
    }
    pos = end + 1;
  }
  return p;
}

StatusOr<Weights> bind_weights(const GgufFile& file, const HParams& hp) {
  ASSIGN_OR_RETURN(LoadPolicy policy, LoadPolicy::from_env());
  return bind_weights(file, hp, policy);
}

StatusOr<Weights> bind_weights(const GgufFile& file, const HParams& hp, const LoadPolicy& policy) {
  Weights w;
  Binder b(file, policy, w);
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
