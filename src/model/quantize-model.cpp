#include "model/quantize-model.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "base/threadpool.h"
#include "gguf/writer.h"
#include "quant/quant.h"

namespace edgelm {
namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION

enum class Category { kOther, kOutput, kTokenEmbd, kAttnQ, kAttnK, kAttnV, kAttnOut, kFfnDown };

Category category_of(const std::string& name) {
  if (name == "output.weight") return Category::kOutput;
  if (name == "token_embd.weight") return Category::kTokenEmbd;
  if (name.find("attn_v.weight") != std::string::npos) return Category::kAttnV;
  if (name.find("attn_qkv.weight") != std::string::npos) return Category::kAttnV;
  if (name.find("attn_k.weight") != std::string::npos) return Category::kAttnK;
  if (name.find("attn_q.weight") != std::string::npos) return Category::kAttnQ;
  if (name.find("attn_output.weight") != std::string::npos) return Category::kAttnOut;
  if (name.find("ffn_down") != std::string::npos) return Category::kFfnDown;
  return Category::kOther;
}

// Layer index of "blk.N.*", -1 otherwise.
int layer_of(const std::string& name) {
  int layer = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
  return layer;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool should_quantize(const GgufTensorInfo& t) {
  size_t n_dims = t.dims.size();
  while (n_dims > 1 && t.dims[n_dims - 1] == 1) --n_dims;
  if (n_dims < 2) return false;
  if (!ends_with(t.name, "weight")) return false;
  if (t.name.find("_norm.weight") != std::string::npos) return false;
  return true;
}

// llama.cpp's "use more bits" layers: the first and last eighth, and every third in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool is_float(GgmlType t) {
  return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16;
}

int64_t block_of(GgmlType t) { return type_traits(t)->block_size; }

// A row length the type cannot hold: the smaller-block type llama.cpp falls back to, then F16.
GgmlType shape_fallback(GgmlType t, int64_t ncols, std::string* rule) {
  if (ncols % block_of(t) == 0) return t;
  GgmlType r = t;
  switch (t) {
    case GgmlType::kQ4_K:
      r = GgmlType::kQ5_0;
      break;
    case GgmlType::kQ5_K:
      r = GgmlType::kQ5_1;
      break;
    case GgmlType::kQ6_K:
      r = GgmlType::kQ8_0;
      break;
    default:
      break;
  }
  if (ncols % block_of(r) != 0) r = GgmlType::kF16;
  *rule += fmt::format(", fallback {} -> {} (row length {})", type_name(t), type_name(r), ncols);
  return r;
}

// The order llama-quantize writes: tensors outside layers first, then by layer, then by name.
bool llama_order(const GgufTensorInfo* a, const GgufTensorInfo* b) {
  const int la = layer_of(a->name), lb = layer_of(b->name);
  if (la != lb) return la < lb;
  return a->name < b->name;
}

}  // namespace

std::optional<QuantPreset> quant_preset_from_name(std::string_view name) {
  std::string n(name);
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "q8_0") return QuantPreset::kQ8_0;
  if (n == "q4_0") return QuantPreset::kQ4_0;
  if (n == "q4_k_m") return QuantPreset::kQ4_K_M;
  if (n == "q5_k_m") return QuantPreset::kQ5_K_M;
  if (n == "q6_k") return QuantPreset::kQ6_K;
  return std::nullopt;
}

const char* quant_preset_name(QuantPreset p) {
  switch (p) {
    case QuantPreset::kQ8_0:
      return "q8_0";
    case QuantPreset::kQ4_0:
      return "q4_0";
    case QuantPreset::kQ4_K_M:
      return "q4_k_m";
    case QuantPreset::kQ5_K_M:
      return "q5_k_m";
    case QuantPreset::kQ6_K:
      return "q6_k";
  }
  return "?";
}

GgmlType quant_preset_base_type(QuantPreset p) {
  switch (p) {
    case QuantPreset::kQ8_0:
      return GgmlType::kQ8_0;
    case QuantPreset::kQ4_0:
      return GgmlType::kQ4_0;
    case QuantPreset::kQ4_K_M:
      return GgmlType::kQ4_K;
    case QuantPreset::kQ5_K_M:
      return GgmlType::kQ5_K;
    case QuantPreset::kQ6_K:
      return GgmlType::kQ6_K;
  }
  return GgmlType::kQ8_0;
}

uint32_t quant_preset_file_type(QuantPreset p) {
  switch (p) {
    case QuantPreset::kQ8_0:
      return 7;
    case QuantPreset::kQ4_0:
      return 2;
    case QuantPreset::kQ4_K_M:
      return 15;
    case QuantPreset::kQ5_K_M:
      return 17;
    case QuantPreset::kQ6_K:
      return 18;
  }
  return 0;
}

StatusOr<std::vector<TensorQuantPlan>> plan_quantization(const GgufFile& in, QuantPreset preset) {
  const GgmlType base = quant_preset_base_type(preset);
  const bool k_mix = preset == QuantPreset::kQ4_K_M || preset == QuantPreset::kQ5_K_M;

  std::vector<const GgufTensorInfo*> order;
  for (const GgufTensorInfo& t : in.tensors()) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), llama_order);

  bool tied = true;
  int n_attn_v = 0, max_layer = -1;
  for (const GgufTensorInfo* t : order) {
    const Category c = category_of(t->name);
    if (c == Category::kOutput) tied = false;
    if (c == Category::kAttnV) ++n_attn_v;
    max_layer = std::max(max_layer, layer_of(t->name));
  }
  int n_layer = max_layer + 1;
  if (auto arch = in.get_string("general.architecture")) {
    if (auto n = in.get_uint(*arch + ".block_count")) n_layer = static_cast<int>(*n);
  }

  std::vector<TensorQuantPlan> plan;
  int i_attn_v = 0, i_ffn_down = 0;
  for (const GgufTensorInfo* t : order) {
    TensorQuantPlan p;
    p.name = t->name;
    p.dims = t->dims;
    p.src_type = p.dst_type = t->type;
    p.src_bytes = t->nbytes;
    if (!should_quantize(*t)) {
      p.rule = "copy";
    } else {
      if (!is_float(t->type)) {
        return Status::invalid_argument(
            fmt::format("{}: tensor '{}' is already {}; quantize needs an F32, F16 or BF16 source "
                        "(requantizing loses accuracy and is not supported)",
                        in.path(), t->name, type_name(t->type)));
      }
      const int64_t ncols = t->ne(0);
      const Category c = category_of(t->name);
      GgmlType dst = base;
      p.rule = "base";
      if (c == Category::kOutput || (tied && c == Category::kTokenEmbd)) {
        p.rule = tied ? "output (tied to token_embd)" : "output";
        if (ncols % block_of(base) != 0) {
          dst = GgmlType::kQ8_0;
          p.rule += ", row length not a multiple of the base block";
        } else if (base != GgmlType::kQ8_0) {
          dst = GgmlType::kQ6_K;
        }
      } else if (c == Category::kAttnV) {
        if (k_mix && use_more_bits(i_attn_v, n_attn_v)) {
          dst = GgmlType::kQ6_K;
          p.rule = "attn_v, more bits";
        }
        ++i_attn_v;
      } else if (c == Category::kFfnDown) {
        if (k_mix && use_more_bits(i_ffn_down, n_layer)) {
          dst = GgmlType::kQ6_K;
          p.rule = "ffn_down, more bits";
        }
        ++i_ffn_down;
      }
      p.dst_type = shape_fallback(dst, ncols, &p.rule);
    }
    const TypeTraits* tr = type_traits(p.dst_type);
    if (!tr || t->ne(0) % tr->block_size != 0) {
      return Status::invalid_argument(fmt::format("{}: tensor '{}' has an unusable layout ({} {})",
                                                  in.path(), t->name, type_name(p.src_type),
                                                  t->shape_string()));
    }
    p.dst_bytes = p.dst_type == p.src_type ? t->nbytes
                                           : row_size(p.dst_type, t->ne(0)) *
                                                 static_cast<size_t>(t->n_elements / t->ne(0));
    plan.push_back(std::move(p));
  }
  return plan;
}

StatusOr<QuantizeReport> quantize_model(const std::string& in_path, const std::string& out_path,
                                        const QuantizeOptions& options) {
  auto in = GgufFile::open(in_path);
  if (!in.ok()) return in.status().with_context(fmt::format("quantize: reading '{}'", in_path));
  return quantize_model(**in, out_path, options);
}

StatusOr<QuantizeReport> quantize_model(const GgufFile& in, const std::string& out_path,
                                        const QuantizeOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::vector<TensorQuantPlan> plan, plan_quantization(in, options.preset));

  // Check the scaling maps against the plan before any work.
  for (const auto& [name, s] : options.column_scales) {
    const GgufTensorInfo* t = in.find_tensor(name);
    if (!t || static_cast<int64_t>(s.size()) != t->ne(0)) {
      return Status::invalid_argument(
          fmt::format("quantize: column scales for '{}' do not match the tensor", name));
    }
  }
  for (const auto& [name, s] : options.norm_divisors) {
    const GgufTensorInfo* t = in.find_tensor(name);
    if (!t || t->type != GgmlType::kF32 || static_cast<int64_t>(s.size()) != t->n_elements) {
      return Status::invalid_argument(
          fmt::format("quantize: norm divisors for '{}' do not match an F32 vector", name));
    }
  }

  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) {
    if (key == "general.alignment") continue;
    w.set_value(key, value);
  }
  w.set_alignment(static_cast<uint32_t>(in.alignment()));
  w.set_u32("general.quantization_version", kQuantizationVersion);
  w.set_u32("general.file_type", quant_preset_file_type(options.preset));

  int n_threads = options.n_threads;
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool pool(n_threads);

  QuantizeReport report;
  for (const TensorQuantPlan& p : plan) report.src_bytes += p.src_bytes;
  size_t done = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorQuantPlan& p = plan[i];
    const GgufTensorInfo* t = in.find_tensor(p.name);
    const auto scales = options.column_scales.find(p.name);
    const auto divisors = options.norm_divisors.find(p.name);
    std::span<const uint8_t> src(t->data, t->nbytes);
    std::vector<uint8_t> out;
    if (divisors != options.norm_divisors.end()) {
      out.resize(t->nbytes);
      const float* x = reinterpret_cast<const float*>(t->data);
      float* y = reinterpret_cast<float*>(out.data());
      for (size_t j = 0; j < divisors->second.size(); ++j) y[j] = x[j] / divisors->second[j];
      RETURN_IF_ERROR(w.add_tensor(p.name, p.dst_type, p.dims, out));
    } else if (p.dst_type == p.src_type && scales == options.column_scales.end()) {
      RETURN_IF_ERROR(w.add_tensor(p.name, p.dst_type, p.dims, src));
    } else {
      const int64_t ncols = t->ne(0);
      const int64_t nrows = t->n_elements / ncols;
      const size_t in_row = row_size(p.src_type, ncols);
      const size_t out_row = row_size(p.dst_type, ncols);
      out.resize(out_row * static_cast<size_t>(nrows));
      const float* s = scales != options.column_scales.end() ? scales->second.data() : nullptr;
      pool.parallel_for(
          static_cast<size_t>(nrows),
          [&](size_t r0, size_t r1, int) {
            std::vector<float> row(static_cast<size_t>(ncols));
            for (size_t r = r0; r < r1; ++r) {
              dequantize_row(p.src_type, t->data + r * in_row, row.data(), ncols);
              if (s)
                for (int64_t j = 0; j < ncols; ++j) row[j] *= s[j];
              quantize_row(p.dst_type, row.data(), out.data() + r * out_row, ncols);
            }
          },
          /*grain=*/16);
      RETURN_IF_ERROR(w.add_tensor(p.name, p.dst_type, p.dims, out));
    }
    report.dst_bytes += p.dst_bytes;
    report.type_counts[type_name(p.dst_type)]++;
    done += p.src_bytes;
    if (options.progress) {
      QuantizeProgress pr;
      pr.index = i + 1;
      pr.count = plan.size();
      pr.tensor = &p;
      pr.bytes_done = done;
      pr.bytes_total = report.src_bytes;
      options.progress(pr);
    }
  }
  Status st = w.write(out_path);
  if (!st.ok()) return st.with_context(fmt::format("quantize: writing '{}'", out_path));
  report.tensors = std::move(plan);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace edgelm
