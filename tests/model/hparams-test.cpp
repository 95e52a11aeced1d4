// HParams and weight binding: values read from metadata, and clear errors for missing keys,
// unsupported architectures, inconsistent shapes, unsupported tensor types, missing tensors.
#include "model/hparams.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/model.h"
#include "model/weights.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

using testing::TinyModelSpec;

// Rewrites a tiny model: `keep_kv` can drop/replace keys, `keep_tensor` can drop tensors or
// substitute their type/shape/bytes.
struct Rewrite {
  std::function<bool(const std::string&, GgufWriter&)> kv =
      {};  // true: handled (dropped or replaced)
  std::function<bool(const GgufTensorInfo&, GgufWriter&)> tensor = {};
};

class HParamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing::temp_path("hp-base.gguf"), out_ = testing::temp_path("hp-out.gguf");
  }
  void TearDown() override {
    std::filesystem::remove(base_);
    std::filesystem::remove(out_);
  }

  Status load_rewritten(const TinyModelSpec& spec, const Rewrite& rw) {
    RETURN_IF_ERROR(testing::write_tiny_model(spec, base_));
    ASSIGN_OR_RETURN(auto in, GgufFile::open(base_));
    GgufWriter w;
    for (const auto& [k, v] : in->metadata()) {
      if (k == "general.alignment") continue;
      if (rw.kv && rw.kv(k, w)) continue;
      w.set_value(k, v);
    }
    for (const GgufTensorInfo& t : in->tensors()) {
      if (rw.tensor && rw.tensor(t, w)) continue;
      RETURN_IF_ERROR(w.add_tensor(t.name, t.type, t.dims, {t.data, t.nbytes}));
    }
    RETURN_IF_ERROR(w.write(out_));
    return Model::load(out_, {.log_summary = false}).status();
  }

  std::string base_, out_;
};

TEST_F(HParamsTest, ReadsValues) {
  TinyModelSpec s;
  s.arch = "qwen2";
  s.n_head = 8;
  s.n_head_kv = 2;
  s.rope_freq_base = 1e6f;
  s.rope_scale_factor = 2.0f;
  s.tied_output = true;
  s.rms_eps = 1e-6f;
  ASSERT_TRUE(testing::write_tiny_model(s, base_).ok());
  auto m = Model::load(base_, {.log_summary = false});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const HParams& hp = (*m)->hparams();
  EXPECT_EQ(hp.arch, "qwen2");
  EXPECT_EQ(hp.n_vocab, s.n_vocab);
  EXPECT_EQ(hp.n_embd, s.n_embd);
  EXPECT_EQ(hp.n_layer, s.n_layer);
  EXPECT_EQ(hp.n_head, 8);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.head_dim, s.n_embd / 8);
  EXPECT_EQ(hp.n_rot, hp.head_dim);
  EXPECT_EQ(hp.n_ff, s.n_ff);
  EXPECT_EQ(hp.n_ctx_train, s.n_ctx_train);
  EXPECT_EQ(hp.rope_type, RopeType::kNeox);
  EXPECT_FLOAT_EQ(hp.rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(hp.rope_freq_scale, 0.5f);
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_TRUE((*m)->weights().tied_output);
  EXPECT_TRUE((*m)->weights().layers[1].bv);
  EXPECT_GT((*m)->weights_bytes(), 0u);
  EXPECT_EQ(&(*m)->gguf(), &(*m)->gguf());
  EXPECT_NE(hp.to_string().find("n_head_kv=2"), std::string::npos);

  TinyModelSpec l;
  ASSERT_TRUE(testing::write_tiny_model(l, base_).ok());
  auto ml = Model::load(base_, {.log_summary = false});
  ASSERT_TRUE(ml.ok());
  EXPECT_EQ((*ml)->hparams().rope_type, RopeType::kNorm);
  EXPECT_FALSE((*ml)->weights().tied_output);
  EXPECT_FALSE((*ml)->weights().layers[0].bq);
}

TEST_F(HParamsTest, MissingKeyIsNamed) {
  for (const char* key : {"llama.embedding_length", "llama.block_count",
                          "llama.attention.head_count", "llama.feed_forward_length",
                          "llama.context_length", "llama.attention.layer_norm_rms_epsilon"}) {
    Status st =
        load_rewritten({}, {.kv = [&](const std::string& k, GgufWriter&) { return k == key; }});
    ASSERT_FALSE(st.ok()) << key;
    EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.to_string();
    EXPECT_NE(st.message().find(key), std::string::npos) << st.to_string();
  }
}

TEST_F(HParamsTest, UnsupportedArchitecture) {
  Status st = load_rewritten({}, {.kv = [](const std::string& k, GgufWriter& w) {
                               if (k != "general.architecture") return false;
                               w.set_string(k, "mamba");
                               return true;
                             }});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("mamba"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("llama, qwen2"), std::string::npos) << st.to_string();
}

TEST_F(HParamsTest, InconsistentShapeNamesTensorAndShapes) {
  Status st =
      load_rewritten({}, {.tensor = [](const GgufTensorInfo& t, GgufWriter& w) {
                       if (t.name != "blk.1.attn_k.weight") return false;
                       std::vector<uint8_t> bytes(row_size(t.type, t.ne(0)) * (t.ne(1) / 2));
                       for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = t.data[i];
                       (void)w.add_tensor(t.name, t.type, {t.ne(0), t.ne(1) / 2}, bytes);
                       return true;
                     }});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("blk.1.attn_k.weight"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("[256, 64]"), std::string::npos) << st.to_string();   // found
  EXPECT_NE(st.message().find("[256, 128]"), std::string::npos) << st.to_string();  // expected
}

TEST_F(HParamsTest, UnsupportedTensorType) {
  Status st = load_rewritten({}, {.tensor = [](const GgufTensorInfo& t, GgufWriter& w) {
                               if (t.name != "blk.0.ffn_up.weight") return false;
                               std::vector<uint8_t> bytes(static_cast<size_t>(t.n_elements) * 4, 1);
                               (void)w.add_tensor(t.name, GgmlType::kI32, t.dims, bytes);
                               return true;
                             }});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("blk.0.ffn_up.weight"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("i32"), std::string::npos) << st.to_string();
}

TEST_F(HParamsTest, MissingTensorAndMissingQwenBias) {
  Status st = load_rewritten({}, {.tensor = [](const GgufTensorInfo& t, GgufWriter&) {
                               return t.name == "blk.1.ffn_down.weight";
                             }});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("blk.1.ffn_down.weight"), std::string::npos) << st.to_string();

  TinyModelSpec q;
  q.arch = "qwen2";
  st = load_rewritten(q, {.tensor = [](const GgufTensorInfo& t, GgufWriter&) {
                        return t.name == "blk.0.attn_k.bias";
                      }});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("blk.0.attn_k.bias"), std::string::npos) << st.to_string();
}

TEST_F(HParamsTest, InconsistentHeadCountsAndVocab) {
  Status st = load_rewritten({}, {.kv = [](const std::string& k, GgufWriter& w) {
                               if (k != "llama.attention.head_count_kv") return false;
                               w.set_u32(k, 3);
                               return true;
                             }});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("head_count_kv"), std::string::npos) << st.to_string();

  st = load_rewritten({}, {.kv = [](const std::string& k, GgufWriter& w) {
                        if (k != "tokenizer.ggml.tokens") return false;
                        w.set_array_string(k, {"a", "b", "c"});
                        return true;
                      }});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token_embd.weight"), std::string::npos) << st.to_string();
}

TEST_F(HParamsTest, UnsupportedRopeScalingAndNonF32Norm) {
  Status st = load_rewritten({}, {.kv = [](const std::string& k, GgufWriter& w) {
                               if (k != "llama.rope.freq_base") return false;
                               w.set_f32(k, 10000.0f);
                               w.set_string("llama.rope.scaling.type", "yarn");
                               return true;
                             }});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("yarn"), std::string::npos) << st.to_string();

  st = load_rewritten({}, {.tensor = [](const GgufTensorInfo& t, GgufWriter& w) {
                        if (t.name != "output_norm.weight") return false;
                        std::vector<uint8_t> bytes(static_cast<size_t>(t.n_elements) * 2, 0x3c);
                        (void)w.add_tensor(t.name, GgmlType::kF16, t.dims, bytes);
                        return true;
                      }});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("output_norm.weight"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("f16"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace edgelm
