// Context behaviour: context-length overflow, bad token ids, empty input, truncate/reset,
// batch splitting, default sizes. Errors must leave the context unchanged.
#include "model/context.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/model.h"
#include "model_builder.h"
#include "test_util.h"

namespace edgelm {
namespace {

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_.matrix_type = GgmlType::kQ8_0;
    path_ = testing::temp_path("context-test.gguf");
    Status st = testing::write_tiny_model(spec_, path_);
    ASSERT_TRUE(st.ok()) << st.to_string();
    auto m = Model::load(path_, {.log_summary = false});
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    model_ = std::move(m).value();
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::unique_ptr<Context> make(int n_ctx, int n_batch = 0) {
    auto c = Context::create(*model_, {.n_ctx = n_ctx, .n_threads = 2, .n_batch = n_batch});
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  static double nerr(std::span<const float> a, std::span<const float> b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i)
      num += (a[i] - b[i]) * double(a[i] - b[i]), den += b[i] * double(b[i]);
    return std::sqrt(num / den);
  }

  testing::TinyModelSpec spec_;
  std::string path_;
  std::unique_ptr<Model> model_;
};

TEST_F(ContextTest, OverflowIsAClearErrorAndChangesNothing) {
  auto ctx = make(8);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->n_ctx(), 8);
  std::vector<int32_t> six = {1, 2, 3, 4, 5, 6}, three = {7, 8, 9};
  ASSERT_TRUE(ctx->eval(six).ok());
  auto over = ctx->eval(three);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(over.status().message().find("n_ctx exceeded"), std::string::npos)
      << over.status().message();
  EXPECT_NE(over.status().message().find("9 > n_ctx 8"), std::string::npos)
      << over.status().message();
  EXPECT_EQ(ctx->n_past(), 6);
  EXPECT_TRUE(ctx->eval(std::span<const int32_t>(three.data(), 2)).ok());
  EXPECT_EQ(ctx->n_past(), 8);
  EXPECT_FALSE(ctx->eval(std::span<const int32_t>(three.data(), 1)).ok());
}

TEST_F(ContextTest, BadTokenIdsAreRejected) {
  auto ctx = make(16);
  ASSERT_TRUE(ctx);
  for (int32_t bad : {-1, static_cast<int32_t>(spec_.n_vocab), 1 << 30}) {
    std::vector<int32_t> toks = {1, 2, bad};
    auto r = ctx->eval(toks);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
    EXPECT_NE(r.status().message().find(std::to_string(bad)), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("index 2"), std::string::npos) << r.status().message();
    EXPECT_EQ(ctx->n_past(), 0);
  }
  EXPECT_FALSE(ctx->eval({}).ok());
}

TEST_F(ContextTest, TruncateThenContinueMatchesFreshRun) {
  auto a = make(16), b = make(16);
  ASSERT_TRUE(a && b);
  std::vector<int32_t> first = {5, 6, 7, 8, 9}, tail = {20, 21};
  ASSERT_TRUE(a->eval(first).ok());
  a->truncate(3);
  EXPECT_EQ(a->n_past(), 3);
  auto la = a->eval(tail);
  ASSERT_TRUE(la.ok());
  std::vector<float> got(la->begin(), la->end());
  std::vector<int32_t> all = {5, 6, 7, 20, 21};
  auto lb = b->eval(all);
  ASSERT_TRUE(lb.ok());
  EXPECT_LT(nerr(got, *lb), 1e-4);

  a->truncate(100);  // no-op
  EXPECT_EQ(a->n_past(), 5);
  a->reset();
  EXPECT_EQ(a->n_past(), 0);
  auto lc = a->eval(all);
  ASSERT_TRUE(lc.ok());
  EXPECT_LT(nerr(*lc, *lb), 1e-4);
}

TEST_F(ContextTest, SplitBatchesMatchOneBatch) {
  auto one = make(32), split = make(32, 3);
  ASSERT_TRUE(one && split);
  EXPECT_EQ(split->n_batch(), 3);
  std::vector<int32_t> toks = {1, 9, 4, 33, 60, 12, 7, 8};
  auto a = one->eval(toks, true);
  ASSERT_TRUE(a.ok());
  std::vector<float> all(a->begin(), a->end());
  auto b = split->eval(toks, true);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), all.size());
  EXPECT_LT(nerr(*b, all), 1e-4);
  // Last-token logits equal the last row.
  split->reset();
  auto c = split->eval(toks);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), static_cast<size_t>(spec_.n_vocab));
  EXPECT_LT(nerr(*c, std::span<const float>(all).last(spec_.n_vocab)), 1e-4);
}

TEST_F(ContextTest, Defaults) {
  auto c = Context::create(*model_);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ((*c)->n_ctx(), spec_.n_ctx_train);  // min(train ctx, 4096)
  EXPECT_EQ((*c)->n_threads(), physical_core_count());
  EXPECT_GE(physical_core_count(), 1);
  EXPECT_EQ((*c)->n_vocab(), spec_.n_vocab);
  EXPECT_EQ((*c)->kv_cache_bytes(), static_cast<size_t>(2 * spec_.n_layer * spec_.n_ctx_train *
                                                        model_->hparams().n_embd_kv() * 2));
  EXPECT_FALSE(Context::create(*model_, {.n_ctx = -1}).ok());
  EXPECT_FALSE(Context::create(*model_, {.n_threads = -2}).ok());
}

}  // namespace
}  // namespace edgelm
