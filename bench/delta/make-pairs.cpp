// edgelm-delta-pairs: builds the model version pairs that bench/delta/compare.sh measures the
// delta format on, from one base GGUF (e.g. written by edgelm-gen-model). All files are
// written with the project's GgufWriter, so the base is rewritten too ("old.gguf") and every
// pair differs only by the change it names:
//   a-meta.gguf     metadata only: a chat template added and general.name edited
//   b-attn.gguf     a "fine-tune": every attn_q/k/v/output weight dequantized, perturbed by
//                   N(0, (--perturb x the tensor's std)^2), requantized to its own type
//   c-vocab.gguf    --new-rows vocabulary rows appended to token_embd and output, tokenizer
//                   arrays (tokens, scores, token_type) extended
//   d-requant.gguf  every matrix of the base type re-quantized to --requant-type
//
//   edgelm-delta-pairs --base /tmp/base-q8_0.gguf --out-dir /tmp/delta-pairs
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "quant/quant.h"
#include "quant/types.h"

namespace edgelm {
namespace {

struct Tensor {
  std::string name;
  GgmlType type;
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

Status rewrite(const GgufFile& in, const std::string& out,
               const std::function<Status(Tensor&)>& edit,
               const std::function<void(GgufWriter&)>& kv) {
  GgufWriter w;
  w.set_alignment(static_cast<uint32_t>(in.alignment()));
  for (const auto& [k, v] : in.metadata()) w.set_value(k, v);
  if (kv) kv(w);
  for (const auto& t : in.tensors()) {
    Tensor e{t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
    if (edit) RETURN_IF_ERROR(edit(e));
    RETURN_IF_ERROR(w.add_tensor(e.name, e.type, e.dims, e.data));
  }
  RETURN_IF_ERROR(w.write(out));
  fmt::print(stderr, "wrote {} ({} bytes)\n", out, std::filesystem::file_size(out));
  return Status::ok_status();
}

StatusOr<std::vector<float>> to_f32(const Tensor& t) {
  int64_t n = 1;
  for (auto d : t.dims) n *= d;
  return dequantize_tensor(t.type, t.data.data(), t.data.size(), n, t.name);
}

Status from_f32(Tensor& t, GgmlType type, const std::vector<float>& f) {
  const int64_t rows = static_cast<int64_t>(f.size()) / t.dims[0];
  t.type = type;
  t.data.assign(row_size(type, t.dims[0]) * static_cast<size_t>(rows), 0);
  return quantize_tensor(type, f.data(), static_cast<int64_t>(f.size()), t.data.data(),
                         t.data.size(), t.name);
}

int run(const std::string& base, const std::string& dir, double perturb, int new_rows,
        const std::string& requant) {
  auto fr = GgufFile::open(base);
  if (!fr.ok()) {
    fmt::print(stderr, "error: {}\n", fr.status().to_string());
    return 1;
  }
  const GgufFile& f = **fr;
  auto rq = type_from_name(requant);
  if (!rq || !can_quantize(*rq)) {
    fmt::print(stderr, "error: --requant-type '{}' is not a type this build can quantize\n",
               requant);
    return 1;
  }
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng(1234);
  auto check = [](const Status& s) {
    if (!s.ok()) {
      fmt::print(stderr, "error: {}\n", s.to_string());
      std::exit(1);
    }
  };

  check(rewrite(f, dir + "/old.gguf", {}, {}));

  check(rewrite(f, dir + "/a-meta.gguf", {}, [&](GgufWriter& w) {
    w.set_string("general.name", f.get_string("general.name").value_or("model") + " (chat v2)");
    w.set_string("tokenizer.chat_template",
                 "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + "
                 "message['content'] + '</s>\\n' }}{% endfor %}{% if add_generation_prompt "
                 "%}{{ '<|assistant|>\\n' }}{% endif %}");
  }));

  check(rewrite(f, dir + "/b-attn.gguf",
                [&](Tensor& t) -> Status {
                  const bool attn = t.name.find(".attn_q.") != std::string::npos ||
                                    t.name.find(".attn_k.") != std::string::npos ||
                                    t.name.find(".attn_v.") != std::string::npos ||
                                    t.name.find(".attn_output.") != std::string::npos;
                  if (!attn || t.dims.size() != 2) return Status::ok_status();
                  ASSIGN_OR_RETURN(std::vector<float> x, to_f32(t));
                  double ss = 0;
                  for (float v : x) ss += double(v) * v;
                  const double sd = std::sqrt(ss / static_cast<double>(x.size()));
                  std::normal_distribution<float> d(0.0f, static_cast<float>(perturb * sd));
                  for (float& v : x) v += d(rng);
                  return from_f32(t, t.type, x);
                },
                {}));

  {
    const GgufValue* toks = f.find("tokenizer.ggml.tokens");
    const GgufValue* scores = f.find("tokenizer.ggml.scores");
    const GgufValue* types = f.find("tokenizer.ggml.token_type");
    if (!toks || toks->type != GgufType::kArray || toks->array_type != GgufType::kString) {
      fmt::print(stderr, "error: the base has no tokenizer.ggml.tokens array\n");
      return 1;
    }
    std::vector<std::string> tv(toks->strings.begin(), toks->strings.end());
    std::vector<float> sv;
    std::vector<int32_t> yv;
    if (scores)
      for (uint64_t i = 0; i < scores->array_count; ++i)
        sv.push_back(static_cast<float>(scores->array_f64(i)));
    if (types)
      for (uint64_t i = 0; i < types->array_count; ++i)
        yv.push_back(static_cast<int32_t>(types->array_i64(i)));
    for (int i = 0; i < new_rows; ++i) {
      tv.push_back(fmt::format("<|extra_{}|>", i));
      if (scores) sv.push_back(0.0f);
      if (types) yv.push_back(4);  // user-defined
    }
    check(rewrite(
        f, dir + "/c-vocab.gguf",
        [&](Tensor& t) -> Status {
          if (t.name != "token_embd.weight" && t.name != "output.weight")
            return Status::ok_status();
          ASSIGN_OR_RETURN(std::vector<float> x, to_f32(t));
          double ss = 0;
          for (float v : x) ss += double(v) * v;
          std::normal_distribution<float> d(
              0.0f, static_cast<float>(std::sqrt(ss / static_cast<double>(x.size()))));
          // Existing rows keep their bytes; only the new rows are quantized and appended.
          std::vector<float> rows(static_cast<size_t>(new_rows * t.dims[0]));
          for (float& v : rows) v = d(rng);
          std::vector<uint8_t> qb(row_size(t.type, t.dims[0]) * static_cast<size_t>(new_rows));
          RETURN_IF_ERROR(quantize_tensor(t.type, rows.data(), static_cast<int64_t>(rows.size()),
                                          qb.data(), qb.size(), t.name));
          t.data.insert(t.data.end(), qb.begin(), qb.end());
          t.dims[1] += new_rows;
          return Status::ok_status();
        },
        [&](GgufWriter& w) {
          w.set_array_string("tokenizer.ggml.tokens", tv);
          if (scores) w.set_array_f32("tokenizer.ggml.scores", sv);
          if (types) w.set_array_i32("tokenizer.ggml.token_type", yv);
          if (f.find("llama.vocab_size"))
            w.set_u32("llama.vocab_size", static_cast<uint32_t>(tv.size()));
        }));
  }

  // The base's matrix type: the type of blk.0.attn_q.weight.
  const GgufTensorInfo* q = f.find_tensor("blk.0.attn_q.weight");
  const GgmlType base_type = q ? q->type : GgmlType::kF16;
  check(rewrite(
      f, dir + "/d-requant.gguf",
      [&](Tensor& t) -> Status {
        if (t.type != base_type || t.dims.size() != 2) return Status::ok_status();
        ASSIGN_OR_RETURN(std::vector<float> x, to_f32(t));
        return from_f32(t, *rq, x);
      },
      [&](GgufWriter& w) {
        w.set_string("general.name",
                     f.get_string("general.name").value_or("model") + " " + requant);
      }));
  return 0;
}

}  // namespace
}  // namespace edgelm

int main(int argc, char** argv) {
  CLI::App app{
      "Builds delta benchmark pairs (metadata, attention fine-tune, vocabulary, "
      "re-quantization) from one base GGUF"};
  std::string base, dir, requant = "q4_0";
  double perturb = 0.01;
  int new_rows = 8;
  app.add_option("--base", base, "Base GGUF (e.g. from edgelm-gen-model)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out-dir", dir, "Folder for old.gguf, a-meta, b-attn, c-vocab, d-requant")
      ->required();
  app.add_option("--perturb", perturb, "b: noise std as a fraction of each tensor's std")
      ->capture_default_str();
  app.add_option("--new-rows", new_rows, "c: vocabulary rows added")->capture_default_str();
  app.add_option("--requant-type", requant, "d: the type matrices are re-quantized to")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return edgelm::run(base, dir, perturb, new_rows, requant);
}
