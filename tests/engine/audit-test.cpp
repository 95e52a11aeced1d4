// Load audit (engine/audit.h) and the loader's fallback (model/weights.h): a type whose kernel
// is disabled (ModelOptions::disabled_types or EDGELM_DISABLE_KERNEL) is converted to F16 at
// load, the audit reports it, strict_quant refuses the load, and the converted model computes
// what the original does.
#include "engine/audit.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>

#include "engine/engine.h"
#include "model/context.h"
#include "model/model.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TinyModelSpec spec;
    spec.matrix_type = GgmlType::kQ4_K;
    path_ = testing::temp_path("audit-q4k.gguf");
    ASSERT_TRUE(testing::write_tiny_model(spec, path_).ok());
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::vector<float> logits(const Model& m) {
    auto ctx = Context::create(m, {.n_ctx = 8, .n_threads = 1, .ops = &ref_ops()});
    EXPECT_TRUE(ctx.ok());
    const std::vector<int32_t> toks = {1, 4, 7};
    auto l = (*ctx)->eval(toks);
    EXPECT_TRUE(l.ok());
    return std::vector<float>(l->begin(), l->end());
  }

  std::string path_;
};

TEST_F(AuditTest, NativeLoadHasNoConversion) {
  auto m = Model::load(path_, {.log_summary = false});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  LoadAudit a = audit_model(**m);
  EXPECT_EQ(a.n_converted, 0u);
  EXPECT_EQ(a.n_used, a.tensors.size());
  EXPECT_EQ(a.expected_bytes, a.actual_bytes);
  EXPECT_EQ(a.converted_heap_bytes, 0u);
  for (const TensorAudit& t : a.tensors) {
    EXPECT_EQ(t.stored_type, t.exec_type) << t.name;
    EXPECT_FALSE(t.converted) << t.name;
    EXPECT_LE(t.resident_bytes, t.mapped_bytes) << t.name;
  }
  EXPECT_EQ(a.to_text().find("CONVERTED"), std::string::npos);
}

TEST_F(AuditTest, DisabledKernelIsConvertedAndReported) {
  auto native = Model::load(path_, {.log_summary = false});
  ASSERT_TRUE(native.ok());
  auto m = Model::load(path_, {.log_summary = false, .disabled_types = {GgmlType::kQ4_K}});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  LoadAudit a = audit_model(**m);
  size_t matrices = 0;
  for (const TensorAudit& t : a.tensors) {
    if (t.stored_type != GgmlType::kQ4_K) continue;
    ++matrices;
    EXPECT_TRUE(t.converted) << t.name;
    EXPECT_EQ(t.exec_type, GgmlType::kF16) << t.name;
    EXPECT_GT(t.exec_bytes, t.file_bytes) << t.name;
    EXPECT_NE(t.note.find("disabled"), std::string::npos) << t.note;
  }
  ASSERT_GT(matrices, 0u);
  EXPECT_EQ(a.n_converted, matrices);
  // Converted copies start on a cache line, like repacked ones.
  size_t checked = 0;
  for (size_t l = 0; l < (*m)->weights().layers.size(); ++l) {
    const LayerWeights& nl = (*native)->weights().layers[l];
    const LayerWeights& cl = (*m)->weights().layers[l];
    const std::pair<const TensorRef*, const TensorRef*> mats[] = {{&nl.wq, &cl.wq},
                                                                  {&nl.wk, &cl.wk},
                                                                  {&nl.wv, &cl.wv},
                                                                  {&nl.wo, &cl.wo},
                                                                  {&nl.ffn_up, &cl.ffn_up},
                                                                  {&nl.ffn_gate, &cl.ffn_gate},
                                                                  {&nl.ffn_down, &cl.ffn_down}};
    for (const auto& [n, c] : mats) {
      if (n->type != GgmlType::kQ4_K) continue;
      ++checked;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(c->data) % 64, 0u) << "converted tensor not 64-aligned";
    }
  }
  EXPECT_GT(checked, 0u);
  EXPECT_GT(a.actual_bytes, a.expected_bytes);
  EXPECT_GT(a.converted_heap_bytes, 0u);
  EXPECT_NE(a.to_text().find("CONVERTED AT LOAD"), std::string::npos);
  const auto j = a.to_json();
  EXPECT_EQ(j["summary"]["converted"].get<size_t>(), matrices);
  EXPECT_EQ(j["tensors"][0].count("exec_type"), 1u);

  // Same numbers: Q4_K dequantized to F16 is exact up to F16 rounding of the weights.
  auto want = logits(**native);
  auto got = logits(**m);
  ASSERT_EQ(want.size(), got.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i)
    num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
  EXPECT_LT(std::sqrt(num / den), 0.05);
}

TEST_F(AuditTest, StrictQuantRefusesAConversion) {
  auto m = Model::load(
      path_, {.log_summary = false, .disabled_types = {GgmlType::kQ4_K}, .strict_quant = true});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("q4_K"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("strict"), std::string::npos) << m.status().message();
  // Strict with nothing to convert loads.
  auto ok = Model::load(path_, {.log_summary = false, .strict_quant = true});
  EXPECT_TRUE(ok.ok()) << ok.status().to_string();
}

TEST_F(AuditTest, EnvironmentVariableDisablesAKernelForTheEngine) {
  ::setenv("EDGELM_DISABLE_KERNEL", "Q4_K", 1);
  EngineOptions eo;
  eo.model.log_summary = false;
  auto e = Engine::load(path_, eo);
  eo.model.strict_quant = true;
  auto strict = Engine::load(path_, eo);
  ::setenv("EDGELM_DISABLE_KERNEL", "q4_K,nonsense", 1);
  auto bad = Model::load(path_, {.log_summary = false});
  ::unsetenv("EDGELM_DISABLE_KERNEL");
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_GT(audit_model((*e)->model()).n_converted, 0u);
  EXPECT_FALSE(strict.ok());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("EDGELM_DISABLE_KERNEL"), std::string::npos);
  EXPECT_NE(bad.status().message().find("nonsense"), std::string::npos);
}

TEST(AuditFileType, Names) {
  EXPECT_STREQ(file_type_name(15), "MOSTLY_Q4_K_M");
  EXPECT_STREQ(file_type_name(7), "MOSTLY_Q8_0");
  EXPECT_STREQ(file_type_name(999), "unknown");
}

}  // namespace
}  // namespace edgelm
