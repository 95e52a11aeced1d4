// Helpers for the delta tests: tiny F16 model pairs (metadata edit, perturbed attention,
// grown vocabulary, re-quantized, tensors added/removed) written with the project's GgufWriter,
// and small file utilities.
//
//   DeltaFixture fx("rt");                     // temp paths with a per-test prefix
//   ASSERT_TRUE(write_base(fx.old_path).ok());
//   ASSERT_TRUE(write_variant(Variant::kAttention, fx.old_path, fx.new_path).ok());
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model_builder.h"
#include "quant/quant.h"
#include "test_util.h"

namespace edgelm::update::testing {

inline edgelm::testing::TinyModelSpec base_spec() {
  edgelm::testing::TinyModelSpec s;
  s.n_vocab = 64;
  s.n_embd = 64;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 128;
  s.n_layer = 2;
  s.matrix_type = GgmlType::kF16;
  return s;
}

inline Status write_base(const std::string& path, uint64_t seed = 1) {
  auto s = base_spec();
  s.seed = seed;
  return edgelm::testing::write_tiny_model(s, path);
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

// One tensor of the rewritten file; `keep` false drops it.
struct TensorEditable {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  bool keep = true;
};

// Rewrites `in` to `out`: metadata copied (then `kv` may add/replace keys), each tensor passed
// through `edit`, then `extra` tensors appended.
inline Status rewrite(const std::string& in, const std::string& out,
                      const std::function<void(TensorEditable&)>& edit,
                      const std::function<void(GgufWriter&)>& kv = {},
                      const std::vector<TensorEditable>& extra = {}) {
  ASSIGN_OR_RETURN(auto f, GgufFile::open(in));
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set_value(k, v);
  if (kv) kv(w);
  for (const auto& t : f->tensors()) {
    TensorEditable e{t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
    if (edit) edit(e);
    if (!e.keep) continue;
    RETURN_IF_ERROR(w.add_tensor(e.name, e.type, e.dims, e.data));
  }
  for (const auto& e : extra) RETURN_IF_ERROR(w.add_tensor(e.name, e.type, e.dims, e.data));
  return w.write(out);
}

enum class Variant {
  kMetadata,   // a chat template added, the name edited
  kAttention,  // every attn_q/k/v/output weight perturbed slightly
  kVocab,      // 3 rows added to token_embd and output, tokenizer arrays extended
  kRequant,    // all matrices re-quantized to Q8_0
  kAddRemove,  // one tensor removed, one added
};

inline std::vector<uint8_t> random_rows(std::mt19937_64& rng, int64_t ne0, int64_t rows,
                                        GgmlType type = GgmlType::kF16) {
  std::normal_distribution<float> d(0.0f, 0.5f);
  std::vector<float> f(static_cast<size_t>(ne0 * rows));
  for (auto& x : f) x = d(rng);
  std::vector<uint8_t> b(row_size(type, ne0) * static_cast<size_t>(rows));
  quantize_row(type, f.data(), b.data(), ne0 * rows);
  return b;
}

inline Status write_variant(Variant v, const std::string& old_path, const std::string& new_path) {
  std::mt19937_64 rng(99);
  switch (v) {
    case Variant::kMetadata:
      return rewrite(old_path, new_path, {}, [](GgufWriter& w) {
        w.set_string("general.name", "tiny-llama-f16-v2");
        w.set_string("tokenizer.chat_template",
                     "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}");
      });
    case Variant::kAttention:
      return rewrite(old_path, new_path, [&](TensorEditable& e) {
        if (e.name.find("attn_") == std::string::npos || e.name.find("norm") != std::string::npos ||
            e.type != GgmlType::kF16)
          return;
        std::vector<float> f(e.data.size() / 2);
        dequantize_row(GgmlType::kF16, e.data.data(), f.data(), static_cast<int64_t>(f.size()));
        std::normal_distribution<float> d(0.0f, 1e-3f);
        for (auto& x : f) x += d(rng);
        quantize_row(GgmlType::kF16, f.data(), e.data.data(), static_cast<int64_t>(f.size()));
      });
    case Variant::kVocab: {
      ASSIGN_OR_RETURN(auto f, GgufFile::open(old_path));
      const GgufValue* toks = f->find("tokenizer.ggml.tokens");
      const GgufValue* types = f->find("tokenizer.ggml.token_type");
      const GgufValue* scores = f->find("tokenizer.ggml.scores");
      if (!toks || !types || !scores) return Status::not_found("tokenizer arrays");
      std::vector<std::string> t(toks->strings.begin(), toks->strings.end());
      std::vector<int32_t> ty;
      std::vector<float> sc;
      for (uint64_t i = 0; i < types->array_count; ++i)
        ty.push_back(static_cast<int32_t>(types->array_i64(i)));
      for (uint64_t i = 0; i < scores->array_count; ++i)
        sc.push_back(static_cast<float>(scores->array_f64(i)));
      for (int i = 0; i < 3; ++i) {
        t.push_back("<new" + std::to_string(i) + ">");
        ty.push_back(4);
        sc.push_back(0.0f);
      }
      return rewrite(
          old_path, new_path,
          [&](TensorEditable& e) {
            if (e.name != "token_embd.weight" && e.name != "output.weight") return;
            auto rows = random_rows(rng, e.dims[0], 3, e.type);
            e.data.insert(e.data.end(), rows.begin(), rows.end());
            e.dims[1] += 3;
          },
          [&](GgufWriter& w) {
            w.set_array_string("tokenizer.ggml.tokens", t);
            w.set_array_i32("tokenizer.ggml.token_type", ty);
            w.set_array_f32("tokenizer.ggml.scores", sc);
          });
    }
    case Variant::kRequant:
      return rewrite(old_path, new_path, [&](TensorEditable& e) {
        if (e.type != GgmlType::kF16) return;
        const int64_t n = static_cast<int64_t>(e.data.size() / 2);
        std::vector<float> f(static_cast<size_t>(n));
        dequantize_row(GgmlType::kF16, e.data.data(), f.data(), n);
        e.type = GgmlType::kQ8_0;
        e.data.assign(row_size(GgmlType::kQ8_0, e.dims[0]) * static_cast<size_t>(n / e.dims[0]), 0);
        quantize_row(GgmlType::kQ8_0, f.data(), e.data.data(), n);
      });
    case Variant::kAddRemove: {
      TensorEditable extra{"blk.0.extra.weight", GgmlType::kF16, {64, 4}, random_rows(rng, 64, 4)};
      return rewrite(old_path, new_path,
                     [](TensorEditable& e) { e.keep = e.name != "blk.1.ffn_up.weight"; }, {},
                     {extra});
    }
  }
  return Status::internal("unknown variant");
}

// Per-test temp paths, removed at the end.
struct DeltaFixture {
  std::string old_path, new_path, patch_path, out_path;
  explicit DeltaFixture(const std::string& tag) {
    old_path = edgelm::testing::temp_path(tag + "-old.gguf");
    new_path = edgelm::testing::temp_path(tag + "-new.gguf");
    patch_path = edgelm::testing::temp_path(tag + ".elmd");
    out_path = edgelm::testing::temp_path(tag + "-out.gguf");
  }
  ~DeltaFixture() {
    for (const auto& p : {old_path, new_path, patch_path, out_path, out_path + ".elmd-partial",
                          patch_path + ".elmd-partial"}) {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  }
};

}  // namespace edgelm::update::testing
