// Repacking at load (model/weights.h, quant/repack.h): Q4_0 and Q8_0 matrices go into the
// kernels' interleaved layout when best_ops() offers one (x86), the audit reports it, the logits
// stay what the file's layout gives (float summation order only; exactly with the ref table), and
// ModelOptions::repack / EDGELM_REPACK=0 keep the mapped layout.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>

#include "engine/audit.h"
#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

class RepackTest : public ::testing::TestWithParam<GgmlType> {
 protected:
  void SetUp() override {
    const Ops& ops = best_ops();
    type_ = GetParam();
    if (ops.packed_layout == nullptr || ops.packed_layout(type_) == PackedLayout::kNone) {
      GTEST_SKIP() << "the kernels on this CPU (" << ops.name << ") have no repacked "
                   << type_name(type_) << " layout";
    }
    layout_ = ops.packed_layout(type_);
    testing::TinyModelSpec spec;
    spec.matrix_type = type_;
    spec.n_vocab = 100;  // output.weight: 6 whole groups + 4 rows left in the ggml layout
    path_ = testing::temp_path(std::string("repack-") + type_name(type_) + ".gguf");
    ASSERT_TRUE(testing::write_tiny_model(spec, path_).ok());
  }
  void TearDown() override { std::filesystem::remove(path_); }

  static std::vector<float> logits(const Model& m, const Ops& ops) {
    auto ctx = Context::create(m, {.n_ctx = 16, .n_threads = 2, .ops = &ops});
    EXPECT_TRUE(ctx.ok());
    const std::vector<int32_t> prompt = {1, 4, 7, 9, 11};  // prefill (m > 1), then decode
    auto l = (*ctx)->eval(prompt);
    EXPECT_TRUE(l.ok());
    std::vector<float> out(l->begin(), l->end());
    const std::vector<int32_t> next = {13};
    auto d = (*ctx)->eval(next);
    EXPECT_TRUE(d.ok());
    out.insert(out.end(), d->begin(), d->end());
    return out;
  }

  std::string path_;
  GgmlType type_ = GgmlType::kQ4_0;
  PackedLayout layout_ = PackedLayout::kNone;
};

TEST_P(RepackTest, MatricesAreRepackedAndAudited) {
  auto m = Model::load(path_, {.log_summary = false});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  size_t repacked = 0;
  for (const TensorLoadRecord& r : (*m)->weights().load_records) {
    if (r.stored_type != type_) continue;
    if (r.name == "token_embd.weight") {
      EXPECT_EQ(r.layout, PackedLayout::kNone) << "embeddings are read by row";
      continue;
    }
    EXPECT_EQ(r.layout, layout_) << r.name;
    EXPECT_EQ(r.exec_type, type_) << r.name;
    ++repacked;
  }
  EXPECT_EQ(repacked, 1u + 2u * 7u);  // output + 7 matrices per layer
  EXPECT_GT((*m)->weights().repacked_bytes, 0u);
  // The copies start on a cache line (the kernels load 64 bytes at a time).
  const Weights& w = (*m)->weights();
  std::vector<const TensorRef*> mats = {&w.output};
  for (const LayerWeights& l : w.layers)
    for (const TensorRef* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
      mats.push_back(t);
  for (const TensorRef* t : mats) {
    EXPECT_NE(t->layout, PackedLayout::kNone);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 64, 0u) << "repacked tensor not 64-aligned";
  }
  LoadAudit a = audit_model(**m);
  EXPECT_EQ(a.n_repacked, repacked);
  EXPECT_EQ(a.n_converted, 0u);
  EXPECT_EQ(a.repacked_heap_bytes, (*m)->weights().repacked_bytes);
  EXPECT_NE(a.to_text().find(std::string("repacked at load to ") + packed_layout_name(layout_)),
            std::string::npos);
  const auto j = a.to_json();
  EXPECT_EQ(j["summary"]["repacked"].get<size_t>(), repacked);
}

TEST_P(RepackTest, LogitsMatchTheFileLayout) {
  auto packed = Model::load(path_, {.log_summary = false});
  auto plain = Model::load(path_, {.log_summary = false, .repack = false});
  ASSERT_TRUE(packed.ok() && plain.ok());
  EXPECT_EQ((*plain)->weights().repacked_bytes, 0u);
  for (const TensorLoadRecord& r : (*plain)->weights().load_records)
    EXPECT_EQ(r.layout, PackedLayout::kNone) << r.name;
  // SIMD: float summation order only.
  const std::vector<float> want = logits(**plain, best_ops());
  const std::vector<float> got = logits(**packed, best_ops());
  ASSERT_EQ(want.size(), got.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i)
    num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
  EXPECT_LT(std::sqrt(num / den), 1e-4);
  // The scalar reference on the repacked model unpacks rows exactly: bit-identical.
  const std::vector<float> ref_want = logits(**plain, ref_ops());
  const std::vector<float> ref_got = logits(**packed, ref_ops());
  ASSERT_EQ(ref_want.size(), ref_got.size());
  for (size_t i = 0; i < ref_want.size(); ++i) ASSERT_EQ(ref_got[i], ref_want[i]) << i;
}

TEST_P(RepackTest, EnvironmentVariableTurnsItOff) {
  ::setenv("EDGELM_REPACK", "0", 1);
  auto off = Model::load(path_, {.log_summary = false});
  ::setenv("EDGELM_REPACK", "yes", 1);
  auto bad = Model::load(path_, {.log_summary = false});
  ::unsetenv("EDGELM_REPACK");
  ASSERT_TRUE(off.ok()) << off.status().to_string();
  EXPECT_EQ((*off)->weights().repacked_bytes, 0u);
  EXPECT_EQ(audit_model(**off).n_repacked, 0u);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("EDGELM_REPACK"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Types, RepackTest, ::testing::Values(GgmlType::kQ4_0, GgmlType::kQ8_0),
                         [](const ::testing::TestParamInfo<GgmlType>& i) {
                           return std::string(type_name(i.param));
                         });

}  // namespace
}  // namespace edgelm
