// edgelm-gen-model: writes a llama-architecture GGUF with random Gaussian weights, for
// benchmarks that need a model of a given size (larger than the last-level cache) without
// downloading one. The file loads in llama.cpp too (same tensor names, metadata and block
// layouts), so bench/peer/run.sh can compare both engines on it. Text it generates is gibberish.
//
//   # ~350M parameters, llama 2 tokenizer:
//   edgelm-gen-model --out /tmp/bench-q4_0.gguf --type q4_0 --vocab-from
//   ../shared/models/conf-llama-spm-f16.gguf edgelm-gen-model --out tiny.gguf --dim 256 --layers 2
//   --ff 768 --vocab 1000 --type q8_0
//
// Types follow llama-quantize's choices: f16 and q8_0 everywhere; q4_0 with output.weight in
// Q6_K; q4_k_m with Q4_K matrices and Q6_K for output.weight and, in the layers that
// llama.cpp's "use more bits" rule picks, attn_v and ffn_down. 1-D norms are F32.
// Weights: N(0, std) (default std 0.02, never exactly zero); norms 1 + N(0, 0.05).
// Deterministic for a given --seed, whatever the thread count.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "base/threadpool.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace edgelm {
namespace {

struct GenOptions {
  int64_t dim = 1024;
  int64_t layers = 24;
  int64_t heads = 16;
  int64_t kv_heads = 8;
  int64_t ff = 2816;
  int64_t vocab = 32000;  // used only without --vocab-from
  int64_t ctx = 2048;
  double rope_base = 10000.0;
  double norm_eps = 1e-5;
  double std = 0.02;
  uint64_t seed = 1;
  int threads = 0;
  std::string vocab_from;
  std::string type = "q4_0";
  std::string out;
  std::string name;
};

// splitmix64: seeds per (tensor, row chunk) so output does not depend on the thread count.
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256+ with Box-Muller: fast enough for ~10^8 normals per second per core.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) {
    for (auto& x : s_) x = splitmix64(seed);
  }
  void fill(float* out, int64_t n, float mean, float std) {
    constexpr float kTwoPi = 6.28318530717958647692f;
    const float tiny = std * 1e-3f;  // never exactly zero, not even after F16 rounding
    for (int64_t i = 0; i < n; i += 2) {
      float u1 = static_cast<float>((next() >> 40) + 1) * (1.0f / 16777216.0f);  // (0, 1]
      float u2 = static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);        // [0, 1)
      float r = std::sqrt(-2.0f * std::log(u1)) * std;
      float a = r * std::cos(kTwoPi * u2), b = r * std::sin(kTwoPi * u2);
      if (std::fabs(a) < tiny) a = std::copysign(tiny, a);
      if (std::fabs(b) < tiny) b = std::copysign(tiny, b);
      out[i] = mean + a;
      if (i + 1 < n) out[i + 1] = mean + b;
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  uint64_t s_[4];
};

// llama.cpp's rule for which layers get more bits in the *_M K-quant mixes.
bool use_more_bits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// The type a matrix gets, with llama.cpp-like fallbacks when the row is not a whole number of
// blocks.
GgmlType pick_type(const std::string& ftype, const std::string& name, int64_t layer,
                   int64_t n_layers, int64_t row_len) {
  GgmlType t = GgmlType::kF16;
  if (ftype == "f16") {
    t = GgmlType::kF16;
  } else if (ftype == "q8_0") {
    t = GgmlType::kQ8_0;
  } else if (ftype == "q4_0") {
    t = name == "output.weight" ? GgmlType::kQ6_K : GgmlType::kQ4_0;
  } else {  // q4_k_m
    t = GgmlType::kQ4_K;
    if (name == "output.weight") t = GgmlType::kQ6_K;
    bool more = layer >= 0 && use_more_bits(layer, n_layers);
    if (more && (name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight")))
      t = GgmlType::kQ6_K;
  }
  const TypeTraits* tr = type_traits(t);
  if (row_len % tr->block_size != 0) {
    if (t == GgmlType::kQ4_K) t = GgmlType::kQ5_0;
    if (t == GgmlType::kQ6_K) t = GgmlType::kQ8_0;
    if (row_len % type_traits(t)->block_size != 0) t = GgmlType::kF16;
  }
  return t;
}

uint32_t file_type_id(const std::string& ftype) {
  if (ftype == "f16") return 1;
  if (ftype == "q8_0") return 7;
  if (ftype == "q4_0") return 2;
  return 15;  // LLAMA_FTYPE_MOSTLY_Q4_K_M
}

class Generator {
 public:
  Generator(const GenOptions& o, int threads) : o_(o), pool_(threads) {}

  // rows x cols matrix (cols = ne[0], contiguous) of N(mean, std), stored as `type`.
  Status add(GgufWriter& w, const std::string& name, GgmlType type, int64_t cols, int64_t rows,
             float mean, float std) {
    const size_t row_bytes = row_size(type, cols);
    std::vector<uint8_t> data(row_bytes * static_cast<size_t>(rows));
    constexpr int64_t kChunkRows = 32;
    const int64_t n_chunks = (rows + kChunkRows - 1) / kChunkRows;
    const uint64_t tensor_seed =
        o_.seed * 0x100000001b3ull + (++tensor_index_) * 0x9e3779b97f4a7c15ull;
    pool_.parallel_for(static_cast<size_t>(n_chunks), [&](size_t begin, size_t end, int) {
      std::vector<float> buf(static_cast<size_t>(cols * kChunkRows));
      for (size_t c = begin; c < end; ++c) {
        const int64_t r0 = static_cast<int64_t>(c) * kChunkRows;
        const int64_t nr = std::min(kChunkRows, rows - r0);
        uint64_t s = tensor_seed ^ (c * 0xd1342543de82ef95ull);
        Gaussian g(splitmix64(s));
        g.fill(buf.data(), nr * cols, mean, std);
        for (int64_t r = 0; r < nr; ++r) {
          uint8_t* dst = data.data() + static_cast<size_t>(r0 + r) * row_bytes;
          if (type == GgmlType::kF32) {
            std::memcpy(dst, buf.data() + r * cols, static_cast<size_t>(cols) * sizeof(float));
          } else {
            quantize_row(type, buf.data() + r * cols, dst, cols);
          }
        }
      }
    });
    params_ += cols * rows;
    std::vector<int64_t> dims =
        rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
    return w.add_tensor(name, type, dims, data);
  }

  int64_t params() const { return params_; }

 private:
  const GenOptions& o_;
  ThreadPool pool_;
  uint64_t tensor_index_ = 0;
  int64_t params_ = 0;
};

// A minimal SentencePiece-style vocabulary (unk, bos, eos, 256 byte tokens, filler pieces)
// for when no --vocab-from file is given; enough for llama.cpp to load the model.
void synthetic_vocab(GgufWriter& w, int64_t n) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens = {"<unk>", "<s>", "</s>"};
  types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  for (int64_t i = 0; static_cast<int64_t>(tokens.size()) < n; ++i) {
    std::string piece = "\xe2\x96\x81";  // U+2581, SentencePiece's word marker
    int64_t v = i;
    do {
      piece.push_back(static_cast<char>('a' + v % 26));
      v /= 26;
    } while (v > 0);
    tokens.push_back(piece);
    types.push_back(1);
  }
  scores.resize(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) scores[i] = -static_cast<float>(i);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_string("tokenizer.ggml.tokens", tokens);
  w.set_array_f32("tokenizer.ggml.scores", scores);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

Status generate(const GenOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.type != "f16" && o.type != "q8_0" && o.type != "q4_0" && o.type != "q4_k_m")
    return Status::invalid_argument(
        fmt::format("--type: expected f16, q8_0, q4_0 or q4_k_m, found '{}'", o.type));
  if (o.dim <= 0 || o.layers <= 0 || o.heads <= 0 || o.kv_heads <= 0 || o.ff <= 0)
    return Status::invalid_argument(
        "--dim, --layers, --heads, --kv-heads and --ff must be positive");
  if (o.dim % o.heads != 0)
    return Status::invalid_argument(
        fmt::format("--dim {} is not a multiple of --heads {}", o.dim, o.heads));
  if (o.heads % o.kv_heads != 0)
    return Status::invalid_argument(
        fmt::format("--heads {} is not a multiple of --kv-heads {}", o.heads, o.kv_heads));
  if ((o.dim / o.heads) % 2 != 0)
    return Status::invalid_argument("head dimension (dim / heads) must be even");
  if (o.dim % 32 != 0 || o.ff % 32 != 0)
    return Status::invalid_argument(
        fmt::format("--dim {} and --ff {} must be multiples of 32", o.dim, o.ff));
  if (o.out.empty()) return Status::invalid_argument("--out is required");

  GgufWriter w;
  const int64_t head_dim = o.dim / o.heads;
  const std::string name =
      o.name.empty() ? fmt::format("edgelm-random-llama-{}x{}-{}", o.dim, o.layers, o.type)
                     : o.name;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", name);
  w.set_alignment(32);
  w.set_u32("general.file_type", file_type_id(o.type));
  if (o.type != "f16") w.set_u32("general.quantization_version", 2);
  w.set_u32("llama.context_length", static_cast<uint32_t>(o.ctx));
  w.set_u32("llama.embedding_length", static_cast<uint32_t>(o.dim));
  w.set_u32("llama.block_count", static_cast<uint32_t>(o.layers));
  w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(o.ff));
  w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
  w.set_f32("llama.rope.freq_base", static_cast<float>(o.rope_base));
  w.set_u32("llama.attention.head_count", static_cast<uint32_t>(o.heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(o.kv_heads));
  w.set_f32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(o.norm_eps));

  // The vocabulary file stays mapped until the write: its string values point into it.
  std::unique_ptr<GgufFile> vocab_file;
  int64_t n_vocab = o.vocab;
  if (!o.vocab_from.empty()) {
    auto f = GgufFile::open(o.vocab_from);
    if (!f.ok()) return f.status().with_context("--vocab-from");
    vocab_file = std::move(f).value();
    const GgufValue* tokens = vocab_file->find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GgufType::kArray || tokens->array_type != GgufType::kString)
      return Status::invalid_argument(
          fmt::format("--vocab-from '{}': no tokenizer.ggml.tokens string array", o.vocab_from));
    n_vocab = static_cast<int64_t>(tokens->array_count);
    for (const auto& [key, value] : vocab_file->metadata())
      if (key.starts_with("tokenizer.")) w.set_value(key, value);
  } else {
    if (n_vocab < 300)
      return Status::invalid_argument(fmt::format("--vocab {} is below 300", n_vocab));
    synthetic_vocab(w, n_vocab);
  }
  w.set_u32("llama.vocab_size", static_cast<uint32_t>(n_vocab));

  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  Generator g(o, threads);
  const float sd = static_cast<float>(o.std);
  const int64_t kv_dim = head_dim * o.kv_heads;
  auto mat = [&](const std::string& n, int64_t layer, int64_t cols, int64_t rows) {
    return g.add(w, n, pick_type(o.type, n, layer, o.layers, cols), cols, rows, 0.0f, sd);
  };
  auto norm = [&](const std::string& n) {
    return g.add(w, n, GgmlType::kF32, o.dim, 1, 1.0f, 0.05f);
  };

  RETURN_IF_ERROR(mat("token_embd.weight", -1, o.dim, n_vocab));
  RETURN_IF_ERROR(norm("output_norm.weight"));
  RETURN_IF_ERROR(mat("output.weight", -1, o.dim, n_vocab));
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    RETURN_IF_ERROR(norm(p + "attn_norm.weight"));
    RETURN_IF_ERROR(mat(p + "attn_q.weight", l, o.dim, o.dim));
    RETURN_IF_ERROR(mat(p + "attn_k.weight", l, o.dim, kv_dim));
    RETURN_IF_ERROR(mat(p + "attn_v.weight", l, o.dim, kv_dim));
    RETURN_IF_ERROR(mat(p + "attn_output.weight", l, o.dim, o.dim));
    RETURN_IF_ERROR(norm(p + "ffn_norm.weight"));
    RETURN_IF_ERROR(mat(p + "ffn_gate.weight", l, o.dim, o.ff));
    RETURN_IF_ERROR(mat(p + "ffn_up.weight", l, o.dim, o.ff));
    RETURN_IF_ERROR(mat(p + "ffn_down.weight", l, o.ff, o.dim));
    std::fprintf(stderr, "\rgen-model: layer %lld/%lld", static_cast<long long>(l + 1),
                 static_cast<long long>(o.layers));
  }
  std::fprintf(stderr, "\n");
  RETURN_IF_ERROR(w.write(o.out));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::error_code ec;
  const auto size = std::filesystem::file_size(o.out, ec);
  fmt::print(
      "{}: {} ({:.1f}M parameters, dim {} x {} layers, heads {}/{}, ff {}, vocab {}, {}), {:.1f} "
      "MiB, {:.1f} s\n",
      o.out, name, static_cast<double>(g.params()) / 1e6, o.dim, o.layers, o.heads, o.kv_heads,
      o.ff, n_vocab, o.type, static_cast<double>(size) / (1024.0 * 1024.0), secs);
  return Status::ok_status();
}

}  // namespace
}  // namespace edgelm

int main(int argc, char** argv) {
  edgelm::GenOptions o;
  CLI::App app{"Write a llama-architecture GGUF with random Gaussian weights (for benchmarks)",
               "edgelm-gen-model"};
  app.add_option("--out,-o", o.out, "Output GGUF path")->required();
  app.add_option("--type", o.type, "f16, q8_0, q4_0 (output Q6_K) or q4_k_m (Q4_K/Q6_K mix)")
      ->capture_default_str();
  app.add_option("--dim", o.dim, "Embedding width")->capture_default_str();
  app.add_option("--layers", o.layers, "Transformer blocks")->capture_default_str();
  app.add_option("--heads", o.heads, "Attention heads")->capture_default_str();
  app.add_option("--kv-heads", o.kv_heads, "Key/value heads (GQA)")->capture_default_str();
  app.add_option("--ff", o.ff, "Feed-forward width")->capture_default_str();
  app.add_option("--vocab-from", o.vocab_from,
                 "Copy tokenizer.* metadata (and so the vocabulary size) from this GGUF");
  app.add_option("--vocab", o.vocab,
                 "Vocabulary size of the synthetic tokenizer (without --vocab-from)")
      ->capture_default_str();
  app.add_option("--ctx", o.ctx, "llama.context_length")->capture_default_str();
  app.add_option("--rope-base", o.rope_base, "llama.rope.freq_base")->capture_default_str();
  app.add_option("--std", o.std, "Standard deviation of the matrix weights")->capture_default_str();
  app.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  app.add_option("--threads,-t", o.threads, "Worker threads (0: all CPUs)")->capture_default_str();
  app.add_option("--name", o.name, "general.name (default: derived from the shape)");
  CLI11_PARSE(app, argc, argv);
  edgelm::Status s = edgelm::generate(o);
  if (!s.ok()) {
    std::fprintf(stderr, "edgelm-gen-model: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
